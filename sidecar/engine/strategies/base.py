"""The strategy interface: a pure function of closed bars that may propose one entry.

A strategy sees only closed bars (oldest first) and returns at most one `Signal` for the newest
closed bar. It never sees prices of the forming bar, the account or the wall clock, so the same
bars give the same signal live, in the Strategy Tester and in the backtester.

A strategy may also say why a bar gave no signal: a short `key=value` *note* (its votes and the
values that decided, e.g. `votes=macd:+1,rsi:0,bb:0 adx=18.2<25`), which the verdict carries as
`SIGNAL_NONE <note>`. It comes with the analysis of the bar, computed once per bar like the signal,
through these optional methods (the engine falls back to `evaluate` and no note without them):

- `assess(bars, context=None) -> (Signal | None, note)`: `evaluate` plus the note;
- the tracker's `assess(bars) -> (Signal | None, note)` (the live path, one bar at a time);
- `assess_series(bars) -> (list[Signal | None], Sequence[str])`: `series` plus every bar's note,
  which may be a lazy sequence (`Notes`) so a million-bar backtest formats only what it reads.

The note of a bar with a signal, or before `min_bars`, is not used (the engine keeps it empty).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, overload

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


class Notes(Sequence[str]):
    """Every bar's note of a series, formatted when read: `fmt(i)` for bar i."""

    def __init__(self, n: int, fmt: Callable[[int], str]) -> None:
        self._n, self._fmt = n, fmt

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> str: ...
    @overload
    def __getitem__(self, i: slice) -> list[str]: ...
    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            return [self._fmt(k) for k in range(*i.indices(self._n))]
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(i)
        return self._fmt(i)
