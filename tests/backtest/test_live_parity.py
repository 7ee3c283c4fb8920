"""The backtest decides exactly as the live sidecar: the same messages, the same verdicts.

A backtest runs twice over the same bars: once as `sidecar backtest` runs it (the in-process
kernel, analyses computed over the whole series at once, idle ticks reduced to the account state
they leave), once sending every message the runner builds — hello, a tick per bar, each
simulated fill as a `trade` — to a real `sidecar serve` over ZeroMQ, which analyses bar by bar,
answers every tick with a verdict and persists to SQLite. Every verdict the backtest built is
byte-identical to the live one; every tick it took as idle got a hold from the live sidecar,
in the mode the backtest's state was in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from backtesting.test import EURUSD

from sidecar.backtest.data import load_backtesting_frame
from sidecar.backtest.model import AccountSpec
from sidecar.backtest.runner import Backtest, Market, RunOptions
from sidecar.backtest.symbols import resolve_instrument
from sidecar.config import load_config
from sidecar.engine.state import AccountState
from sidecar.engine.strategies import strategy_problems
from sidecar.protocol import Verdict, decode_reply, encode
from sidecar.testing.server import SidecarProcess

BARS = 1400  # ~2 months of H1: dozens of trades, a few seconds over ZeroMQ


def _config_file(tmp_path: Path, strategy: str) -> Path:
    path = tmp_path / "sidecar.toml"
    path.write_text(f'[strategy]\nname = "{strategy}"\n', encoding="utf-8")
    return path


def _run(config_path: Path, decider=None, ticks="open"):  # type: ignore[no-untyped-def]
    config = load_config(config_path, env={}, extra_checks=strategy_problems)
    data = load_backtesting_frame(EURUSD.iloc[:BARS], "EURUSD", "H1")
    market = Market(data, resolve_instrument("EURUSD", None))
    replies: list[tuple[bytes, Any]] = []
    bt = Backtest(
        config,
        AccountSpec(balance=10_000.0, leverage=500, server_offset_hours=2.0),
        [market],
        RunOptions(warmup_bars=300, ticks=ticks),
        decider=decider,
        on_reply=lambda msg, reply: replies.append((encode(msg), reply)),
    )
    return bt.run(), replies


@pytest.mark.parametrize(
    ("strategy", "ticks"), [("sma_cross", "open"), ("resonance", "open"), ("sma_cross", "ohlc")]
)
def test_every_verdict_of_a_backtest_equals_the_live_sidecars(
    tmp_path: Path, strategy: str, ticks: str
) -> None:
    config_path = _config_file(tmp_path, strategy)
    local, local_replies = _run(config_path, ticks=ticks)
    assert len(local.trades) >= 5, "the window must trade for the comparison to mean anything"

    raw: list[bytes] = []

    with SidecarProcess(tmp_path / "live.sqlite", config=config_path) as live:
        client = live.zmq(timeout_ms=20_000)

        def over_zeromq(msg):  # type: ignore[no-untyped-def]
            raw.append(client.raw(encode(msg)))
            return decode_reply(raw[-1])

        remote, remote_replies = _run(config_path, decider=over_zeromq, ticks=ticks)

    assert len(remote_replies) == len(local_replies) == len(raw)
    idle = 0
    for (msg_a, reply_a), (msg_b, _), live_bytes in zip(
        local_replies, remote_replies, raw, strict=True
    ):
        assert msg_a == msg_b  # the same fills went back, so the same ticks followed
        if isinstance(reply_a, AccountState):
            live = decode_reply(live_bytes)
            assert isinstance(live, Verdict), msg_a[:200]
            assert (live.action, live.open, live.close) == ("hold", None, [])
            assert live.mode == reply_a.mode
            idle += 1
        else:
            assert encode(reply_a) == live_bytes, msg_a[:200]
    assert idle > BARS // 3  # most bars were idle, and each was a hold live too
    assert remote.trades == local.trades
    assert remote.equity[-1] == local.equity[-1]
