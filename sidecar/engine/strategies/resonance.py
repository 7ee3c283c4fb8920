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

Decisions do not depend on how much history was loaded. The indicators run over the whole
history, seeded at its first bar as TA-Lib and MT5 seed them on a chart, and a decision needs at
least `min_bars` bars, long enough for every recursive average to forget its seed to e^-10 of the
initial error (EMA, alpha 2/(n+1): 5(n+1) bars; Wilder, alpha 1/n: 10n bars, twice for ADX which
smooths smoothed values): 281 bars with the defaults. What is left of a seed after that is below
1e-6 of the indicator's value (ADX, the slowest) and far below it for the others; on the 5,000
EURUSD H1 bars of the tests no decision changes with the start of the history (tests/engine/
test_analyze_series.py). The regime run is searched within the newest `min_bars` bars. The stop
uses the ATR of that fixed window (`indicators.window_atr`), so stop and target distances are the
same to ~1e-15 whatever was loaded.

A new bar costs O(1): `tracker` carries the recursions' state from bar to bar (`ResonanceTracker`,
used by the live engine), and `series` computes every bar of a long history in one vectorised
pass (the backtester); tests hold both equal to `evaluate`, bit for bit, on real bars.

A bar without a signal notes how close it came (`assess`): each indicator's vote on that bar, +1
for a buy, -1 for a sell, 0 for neither (`ema` fast vs slow, `macd` line vs signal, `di` +DI vs
-DI, `rsi` below oversold / above overbought, `bb` close at or beyond the lower / upper band), ADX
against the threshold that decides the regime (`>25` trending, `<20` ranging, `<25` or `<=25`
neither), RSI, and, when every condition of an entry holds but the entry already held earlier in
the same leg or excursion, `held=<entry> first=no` (`atr=0` when there is no range to set a stop).
For example `votes=ema:+1,macd:+1,di:-1,rsi:0,bb:0 adx=18.2<20 rsi=48.6`.

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
from sidecar.engine.strategies.base import Notes, Signal, StrategyContext

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
# The entries in `_entries` order, as the note names them.
ENTRY_NAMES = ("trend_buy", "trend_sell", "reversion_buy", "reversion_sell")
_VOTE_TEXT = {1: "+1", 0: "0", -1: "-1"}


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


def first_in_run_series(held: np.ndarray, regime: np.ndarray, lookback: int) -> np.ndarray:
    """`first_in_run(held[k-lookback+1 : k+1], regime[...])` for every bar k at once."""
    idx = np.arange(held.size)
    # Where the current run started: one past the newest bar outside the regime, or the window.
    start = np.maximum.accumulate(np.where(regime, -1, idx)) + 1
    start = np.maximum(start, idx - lookback + 1)
    # The newest earlier bar where the entry held (-1 if none).
    before = np.empty_like(idx)
    before[:1] = -1
    before[1:] = np.maximum.accumulate(np.where(held, idx, -1))[:-1]
    return held & regime & (before < start)


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
        # The note's votes, in order (`votes`, `vote_columns`).
        self.vote_names: tuple[str, ...] = (
            ("ema", "macd", "di", "rsi", "bb") if p["use_di"] else ("ema", "macd", "rsi", "bb")
        )
        self._vote_text: dict[tuple[int, ...], str] = {}
        trend, range_ = float(p["adx_trend"]), float(p["adx_range"])
        self._adx_levels = (trend, range_)
        self._adx_rel = (f">{trend:g}", f"<{range_:g}", f"<{trend:g}", f"<={trend:g}")

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
        return self._compute(bars)[0]

    def _compute(self, bars: Bars) -> tuple[Indicators, list[float]]:
        """The indicators and the recursions' state after the newest bar (for `tracker`)."""
        p, v = self.params, self.variant
        h, lo, c = bars.high, bars.low, bars.close
        fast, slow, signal = p["macd_fast"], p["macd_slow"], p["macd_signal"]
        m = indicators.macd(c, fast, slow, signal, v)
        m_fast, m_slow, _, sig = indicators.macd_parts(c, fast, slow, signal, v)
        bb = indicators.bollinger(c, p["bb_period"], p["bb_std"])
        dmi, sums = indicators.adx_parts(h, lo, c, p["adx_period"], v)
        if c.size > p["rsi_period"]:
            avg_gain, avg_loss = indicators.rsi_averages(c, p["rsi_period"])
        else:
            avg_gain = avg_loss = np.full(c.size, np.nan)
        ind = Indicators(
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
        state: list[float] = []
        if len(bars):
            last = [ind.ema_fast, ind.ema_slow, m_fast, m_slow, sig, avg_gain, avg_loss]
            last += [*sums, dmi.adx] if v == "talib" else list(sums)
            state = [float(a[-1]) for a in last]
        return ind, state

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

    def _entries(
        self, cond: Conditions
    ) -> tuple[tuple[np.ndarray, np.ndarray, str, tuple[str, ...]], ...]:
        # At most one entry can hold on a bar: ADX is not both above adx_trend and below
        # adx_range, the EMAs are not crossed both ways, RSI is not both overbought and oversold.
        trend_votes = (*TREND_VOTES, "di") if self.params["use_di"] else TREND_VOTES
        return (
            (cond.trend_buy, cond.up_leg, "buy", trend_votes),
            (cond.trend_sell, cond.down_leg, "sell", trend_votes),
            (cond.reversion_buy, cond.oversold, "buy", REVERSION_VOTES),
            (cond.reversion_sell, cond.overbought, "sell", REVERSION_VOTES),
        )

    def window_atr(self, bars: Bars) -> np.ndarray:
        """The stop's ATR for every bar: on the fixed window of its newest `min_bars` bars."""
        p = self.params
        return indicators.window_atr(
            bars.high, bars.low, bars.close, p["atr_period"], self.min_bars, self.variant
        )

    def evaluate(self, bars: Bars, context: StrategyContext | None = None) -> Signal | None:
        """The reference: every indicator over all of `bars`, the run within the newest
        `min_bars` bars. `tracker` and `series` give the same, bar for bar, faster."""
        return self.assess(bars, context)[0]

    def assess(
        self, bars: Bars, context: StrategyContext | None = None
    ) -> tuple[Signal | None, str]:
        """`evaluate` and, without a signal, the note (the module docstring)."""
        if len(bars) < self.min_bars:
            return None, ""
        ind = self.indicators(bars)
        n = self.min_bars
        window = Conditions(*(c[-n:] for c in self.conditions(ind)))
        return self._decide(window, _at(ind, -1), bars)

    def _decide(self, cond: Conditions, last: Indicators, bars: Bars) -> tuple[Signal | None, str]:
        """The decision on the newest bar from the conditions of the newest `min_bars` bars and
        the indicator values on that bar: the first entry that fires, or why none did."""
        for k, (held, regime, side, votes) in enumerate(self._entries(cond)):
            if not (held[-1] and regime[-1]):
                continue
            if first_in_run(held, regime):
                atr = float(self.window_atr(bars.tail(self.min_bars))[-1])
                signal = self._signal(int(bars.time[-1]), last, side, votes, atr)
                if signal is not None:
                    return signal, ""
                return None, self.note(self.votes(last), last.adx, last.rsi, k, fired=True)
            return None, self.note(self.votes(last), last.adx, last.rsi, k, fired=False)
        return None, self.note(self.votes(last), last.adx, last.rsi)

    def votes(self, x: Indicators) -> tuple[int, ...]:
        """Each indicator's vote on one bar (floats): +1 buy, -1 sell, 0 neither (NaN: 0)."""
        p = self.params
        ema = int(x.ema_fast > x.ema_slow) - int(x.ema_fast < x.ema_slow)
        macd = int(x.macd > x.macd_signal) - int(x.macd < x.macd_signal)
        rsi = int(x.rsi < p["rsi_oversold"]) - int(x.rsi > p["rsi_overbought"])
        bb = int(x.close <= x.bb_lower) - int(x.close >= x.bb_upper)
        if p["use_di"]:
            di = int(x.plus_di > x.minus_di) - int(x.plus_di < x.minus_di)
            return (ema, macd, di, rsi, bb)
        return (ema, macd, rsi, bb)

    def vote_columns(self, ind: Indicators) -> np.ndarray:
        """`votes` for every bar at once: one int8 row per vote, the same comparisons."""
        p = self.params

        def vote(buy: np.ndarray, sell: np.ndarray) -> np.ndarray:
            return buy.astype(np.int8) - sell.astype(np.int8)

        rows = [
            vote(ind.ema_fast > ind.ema_slow, ind.ema_fast < ind.ema_slow),
            vote(ind.macd > ind.macd_signal, ind.macd < ind.macd_signal),
        ]
        if p["use_di"]:
            rows.append(vote(ind.plus_di > ind.minus_di, ind.plus_di < ind.minus_di))
        rows.append(vote(ind.rsi < p["rsi_oversold"], ind.rsi > p["rsi_overbought"]))
        rows.append(vote(ind.close <= ind.bb_lower, ind.close >= ind.bb_upper))
        return np.vstack(rows)

    def note(
        self,
        votes: tuple[int, ...],
        adx: float,
        rsi: float,
        entry: int = -1,
        fired: bool = False,
    ) -> str:
        """`votes=ema:+1,macd:0,… adx=18.2<25 rsi=48.6 [held=<entry> first=no|atr=0]`."""
        text = self._vote_text.get(votes)
        if text is None:
            names = self.vote_names
            text = ",".join(f"{k}:{_VOTE_TEXT[v]}" for k, v in zip(names, votes, strict=True))
            self._vote_text[votes] = text  # at most 3^5 combinations
        return self._note(text, adx, rsi, entry, fired)

    def _note(self, text: str, adx: float, rsi: float, entry: int, fired: bool) -> str:
        trend, range_ = self._adx_levels
        if not math.isfinite(adx):
            rel = ""
        elif adx > trend:
            rel = self._adx_rel[0]
        elif adx < range_:
            rel = self._adx_rel[1]
        else:
            rel = self._adx_rel[2] if adx < trend else self._adx_rel[3]
        text = f"votes={text} adx={adx:.1f}{rel} rsi={rsi:.1f}"
        if entry >= 0:
            text += f" held={ENTRY_NAMES[entry]} {'atr=0' if fired else 'first=no'}"
        return text

    def series(self, bars: Bars) -> list[Signal | None]:
        """`evaluate(bars.head(i + 1))` for every i, in one vectorised pass."""
        return self.assess_series(bars)[0]

    def assess_series(self, bars: Bars) -> tuple[list[Signal | None], Notes]:
        """`assess(bars.head(i + 1))` for every i: the signals in one vectorised pass, the notes
        formatted when read from a few compact columns (votes as int8, ADX, RSI, entry held)."""
        n_bars = len(bars)
        out: list[Signal | None] = [None] * n_bars
        if n_bars < self.min_bars:
            return out, Notes(n_bars, lambda i: "")
        ind = self.indicators(bars)
        atr = self.window_atr(bars)
        entries = self._entries(self.conditions(ind))
        fired = [
            (first_in_run_series(held, regime, self.min_bars), side, votes)
            for held, regime, side, votes in entries
        ]
        for mask, side, votes in reversed(fired):  # the first entry in order wins, as above
            for i in np.flatnonzero(mask[self.min_bars - 1 :]) + self.min_bars - 1:
                out[i] = self._signal(
                    int(bars.time[i]), _at(ind, int(i)), side, votes, float(atr[i])
                )
        # For the notes: which entry's conditions hold on each bar, and whether it fired there.
        held_entry = np.full(n_bars, -1, dtype=np.int8)
        any_fired = np.zeros(n_bars, dtype=bool)
        for k in reversed(range(len(entries))):
            held, regime = entries[k][0], entries[k][1]
            held_entry[held & regime] = k
            any_fired |= fired[k][0]
        # Each bar's votes packed into one small integer (base 3), and its text from a table.
        names = self.vote_names
        code = np.zeros(n_bars, dtype=np.int16)
        for row in self.vote_columns(ind)[::-1]:
            code = code * 3 + (row + 1)
        table = [
            self.note(tuple((c // 3**k) % 3 - 1 for k in range(len(names))), math.nan, math.nan)
            .split(" ", 1)[0]
            .removeprefix("votes=")
            for c in range(3 ** len(names))
        ]
        adx, rsi = ind.adx, ind.rsi
        first = self.min_bars - 1

        def fmt(i: int) -> str:
            if i < first or out[i] is not None:
                return ""
            k = int(held_entry[i])
            text = table[code[i]]
            return self._note(text, float(adx[i]), float(rsi[i]), k, k >= 0 and bool(any_fired[i]))

        return out, Notes(n_bars, fmt)

    def tracker(self, bars: Bars) -> ResonanceTracker | None:
        """Running state over `bars`, to be advanced one new bar at a time (None: too short)."""
        if len(bars) < self.min_bars:
            return None
        return ResonanceTracker(self, bars)

    def _signal(
        self,
        bar_time: int,
        ind: Indicators,
        side: str,
        votes: tuple[str, ...],
        atr: float,
    ) -> Signal | None:
        """The signal from the indicator values on its bar (floats) and the window's ATR."""
        if not math.isfinite(atr) or atr <= 0:
            return None  # no range, no stop distance: nothing sensible to propose
        sl = self.params["sl_atr"] * atr
        context = {
            "adx": round(float(ind.adx), 1),
            "plus_di": round(float(ind.plus_di), 1),
            "minus_di": round(float(ind.minus_di), 1),
            "rsi": round(float(ind.rsi), 1),
            "ema_fast": _sig(float(ind.ema_fast)),
            "ema_slow": _sig(float(ind.ema_slow)),
            "macd": _sig(float(ind.macd)),
            "macd_signal": _sig(float(ind.macd_signal)),
            "bb_upper": _sig(float(ind.bb_upper)),
            "bb_lower": _sig(float(ind.bb_lower)),
            "close": _sig(float(ind.close)),
            "atr": _sig(atr),
        }
        return Signal(
            side=side,
            sl_distance=sl,
            tp_distance=self.params["reward_risk"] * sl,
            votes=votes,
            strategy=self.name,
            bar_time=bar_time,
            context=context,
            atr=atr,
        )


def _at(ind: Indicators, i: int) -> Indicators:
    return Indicators(*(float(a[i]) for a in ind))


class ResonanceTracker:
    """`ResonanceStrategy` one bar at a time: the recursions continue from their last value
    (the same float operations `indicators` runs over a whole history, so the same bits), the
    conditions of the newest `min_bars` bars are kept, and a new bar costs O(1)."""

    _KEEP = 8  # condition rows: Conditions' fields

    def __init__(self, strategy: ResonanceStrategy, bars: Bars) -> None:
        self.s = strategy
        p = strategy.params
        ind, self.state = strategy._compute(bars)
        cond = strategy.conditions(ind)
        n = strategy.min_bars
        self._buf = np.zeros((self._KEEP, 4 * n), dtype=bool)
        self._buf[:, :n] = np.vstack(cond)[:, -n:]
        self._stop = n
        # MT5's MACD signal is a moving average of the line: keep the newest lines.
        self._lines: list[float] = []
        if strategy.variant == "mt5":
            fast, slow, signal = p["macd_fast"], p["macd_slow"], p["macd_signal"]
            line = indicators.macd_parts(bars.close, fast, slow, signal, "mt5")[2]
            self._lines = [float(x) for x in line[-signal:]]
        self.last = _at(ind, -1)

    def advance(self, bars: Bars, k: int) -> None:
        """Take in the newest `k` bars of `bars` (the view these state values came from, plus
        k bars)."""
        n = len(bars)
        for i in range(n - k, n):
            self._step(bars, i)

    def _step(self, bars: Bars, i: int) -> None:
        s, p, v = self.s, self.s.params, self.s.variant
        c, h, lo = float(bars.close[i]), float(bars.high[i]), float(bars.low[i])
        pc, ph, pl = float(bars.close[i - 1]), float(bars.high[i - 1]), float(bars.low[i - 1])
        ema_f, ema_s, m_f, m_s, sig, a_gain, a_loss, *dmi = self.state
        ema_f += 2.0 / (p["ema_fast"] + 1) * (c - ema_f)
        ema_s += 2.0 / (p["ema_slow"] + 1) * (c - ema_s)
        m_f += 2.0 / (p["macd_fast"] + 1) * (c - m_f)
        m_s += 2.0 / (p["macd_slow"] + 1) * (c - m_s)
        line = m_f - m_s
        if v == "talib":
            sig += 2.0 / (p["macd_signal"] + 1) * (line - sig)
        else:
            self._lines.append(line)
            del self._lines[0]
            sig = float(np.asarray(self._lines).mean())
        # RSI: Wilder's averages of gains and losses.
        d = c - pc
        a_rsi = 1.0 / p["rsi_period"]
        a_gain += a_rsi * ((d if d > 0.0 else 0.0) - a_gain)
        a_loss += a_rsi * ((-d if -d > 0.0 else 0.0) - a_loss)
        total = a_gain + a_loss
        flat = 0.0 if v == "talib" else 50.0
        rsi = flat if total == 0.0 else 100.0 * a_gain / total
        # Bollinger: the newest bb_period closes, as `indicators.bollinger` computes each window.
        win = bars.close[i + 1 - p["bb_period"] : i + 1]
        mid = win.mean()
        sd = float(np.sqrt(((win - mid) ** 2).mean()))
        mid = float(mid)
        # ADX: true range and directional movement, then the variant's smoothing.
        tr = max(h, pc) - min(lo, pc)
        up, down = h - ph, -(lo - pl)
        plus = up if up > down and up > 0.0 else 0.0
        minus = down if down > up and down > 0.0 else 0.0
        if v == "talib":
            a = 1.0 / p["adx_period"]
            s_tr, s_plus, s_minus, adx = dmi
            s_tr += a * (tr - s_tr)
            s_plus += a * (plus - s_plus)
            s_minus += a * (minus - s_minus)
            plus_di = _ratio(s_plus, s_tr)
            minus_di = _ratio(s_minus, s_tr)
            adx += a * (_dx(plus_di, minus_di) - adx)
            dmi = [s_tr, s_plus, s_minus, adx]
        else:
            a = 2.0 / (p["adx_period"] + 1)
            plus_di, minus_di, adx = dmi
            plus_di += a * (_ratio(plus, tr) - plus_di)
            minus_di += a * (_ratio(minus, tr) - minus_di)
            adx += a * (_dx(plus_di, minus_di) - adx)
            dmi = [plus_di, minus_di, adx]
        self.state = [ema_f, ema_s, m_f, m_s, sig, a_gain, a_loss, *dmi]
        k = p["bb_std"]
        self.last = Indicators(
            close=c,
            ema_fast=ema_f,
            ema_slow=ema_s,
            macd=line,
            macd_signal=sig,
            rsi=rsi,
            bb_upper=mid + k * sd,
            bb_lower=mid - k * sd,
            adx=adx,
            plus_di=plus_di,
            minus_di=minus_di,
            atr=math.nan,  # the stop uses the window's ATR, see `signal`
        )
        cond = s.conditions(self.last)
        if self._stop == self._buf.shape[1]:
            n = s.min_bars
            self._buf[:, :n] = self._buf[:, self._stop - n : self._stop]
            self._stop = n
        self._buf[:, self._stop] = [bool(x) for x in cond]
        self._stop += 1

    def signal(self, bars: Bars) -> Signal | None:
        """The decision on the newest bar of `bars` (the bars this tracker has taken in)."""
        return self.assess(bars)[0]

    def assess(self, bars: Bars) -> tuple[Signal | None, str]:
        """`signal` and, without one, the note: O(1) from the kept conditions and values."""
        n = self.s.min_bars
        window = Conditions(*self._buf[:, self._stop - n : self._stop])
        return self.s._decide(window, self.last, bars)


def _ratio(num: float, den: float) -> float:
    return 0.0 if den == 0.0 else 100.0 * num / den


def _dx(plus_di: float, minus_di: float) -> float:
    total = plus_di + minus_di
    return 0.0 if total == 0.0 else 100.0 * abs(plus_di - minus_di) / total
