"""Golden vectors in shared_schema/vectors/engine/: request + state + signal -> verdict fields.

The same files are the contract for the EA's parser tests; each case was worked out by hand
(see each vector's description).
"""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from sidecar.config import Config
from sidecar.engine.decide import Engine
from sidecar.engine.state import AccountState, Analysis, Snapshot
from sidecar.engine.strategies.base import Signal
from sidecar.protocol import SymbolSpec, decode, encode

VECTORS = sorted(
    (Path(__file__).resolve().parents[2] / "shared_schema" / "vectors" / "engine").glob("*.json")
)


def test_there_are_vectors_for_every_protection() -> None:
    names = {p.stem for p in VECTORS}
    for needed in (
        "daily_loss_3_10_locked",
        "floating_loss_above_10pct",
        "drawdown_12_reducing",
        "drawdown_15_halted",
        "max_positions_3",
        "duplicate_signal_120s",
        "cooldown_after_three_losses",
        "below_volume_min_refused",
        "leverage_cut_1000_usd",
    ):
        assert needed in names


@pytest.mark.parametrize("path", VECTORS, ids=lambda p: p.stem)
def test_vector(path: Path) -> None:
    v = json.loads(path.read_text())
    config = Config.model_validate(v["config"])
    raw_state = dict(v["state"])
    raw_state["recent_signals"] = tuple(tuple(x) for x in raw_state.get("recent_signals", ()))
    state = AccountState(**raw_state)
    spec = msgspec.convert(v["symbol"], SymbolSpec)
    signal = None
    if v["signal"]:
        s = v["signal"]
        signal = Signal(
            s["side"],
            s["sl_distance"],
            s["tp_distance"],
            ("vector",),
            s["strategy"],
            s["bar_time"],
            {},
            s["atr"],
        )
    request = decode(json.dumps(v["request"]))  # through the wire decoder, as the service does
    analysis = Analysis(
        v["signal"]["bar_time"] if signal else None, 500, 140, signal, signal.atr if signal else 0.0
    )
    snap = Snapshot(
        account=state,
        symbol=spec,
        analysis=analysis,
    )
    verdict = Engine(config).decide(request, snap).verdict
    got = json.loads(encode(verdict))
    exp = v["expect"]
    assert got["action"] == exp["action"]
    assert got["mode"] == exp["mode"]
    assert got["leverage_cap"] == exp["leverage_cap"]
    assert got["valid_until"] == exp["valid_until"]
    assert {r.split(" ", 1)[0] for r in got["reasons"]} == set(exp["reason_codes"])
    if exp["open"] is None:
        assert got["open"] is None
    else:
        for key, value in exp["open"].items():
            assert got["open"][key] == pytest.approx(value, abs=1e-9), key
