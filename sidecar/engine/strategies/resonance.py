"""`resonance`: the default strategy — enter when several indicators agree.

Two kinds of entry, judged on the newest closed bar:

- **trend** (ADX > adx_trend): buy when EMA fast > EMA slow, MACD line > signal and +DI > -DI
  (the DI vote can be switched off with `use_di = false`); sell on the mirror. Overbought/oversold
  filter: no buy with RSI > rsi_overbought or the close above the upper Bollinger band, no sell with
  RSI < rsi_oversold or the close below the lower band.
- **mean reversion** (ADX < adx_range, a ranging market): buy when RSI < rsi_oversold and the close
  is at or below the lower band; sell when RSI > rsi_overbought and the close is at or above the
  upper band.

Entries fire on a change of state, once per regime: a trend entry on the first bar of a trend
leg (a run of bars with EMA fast above slow for buys, below for sells) where all trend conditions
hold; a mean-reversion entry on the first bar of an excursion (a run of bars with RSI below
rsi_oversold for buys, above rsi_overbought for sells) where all reversion conditions hold. A trend
that lasts for days therefore gives one signal, not one an hour, and conditions that flicker inside
the leg (MACD around its signal, the close around a band) do not re-trigger it; the next trend
signal needs the EMAs to cross again. (Firing on every bar where the conditions become true again
gave a signal every other bar on a rising zigzag.) A leg longer than the decision window cannot see
its own start and may signal once more; with the defaults that is a leg of more than 250 bars.

Decisions use a fixed window of the newest `min_bars` bars, never more, so the same closed bars
give the same signal however much history was loaded (live after a restart, the Strategy Tester
and the backtester alike). The window is long enough for every recursive average to forget its
seed to e^-10 of the initial error (EMA, alpha 2/(n+1): 5(n+1) bars; Wilder, alpha 1/n: 10n bars,
twice for ADX which smooths smoothed values): 281 bars with the defaults.

SL = sl_atr x ATR, TP = reward_risk x SL. All periods and thresholds are parameters; the defaults
are in `DEFAULTS`. `variant` picks TA-Lib's or MetaTrader 5's indicator definitions (see
`sidecar.engine.indicators`).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from sidecar.engine import indicators
from sidecar.engine.bars import Bars
from sidecar.engine.strategies.base import Signal, StrategyContext

DEFAULTS: dict[str, Any] = {
    "ema_fast": 12,
    "ema_slow": 26,
    "macd_fast": 12,
    "macd_slow": 26,
    "macd_signal": 9,
    "rsi_period": 14,
    "bb_period": 20,
    "bb_std": 2.0,
    "adx_period": 14,
    "atr_period": 14,
    "adx_trend": 25.0,  # ADX above this: trending, trend entries allowed
    "adx_range": 20.0,  # ADX below this: ranging, mean-reversion entries allowed
    "rsi_overbought": 70.0,
    "rsi_oversold": 30.0,
    "use_di": True,  # +DI > -DI (buy) / -DI > +DI (sell) as a fourth trend vote
    "sl_atr": 2.0,
    "reward_risk": 2.5,
    "variant": "talib",  # "talib" | "mt5": which indicator definitions to use
}

_PERIODS = (
    "ema_fast",
    "ema_slow",
    "macd_fast",
    "macd_slow",
    "macd_signal",
    "rsi_period",
    "bb_period",
    "adx_period",
    "atr_period",
)
_LEVELS = ("adx_trend", "adx_range", "rsi_overbought", "rsi_oversold")  # on the 0..100 scale
_POSITIVE = ("bb_std", "sl_atr", "reward_risk")

TREND_VOTES = ("ema", "macd", "adx")
REVERSION_VOTES = ("rsi", "bb", "adx_range")


class Indicators(NamedTuple):
    """Indicator values per bar of the window, oldest first."""

    close: np.ndarray
    ema_fast: np.ndarray
    ema_slow: np.ndarray
    macd: np.ndarray
    macd_signal: np.ndarray
    rsi: np.ndarray
    bb_upper: np.ndarray
    bb_lower: np.ndarray
    adx: np.ndarray
    plus_di: np.ndarray
    minus_di: np.ndarray
    atr: np.ndarray


class Conditions(NamedTuple):
    """Per bar: do all conditions of an entry hold, and which regime is the bar in?

    NaN warm-up reads False everywhere. Each entry implies its regime (a trend buy needs an up
    leg, a reversion buy an oversold excursion).
    """

    trend_buy: np.ndarray
    trend_sell: np.ndarray
    reversion_buy: np.ndarray
    reversion_sell: np.ndarray
    up_leg: np.ndarray  # EMA fast > EMA slow
    down_leg: np.ndarray  # EMA fast < EMA slow
    oversold: np.ndarray  # RSI < rsi_oversold
    overbought: np.ndarray  # RSI > rsi_overbought


def first_in_run(held: np.ndarray, regime: np.ndarray) -> bool:
    """Is `held` true on the last bar and on no earlier bar of the regime's current run?"""
    if not (held[-1] and regime[-1]):
        return False
    outside = np.flatnonzero(~regime)
    start = int(outside[-1]) + 1 if outside.size else 0
    return not held[start:-1].any()


def _problems(p: dict[str, Any]) -> list[str]:
    out: list[str] = []

    def bad(key: str, expected: str) -> None:
        out.append(f"strategy.params.{key}: expected {expected}, got {p[key]!r}")

    def number(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)

    for key in _PERIODS:
        if not isinstance(p[key], int) or isinstance(p[key], bool) or p[key] < 1:
            bad(key, "an integer >= 1")
    for key in _LEVELS:
        if not number(p[key]) or not 0 <= p[key] <= 100:
            bad(key, "a number from 0 to 100")
    for key in _POSITIVE:
        if not number(p[key]) or p[key] <= 0:
            bad(key, "a number > 0")
    if not isinstance(p["use_di"], bool):
        bad("use_di", "true or false")
    if p["variant"] not in indicators.VARIANTS:
        bad("variant", " or ".join(repr(v) for v in indicators.VARIANTS))
    if out:
        return out
    # Relations, checked once every value has the right type.
    for fast, slow in (("ema_fast", "ema_slow"), ("macd_fast", "macd_slow")):
        if p[fast] >= p[slow]:
            out.append(f"strategy.params.{fast}: must be < {slow} ({p[slow]}), got {p[fast]}")
    if p["bb_period"] < 2:
        bad("bb_period", "an integer >= 2 (a band needs a spread)")
    if p["adx_range"] > p["adx_trend"]:
        out.append(
            f"strategy.params.adx_range: must be <= adx_trend ({p['adx_trend']}), "
            f"got {p['adx_range']}"
        )
    if p["rsi_oversold"] >= p["rsi_overbought"]:
        out.append(
            f"strategy.params.rsi_oversold: must be < rsi_overbought ({p['rsi_overbought']}), "
            f"got {p['rsi_oversold']}"
        )
    return out


def _sig(x: float, digits: int = 6) -> float:
    # Prices and price differences: significant digits, so EURUSD, JPY pairs and gold all read well.
    return float(f"{x:.{digits}g}")


class ResonanceStrategy:
    name = "resonance"

    def __init__(self, params: dict[str, Any]) -> None:
        unknown = set(params) - set(DEFAULTS)
        if unknown:
            raise ValueError(
                f"strategy.params: unknown key(s) {', '.join(sorted(unknown))} for resonance; "
                f"expected {', '.join(DEFAULTS)}"
            )
        p = {**DEFAULTS, **params}
        problems = _problems(p)
        if problems:
            raise ValueError("; ".join(problems))
        self.params: dict[str, Any] = p
        self.variant: indicators.Variant = p["variant"]
        self.min_bars: int = self._warmup(p)
        # Read by the engine for the management parameters of verdicts without a signal.
        self.reward_risk: float = float(p["reward_risk"])

    @staticmethod
    def _warmup(p: dict[str, Any]) -> int:
        """Bars for every recursive average to decay its seed to e^-10 (see the module docstring),
        plus one bar of margin."""
        ema_bars = 5 * (p["ema_slow"] + 1)
        macd_bars = 5 * (p["macd_slow"] + 1) + 5 * (p["macd_signal"] + 1)
        wilder_bars = 10 * max(p["rsi_period"], p["atr_period"])
        adx_bars = 20 * p["adx_period"]  # DI smoothed, then ADX smoothed again
        return max(ema_bars, macd_bars, wilder_bars, adx_bars, p["bb_period"]) + 1

    def indicators(self, bars: Bars) -> Indicators:
        """All indicator values over `bars` (vectorised; each value uses earlier bars only)."""
        p, v = self.params, self.variant
        h, lo, c = bars.high, bars.low, bars.close
        m = indicators.macd(c, p["macd_fast"], p["macd_slow"], p["macd_signal"], v)
        bb = indicators.bollinger(c, p["bb_period"], p["bb_std"])
        dmi = indicators.adx(h, lo, c, p["adx_period"], v)
        return Indicators(
            close=c,
            ema_fast=indicators.ema(c, p["ema_fast"], v),
            ema_slow=indicators.ema(c, p["ema_slow"], v),
            macd=m.line,
            macd_signal=m.signal,
            rsi=indicators.rsi(c, p["rsi_period"], v),
            bb_upper=bb.upper,
            bb_lower=bb.lower,
            adx=dmi.adx,
            plus_di=dmi.plus_di,
            minus_di=dmi.minus_di,
            atr=indicators.atr(h, lo, c, p["atr_period"], v),
        )

    def conditions(self, ind: Indicators) -> Conditions:
        """Which entry's conditions all hold, bar by bar (comparisons with NaN are False)."""
        p = self.params
        trending = ind.adx > p["adx_trend"]
        ranging = ind.adx < p["adx_range"]
        up_leg = ind.ema_fast > ind.ema_slow
        down_leg = ind.ema_fast < ind.ema_slow
        oversold = ind.rsi < p["rsi_oversold"]
        overbought = ind.rsi > p["rsi_overbought"]
        di_up = ind.plus_di > ind.minus_di if p["use_di"] else np.ones_like(trending)
        di_down = ind.minus_di > ind.plus_di if p["use_di"] else np.ones_like(trending)
        # Overbought/oversold filter for trend entries: do not buy the top, do not sell the bottom.
        buy_ok = (ind.rsi <= p["rsi_overbought"]) & (ind.close <= ind.bb_upper)
        sell_ok = (ind.rsi >= p["rsi_oversold"]) & (ind.close >= ind.bb_lower)
        return Conditions(
            trend_buy=up_leg & (ind.macd > ind.macd_signal) & trending & di_up & buy_ok,
            trend_sell=down_leg & (ind.macd < ind.macd_signal) & trending & di_down & sell_ok,
            reversion_buy=oversold & ranging & (ind.close <= ind.bb_lower),
            reversion_sell=overbought & ranging & (ind.close >= ind.bb_upper),
            up_leg=up_leg,
            down_leg=down_leg,
            oversold=oversold,
            overbought=overbought,
        )

    def evaluate(self, bars: Bars, context: StrategyContext | None = None) -> Signal | None:
        if len(bars) < self.min_bars:
            return None
        window = bars.tail(self.min_bars)
        ind = self.indicators(window)
        cond = self.conditions(ind)
        trend_votes = (*TREND_VOTES, "di") if self.params["use_di"] else TREND_VOTES
        # Fire on the first bar of a regime's run where all conditions hold. At most one entry
        # can hold on a bar: ADX is not both above adx_trend and below adx_range, the EMAs are
        # not crossed both ways, RSI is not both overbought and oversold.
        for held, regime, side, votes in (
            (cond.trend_buy, cond.up_leg, "buy", trend_votes),
            (cond.trend_sell, cond.down_leg, "sell", trend_votes),
            (cond.reversion_buy, cond.oversold, "buy", REVERSION_VOTES),
            (cond.reversion_sell, cond.overbought, "sell", REVERSION_VOTES),
        ):
            if first_in_run(held, regime):
                return self._signal(bars, ind, side, votes)
        return None

    def _signal(
        self, bars: Bars, ind: Indicators, side: str, votes: tuple[str, ...]
    ) -> Signal | None:
        atr = float(ind.atr[-1])
        if not math.isfinite(atr) or atr <= 0:
            return None  # no range, no stop distance: nothing sensible to propose
        sl = self.params["sl_atr"] * atr
        context = {
            "adx": round(float(ind.adx[-1]), 1),
            "plus_di": round(float(ind.plus_di[-1]), 1),
            "minus_di": round(float(ind.minus_di[-1]), 1),
            "rsi": round(float(ind.rsi[-1]), 1),
            "ema_fast": _sig(float(ind.ema_fast[-1])),
            "ema_slow": _sig(float(ind.ema_slow[-1])),
            "macd": _sig(float(ind.macd[-1])),
            "macd_signal": _sig(float(ind.macd_signal[-1])),
            "bb_upper": _sig(float(ind.bb_upper[-1])),
            "bb_lower": _sig(float(ind.bb_lower[-1])),
            "close": _sig(float(ind.close[-1])),
            "atr": _sig(atr),
        }
        return Signal(
            side=side,
            sl_distance=sl,
            tp_distance=self.params["reward_risk"] * sl,
            votes=votes,
            strategy=self.name,
            bar_time=int(bars.time[-1]),
            context=context,
            atr=atr,
        )
