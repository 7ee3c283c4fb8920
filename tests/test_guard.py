"""The Python twin of the EA's Guard/Sizing runs the same golden vectors as the MQL5 modules."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest

from sidecar import guard as g

VECTORS = Path(__file__).resolve().parents[1] / "shared_schema" / "vectors"


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _cases(module: str) -> list[Any]:
    out = []
    for path in sorted((VECTORS / module).glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        for case in doc["cases"]:
            inp = _merge(doc["defaults"], case.get("given", {}))
            out.append(
                pytest.param(doc["op"], inp, case["expect"], id=f"{path.stem}:{case['name']}")
            )
    return out


def _state(d: dict[str, Any]) -> g.GuardState:
    return g.GuardState(
        day_start=d["day_start"],
        day_start_equity=d["day_start_equity"],
        hwm=d["hwm"],
        seen=d.get("seen", 0),
        floor_time=d.get("floor_time", 0),
        signals=[(s["id"], s["time"]) for s in d.get("signals", [])],
    )


def _check(got: dict[str, Any], expect: dict[str, Any]) -> None:
    for key, want in expect.items():
        have = got[key]
        if isinstance(want, (bool, str)):
            assert have == want, f"{key}: {have!r} != {want!r}"
        else:
            assert math.isclose(have, want, rel_tol=1e-9, abs_tol=1e-9), (
                f"{key}: {have!r} != {want!r}"
            )


@pytest.mark.parametrize(("op", "inp", "expect"), _cases("guard"))
def test_guard_vectors(op: str, inp: dict[str, Any], expect: dict[str, Any]) -> None:
    if op == "position_risk":
        risk = g.position_risk(
            inp["side"] == "buy",
            inp["volume"],
            inp["price"],
            inp["sl"],
            inp["tick_size"],
            inp["tick_value"],
        )
        _check({"risk": risk}, expect)
        return
    state = _state(inp["state"])
    if op == "on_account":
        limits = g.GuardLimits(**inp.get("limits", {}))
        needed = g.day_history_needed(state, limits, inp["server_time"])
        changed, event = g.observe(
            state,
            limits,
            inp["server_time"],
            inp["equity"],
            inp.get("balance", 0.0),
            inp.get("history_ok", False),
            inp.get("day_closed", 0.0),
        )
        got = {
            "changed": changed,
            "day_start": state.day_start,
            "day_start_equity": state.day_start_equity,
            "hwm": state.hwm,
            "seen": state.seen,
            "floor_time": state.floor_time,
            "event": event,
            "history_needed": needed,
        }
    else:
        d = g.check_entry(
            g.GuardLimits(**inp["limits"]),
            state,
            g.GuardAccount(**inp["account"]),
            g.GuardSymbol(**inp["symbol"]),
            g.GuardEntry(**inp["entry"]),
        )
        got = {"allowed": d.allowed, "cut": d.cut, "volume": d.volume, "code": d.code}
    _check(got, expect)


@pytest.mark.parametrize(("op", "inp", "expect"), _cases("sizing"))
def test_sizing_vectors(op: str, inp: dict[str, Any], expect: dict[str, Any]) -> None:
    assert op == "lots_for_risk_pct"
    r = g.size_lots_for_risk_pct(
        inp["equity"], inp["risk_pct"], inp["entry"], inp["sl"], g.SizingSpec(**inp["symbol"])
    )
    _check({"ok": r.ok, "code": r.code, "loss_per_lot": r.loss_per_lot, "lots": r.lots}, expect)


def test_signal_memory_expires_and_is_bounded() -> None:
    limits = g.GuardLimits()
    state = g.GuardState()
    for i in range(200):
        g.remember_signal(state, limits, f"s{i}", 1_000_000 + i)
    assert len(state.signals) <= g.MAX_SIGNALS
    assert g.is_duplicate(state, limits, "s199", 1_000_199 + 300)
    assert not g.is_duplicate(state, limits, "s199", 1_000_199 + 301)
    g.remember_signal(state, limits, "late", 2_000_000)
    assert state.signals == [("late", 2_000_000)]


def test_floor_to_step_never_rounds_up() -> None:
    assert g.floor_to_step(0.29, 0.01) == 0.29
    assert g.floor_to_step(0.2999, 0.01) == 0.29
    assert g.floor_to_step(0.009, 0.01) == 0.0
    assert g.floor_to_step(float("nan"), 0.01) == 0.0


def test_entry_levels_go_on_the_tick_grid_toward_the_entry() -> None:
    """Sizing.mqh SizingEntryPriceToTick: a stop never wider than the one sized."""
    from sidecar.guard import entry_price_to_tick

    # an index CFD quoted in 0.01 with 0.25 ticks
    assert entry_price_to_tick(4999.37, 0.25, 2, round_up=True) == 4999.50  # buy stop: up
    assert entry_price_to_tick(5010.37, 0.25, 2, round_up=False) == 5010.25  # buy target: down
    assert entry_price_to_tick(4999.50, 0.25, 2, round_up=True) == 4999.50  # on the grid
    assert entry_price_to_tick(1.123456, 0.00001, 5, round_up=False) == 1.12345
    assert entry_price_to_tick(-1.0, 0.25, 2, round_up=True) == 0.0


def test_the_equity_floor_input_is_checked_like_the_ea_does() -> None:
    """GuardLimitsErrors: InpEquityFloorPct in [0, 100); 0 turns the floor off."""
    assert g.limits_errors(g.GuardLimits(equity_floor_pct=0.0)) == []
    assert g.limits_errors(g.GuardLimits(equity_floor_pct=90.0)) == []
    for bad in (-0.5, 100.0, float("nan")):
        (err,) = g.limits_errors(g.GuardLimits(equity_floor_pct=bad))
        assert err.startswith("equity_floor_pct must be in [0, 100)")


def test_the_issue_example_day_in_sequence() -> None:
    """2.9% down on a 5% day, three 2% signals one after another: each accepted trade's risk at
    its stop joins open_risk; the second is cut to what is left and the third refused."""
    limits = g.GuardLimits(daily_loss_pct=5.0)
    state = g.GuardState(day_start=1734480000, day_start_equity=10000.0, hwm=10000.0)
    symbol = g.GuardSymbol(1e-05, 1.0, 0.01, 0.01, 100.0)
    open_risk, got = 0.0, []
    for n in range(3):
        account = g.GuardAccount(9710.0, 9710.0, positions=n, open_risk=open_risk)
        entry = g.GuardEntry(0.97, 1.1, 200.0, f"sig-{n}", 0, 10, 1734486000 + n)
        d = g.check_entry(limits, state, account, symbol, entry)
        got.append((d.allowed, d.volume, d.code))
        if d.allowed:
            g.remember_signal(state, limits, entry.signal_id, entry.now_server)
            open_risk += d.volume * 200.0
    assert got == [(True, 0.97, "OK"), (True, 0.08, "DAILY_BUDGET"), (False, 0.0, "DAILY_BUDGET")]
    assert 9710.0 - open_risk == 9500.0  # every stop hit: exactly the 5% limit, never past it
