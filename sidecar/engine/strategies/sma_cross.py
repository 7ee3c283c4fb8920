"""`sma_cross`: the reference strategy (and the backtester's cross-check).

Buy when the fast SMA of closes crosses above the slow SMA on the newest closed bar (fast <= slow
on the bar before, fast > slow now); sell on the mirror cross. SL = sl_atr x ATR(atr_period),
TP = reward_risk x SL.

A bar without a cross notes the two averages and their gap (`fast=1.08412 slow=1.08534
gap=-0.00122`, each to 6 significant digits, the gap between the values shown): the sign of the gap
is the side of the last cross, and its size how far the next one is.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from sidecar.engine import indicators
from sidecar.engine.bars import Bars
from sidecar.engine.strategies.base import Notes, Signal, StrategyContext

DEFAULTS: dict[str, Any] = {
    "fast": 10,
    "slow": 30,
    "atr_period": 14,
    "sl_atr": 2.0,
    "reward_risk": 2.5,
    "atr_variant": "talib",
}


class SmaCrossStrategy:
    name = "sma_cross"

    def __init__(self, params: dict[str, Any]) -> None:
        unknown = set(params) - set(DEFAULTS)
        if unknown:
            raise ValueError(
                f"strategy.params: unknown key(s) {', '.join(sorted(unknown))} for sma_cross; "
                f"expected {', '.join(DEFAULTS)}"
            )
        p = {**DEFAULTS, **params}
        problems = []
        for key in ("fast", "slow", "atr_period"):
            if not isinstance(p[key], int) or isinstance(p[key], bool) or p[key] < 1:
                problems.append(f"strategy.params.{key}: expected an integer >= 1, got {p[key]!r}")
        for key in ("sl_atr", "reward_risk"):
            if not isinstance(p[key], int | float) or not p[key] > 0:
                problems.append(f"strategy.params.{key}: expected a number > 0, got {p[key]!r}")
        if p["atr_variant"] not in ("talib", "mt5"):
            problems.append(
                f"strategy.params.atr_variant: expected 'talib' or 'mt5', got {p['atr_variant']!r}"
            )
        if not problems and p["fast"] >= p["slow"]:
            problems.append(f"strategy.params.fast: must be < slow ({p['slow']}), got {p['fast']}")
        if problems:
            raise ValueError("; ".join(problems))
        self.fast: int = p["fast"]
        self.slow: int = p["slow"]
        self.atr_period: int = p["atr_period"]
        self.sl_atr = float(p["sl_atr"])
        self.reward_risk = float(p["reward_risk"])
        self.atr_variant = p["atr_variant"]
        # Decisions use a fixed window of the newest bars, so they never depend on how much
        # history was loaded (Wilder's ATR would otherwise drift with the warm-up length):
        # the cross needs slow+1 closes, a converged ATR about ten periods.
        self.min_bars = max(self.slow + 1, 10 * self.atr_period)

    def evaluate(self, bars: Bars, context: StrategyContext | None = None) -> Signal | None:
        """The reference, and cheap enough for every new bar: four window means, and the
        window's ATR only on a cross."""
        return self._evaluate(bars)[0]

    def assess(
        self, bars: Bars, context: StrategyContext | None = None
    ) -> tuple[Signal | None, str]:
        """`evaluate` and, without a signal, the note: the averages and their gap."""
        signal, fast, slow = self._evaluate(bars)
        if signal is not None or len(bars) < self.min_bars:
            return signal, ""
        return None, note(fast, slow)

    def _evaluate(self, bars: Bars) -> tuple[Signal | None, float, float]:
        if len(bars) < self.min_bars:
            return None, math.nan, math.nan
        close = bars.close
        f0, f1 = _mean(close[-self.fast - 1 : -1]), _mean(close[-self.fast :])
        s0, s1 = _mean(close[-self.slow - 1 : -1]), _mean(close[-self.slow :])
        side = _cross(f0, f1, s0, s1)
        if side is None:
            return None, float(f1), float(s1)
        w = bars.tail(self.min_bars)
        signal = self._signal(bars, -1, side, float(f1), float(s1), self._atr(w)[-1])
        return signal, float(f1), float(s1)

    def _atr(self, bars: Bars) -> np.ndarray:
        # The ATR of the fixed window of the newest min_bars bars, in closed form (same value as
        # `indicators.atr` on that window to ~1e-15, and the same for one bar or a series).
        return indicators.window_atr(
            bars.high, bars.low, bars.close, self.atr_period, self.min_bars, self.atr_variant
        )

    def series(self, bars: Bars) -> list[Signal | None]:
        """`evaluate(bars.head(i + 1))` for every i, vectorised."""
        return self.assess_series(bars)[0]

    def assess_series(self, bars: Bars) -> tuple[list[Signal | None], Notes]:
        """`assess(bars.head(i + 1))` for every i: the signals vectorised, the notes formatted
        when read (from the two averages, kept as columns)."""
        n = len(bars)
        out: list[Signal | None] = [None] * n
        if n < self.min_bars:
            return out, Notes(n, lambda i: "")
        fast = indicators.window_mean(bars.close, self.fast)
        slow = indicators.window_mean(bars.close, self.slow)
        f0, f1, s0, s1 = fast[:-1], fast[1:], slow[:-1], slow[1:]
        side = np.where((f1 > s1) & (f0 <= s0), 1, np.where((f1 < s1) & (f0 >= s0), -1, 0))
        side[: self.min_bars - 2] = 0
        hits = np.flatnonzero(side) + 1
        if hits.size:
            atr = self._atr(bars)
            for i in hits:
                label = "buy" if side[i - 1] > 0 else "sell"
                out[i] = self._signal(bars, i, label, float(fast[i]), float(slow[i]), atr[i])
        first = self.min_bars - 1

        def fmt(i: int) -> str:
            return "" if i < first or out[i] is not None else note(float(fast[i]), float(slow[i]))

        return out, Notes(n, fmt)

    def _signal(
        self, bars: Bars, i: int, side: str, fast: float, slow: float, atr_value: float
    ) -> Signal | None:
        atr = float(atr_value)
        if not math.isfinite(atr) or atr <= 0:
            return None
        sl = self.sl_atr * atr
        return Signal(
            side=side,
            sl_distance=sl,
            tp_distance=self.reward_risk * sl,
            votes=("sma_fast", "sma_slow"),
            strategy=self.name,
            bar_time=int(bars.time[i]),
            context={"fast": round(fast, 6), "slow": round(slow, 6)},
            atr=atr,
        )


def note(fast: float, slow: float) -> str:
    """`fast=… slow=… gap=…`: the averages to 6 significant digits and the gap between the
    values shown (so the three always add up on the page)."""
    f, s = f"{fast:.6g}", f"{slow:.6g}"
    return f"fast={f} slow={s} gap={float(f) - float(s):.6g}"


def _mean(x: np.ndarray) -> np.floating[Any]:
    """`x.mean()` without its Python wrapper (~3 µs, four times on every new bar): numpy's mean
    is this sum divided by the count, so the bits (and the numpy float type) are the same."""
    return np.add.reduce(x) / x.shape[0]


def _cross(f0: float, f1: float, s0: float, s1: float) -> str | None:
    if f1 > s1 and f0 <= s0:
        return "buy"
    if f1 < s1 and f0 >= s0:
        return "sell"
    return None
