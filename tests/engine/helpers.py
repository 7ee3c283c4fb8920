"""Builders for engine-level tests: a tick, a snapshot with a given signal, a config."""

from __future__ import annotations

from typing import Any

import msgspec

from sidecar.config import Config
from sidecar.engine.decide import Decision, Engine
from sidecar.engine.state import AccountState, Analysis, Snapshot
from sidecar.engine.strategies.base import Signal
from sidecar.protocol import SymbolSpec, Tick
from sidecar.testing import messages

T0 = 1734480000  # 2024-12-18 00:00:00 server time: a broker-day boundary
LOGIN = 12345678


def spec(raw: dict[str, Any] | None = None) -> SymbolSpec:
    return msgspec.convert(raw or messages.EURUSD_SPEC, SymbolSpec)


def make_tick(**kw: Any) -> Tick:
    kw.setdefault("server", T0 + 3600)
    kw.setdefault("bid", 1.1)
    kw.setdefault("ask", kw["bid"] + 0.00007)
    return msgspec.convert(messages.tick(**kw), Tick)


def buy_signal(sl_distance: float = 0.0050, rr: float = 2.5, bar_time: int = T0) -> Signal:
    return Signal(
        "buy",
        sl_distance,
        rr * sl_distance,
        ("sma_fast", "sma_slow"),
        "sma_cross",
        bar_time,
        {},
        0.0025,
    )


def analysis(signal: Signal | None = None) -> Analysis:
    return Analysis(T0, 500, 140, signal, 0.0025)


def config(**sections: dict[str, Any]) -> Config:
    return Config.model_validate(sections)


def anchored(equity: float = 10000.0, **kw: Any) -> AccountState:
    """An account whose broker day started at T0 with `equity`, HWM = equity."""
    base = {
        "login": LOGIN,
        "day_key": T0 // 86400,
        "day_start_equity": equity,
        "hwm": equity,
        "equity": equity,
        "balance": equity,
        "last_gmt": T0,
    }
    return AccountState(**{**base, **kw})


def decide(
    state: AccountState,
    tick: Tick,
    signal: Signal | None = None,
    cfg: Config | None = None,
    symbol: SymbolSpec | None = None,
) -> Decision:
    engine = Engine(cfg or Config())
    snap = Snapshot(account=state, symbol=symbol or spec(), analysis=analysis(signal))
    return engine.decide(tick, snap)


def codes(decision: Decision) -> list[str]:
    return [r.split(" ", 1)[0] for r in decision.verdict.reasons]
