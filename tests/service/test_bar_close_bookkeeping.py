"""Bookkeeping that runs once per new bar of every chart (32 at once at a bar close) stays
cheap: verdict counts keep a small table, the strategy context is built once per snapshot."""

from __future__ import annotations

from pathlib import Path

import msgspec

from sidecar.config import load_config
from sidecar.engine.strategies import strategy_problems
from sidecar.protocol import SymbolSpec
from sidecar.service.feeds import FeedService
from sidecar.service.metrics import Metrics
from sidecar.service.runner import build
from sidecar.testing import messages as M


def test_verdicts_differing_only_in_numbers_share_one_count() -> None:
    # A strategy's note differs on every bar: counted by codes, the table does not grow (a full
    # table was folded in the middle of a bar close: 7-9 ms every ~128 bars with 32 charts).
    m = Metrics()
    for i in range(5000):
        m.count_verdict(("hold", f"SIGNAL_NONE fast={i} slow=1", "LEVERAGE_CAP cap=300"))
    assert len(m._verdicts) == 1
    actions, codes, _ = m.totals()
    assert actions["hold"] == 5000
    assert codes == {"SIGNAL_NONE": 5000, "LEVERAGE_CAP": 5000}


def test_the_strategy_context_follows_the_snapshot(tmp_path: Path) -> None:
    config = load_config(
        None,
        env={},
        overrides={"server": {"db": str(tmp_path / "ctx.db")}},
        extra_checks=strategy_problems,
    )
    sidecar = build(config)
    feeds = FeedService(sidecar, clock=lambda: 1_750_000_000.0)
    try:
        spec = msgspec.convert(M.EURUSD_SPEC, SymbolSpec)
        first = feeds.strategy_context(spec)
        assert first.currencies == ("EUR", "USD") and first.macro == {}
        assert feeds.strategy_context(spec) is first  # the same snapshot: built once
        feeds._swap(macro={"EUR": {"score": 0.5}, "JPY": {"score": -1.0}})
        second = feeds.strategy_context(spec)
        assert second.currencies == ("EUR", "USD") and second.macro == {"EUR": 0.5}
        other = msgspec.convert({**M.USDJPY_SPEC}, SymbolSpec)
        assert feeds.strategy_context(other).macro == {"JPY": -1.0}
    finally:
        feeds.stop()
        sidecar.close()
