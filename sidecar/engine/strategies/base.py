"""The strategy interface: a pure function of closed bars that may propose one entry.

A strategy sees only closed bars (oldest first) and returns at most one `Signal` for the newest
closed bar. It never sees prices of the forming bar, the account or the wall clock, so the same
bars give the same signal live, in the Strategy Tester and in the backtester.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from sidecar.engine.bars import Bars


@dataclass(frozen=True)
class Signal:
    side: str  # "buy" | "sell"
    sl_distance: float  # price distance from entry to stop loss (> 0)
    tp_distance: float  # price distance from entry to take profit (> 0)
    votes: tuple[str, ...]  # which indicators voted for it, e.g. ("ema", "macd", "adx")
    strategy: str
    bar_time: int  # open time of the closed bar the signal was computed on
    context: dict[str, float] = field(default_factory=dict)  # indicator values for the reasons
    atr: float = 0.0  # ATR at the signal bar, for management parameters


@dataclass(frozen=True)
class StrategyContext:
    """Inputs beyond the bars that a strategy may use, as of the newest closed bar.

    `macro` maps a currency to its decayed macro-surprise score (calendar actual vs estimate,
    signed per event type: > 0 favours the currency), for the symbol's exposed currencies.
    Built-in strategies ignore it; custom ones may lean on it. The backtester supplies the same
    scores from historical events, so decisions stay reproducible.
    """

    currencies: tuple[str, ...] = ()
    macro: Mapping[str, float] = field(default_factory=dict)


class Strategy(Protocol):
    name: str
    min_bars: int  # fewer closed bars than this -> no signal (documented warm-up)

    def evaluate(self, bars: Bars, context: StrategyContext | None = None) -> Signal | None: ...
