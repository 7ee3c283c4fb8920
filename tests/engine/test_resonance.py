"""The `resonance` strategy, as a specification.

Trend entries when EMA, MACD, ADX (and the DI lines) agree, filtered against buying overbought
and selling oversold markets; mean-reversion entries in ranging markets at an RSI extreme beyond a
Bollinger band. One signal per regime (trend leg or RSI excursion), decided on a fixed window of
the newest `min_bars` closed bars.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import numpy as np
import pytest
from backtesting.test import EURUSD

from sidecar.engine.bars import BAR_FIELDS, Bars
from sidecar.engine.indicators import VARIANTS, Variant
from sidecar.engine.strategies.base import Signal
from sidecar.engine.strategies.resonance import DEFAULTS, Indicators, ResonanceStrategy

TREND = ("ema", "macd", "adx", "di")
REVERSION = ("rsi", "bb", "adx_range")


def eurusd_bars() -> Bars:
    times = EURUSD.index.values.astype("datetime64[s]").astype(np.int64)
    cols = [EURUSD[k].to_numpy(np.float64) for k in ("Open", "High", "Low", "Close", "Volume")]
    return Bars.from_rows(np.column_stack([times, *cols, np.zeros(times.size)]))


BARS = eurusd_bars()


def span(bars: Bars, start: int, stop: int) -> Bars:
    """Bars start..stop-1, like a history that begins at `start` and ends at bar stop-1."""
    return Bars(*(getattr(bars, f)[max(start, 0) : stop] for f in BAR_FIELDS))


def walk(strategy: ResonanceStrategy, bars: Bars) -> dict[int, Signal]:
    """Signals as they would have been given live: bar by bar, each on the bars closed so far."""
    out = {}
    for t in range(len(bars)):
        signal = strategy.evaluate(bars.head(t + 1))
        if signal is not None:
            out[t] = signal
    return out


@pytest.fixture(scope="module", params=VARIANTS)
def eurusd_walk(request: pytest.FixtureRequest) -> tuple[ResonanceStrategy, dict[int, Signal]]:
    strategy = ResonanceStrategy({"variant": request.param})
    return strategy, walk(strategy, BARS)


def kind(signal: Signal) -> tuple[str, str]:
    return signal.side, "trend" if signal.votes == TREND else "reversion"


# --- hand-built markets -------------------------------------------------------------------------


def market(closes: list[float], wick: float = 0.25) -> Bars:
    """H1 bars from closes: each opens at the previous close, wicks `wick` beyond its body.

    Bar 0 opens at bar 1's close, so in RANGE it has the same high and low as every other bar:
    the indicators run from the first bar, and a lone directional move there would stay in
    ADX forever in a market with no other movement (DX is the ratio of two decayed seeds).
    """
    c = np.asarray(closes, dtype=np.float64)
    o = np.concatenate(([c[1] if c.size > 1 else c[0]], c[:-1]))
    t = 1_700_000_000 + 3600 * np.arange(c.size)
    high, low = np.maximum(o, c) + wick, np.minimum(o, c) - wick
    return Bars.from_rows(np.column_stack([t, o, high, low, c, np.ones(c.size), np.zeros(c.size)]))


def mirrored(closes: list[float]) -> list[float]:
    return [200.0 - x for x in closes]


# 300 bars alternating between 100 and 101: no trend (ADX near 0), RSI near 50.
RANGE = [100.0 + i % 2 for i in range(300)]


def climb(up: float, down: float, n: int = 60) -> list[float]:
    """From the end of RANGE: up `up`, back `down`, up, back... a rising zigzag."""
    out, price = [], RANGE[-1]
    for i in range(n):
        price += up if i % 2 == 0 else -down
        out.append(price)
    return out


def drop(step: float, n: int = 3) -> list[float]:
    return [RANGE[-1] - step * (k + 1) for k in range(n)]


def signals_in(closes: list[float], params: dict | None = None) -> list[tuple[int, str, str]]:
    strategy = ResonanceStrategy(params or {})
    return [(t, *kind(s)) for t, s in walk(strategy, market(closes)).items()]


def test_a_climb_out_of_a_range_gives_one_trend_buy_not_one_per_bar() -> None:
    # +2/-1 zigzag: the EMAs cross, MACD turns, ADX passes 25 on bar 303; the conditions keep
    # agreeing on most of the next 56 bars, yet there is one signal for the whole leg.
    assert signals_in(RANGE + climb(2, 1)) == [(303, "buy", "trend")]


def test_a_fall_out_of_a_range_gives_one_trend_sell() -> None:
    assert signals_in(mirrored(RANGE + climb(2, 1))) == [(303, "sell", "trend")]


@pytest.mark.parametrize("variant", VARIANTS)
def test_both_indicator_variants_see_the_climb_and_the_fall(variant: Variant) -> None:
    params = {"variant": variant}
    assert [k for _, *k in signals_in(RANGE + climb(2, 1), params)] == [["buy", "trend"]]
    assert [k for _, *k in signals_in(mirrored(RANGE + climb(2, 1)), params)] == [["sell", "trend"]]


def test_a_sharp_drop_in_a_range_gives_a_mean_reversion_buy() -> None:
    # Three bars of -4: RSI falls under 30 and the close under the lower band on bar 302,
    # while ADX, smoothed over 14 bars, is still below 20.
    assert signals_in(RANGE + drop(4)) == [(302, "buy", "reversion")]


def test_a_sharp_spike_in_a_range_gives_a_mean_reversion_sell() -> None:
    assert signals_in(mirrored(RANGE + drop(4))) == [(302, "sell", "reversion")]


def test_no_trend_buy_when_rsi_is_overbought() -> None:
    # +5/-1: on bar 307, when EMA, MACD, ADX and DI first agree, RSI is 73.2 > 70.
    # (Earlier, on bar 302, the breakout still looks like an overbought range: a reversion sell.)
    assert signals_in(RANGE + climb(5, 1)) == [(302, "sell", "reversion")]
    assert signals_in(RANGE + climb(5, 1), {"rsi_overbought": 85}) == [(307, "buy", "trend")]


def test_no_trend_buy_when_the_close_is_above_the_upper_band() -> None:
    # +4/-1 with the RSI filter out of the way: bar 307 closes at 113.0, the 2σ band is at 113.3;
    # a 0.5σ band puts every close of the climb above it.
    no_rsi_filter = {"rsi_overbought": 100}
    assert signals_in(RANGE + climb(4, 1), no_rsi_filter) == [(307, "buy", "trend")]
    assert signals_in(RANGE + climb(4, 1), {**no_rsi_filter, "bb_std": 0.5}) == []


def test_the_di_vote_can_be_switched_off() -> None:
    with_di = ResonanceStrategy({}).evaluate(market(RANGE + climb(2, 1)[:4]))
    without = ResonanceStrategy({"use_di": False}).evaluate(market(RANGE + climb(2, 1)[:4]))
    assert with_di is not None and with_di.votes == ("ema", "macd", "adx", "di")
    assert without is not None and without.votes == ("ema", "macd", "adx")


def test_a_signal_carries_stops_from_atr_and_the_indicator_values() -> None:
    strategy = ResonanceStrategy({"sl_atr": 1.5, "reward_risk": 3.0})
    bars = market(RANGE + climb(2, 1)[:4])  # the newest bar is bar 303, the trend buy
    signal = strategy.evaluate(bars)
    assert signal is not None
    ind = strategy.indicators(bars.tail(strategy.min_bars))
    # The stop's ATR is that of the fixed window, in closed form: the recursion's value to 1e-15.
    atr = float(ind.atr[-1])
    assert signal.atr == pytest.approx(atr, rel=1e-14) and atr > 0
    assert signal.sl_distance == pytest.approx(1.5 * signal.atr, rel=1e-15)
    assert signal.tp_distance == pytest.approx(3.0 * 1.5 * signal.atr, rel=1e-15)
    assert signal.strategy == "resonance"
    assert signal.bar_time == int(bars.time[-1]) == 1_700_000_000 + 303 * 3600
    # Oscillators to one decimal, prices to six significant digits: enough for the reasons,
    # e.g. SIGNAL_RESONANCE side=buy votes=ema,macd,adx,di adx=25.7 rsi=56.3
    assert signal.context["adx"] == round(float(ind.adx[-1]), 1) == 25.7
    assert signal.context["rsi"] == round(float(ind.rsi[-1]), 1) == 56.3
    assert signal.context["close"] == 103.0  # 101 +2 -1 +2 -1
    assert set(signal.context) == {
        "adx",
        "plus_di",
        "minus_di",
        "rsi",
        "ema_fast",
        "ema_slow",
        "macd",
        "macd_signal",
        "bb_upper",
        "bb_lower",
        "close",
        "atr",
    }


# --- warm-up and history --------------------------------------------------------------------------


def test_defaults_and_warm_up_are_documented() -> None:
    strategy = ResonanceStrategy({})
    assert strategy.name == "resonance"
    assert DEFAULTS == {
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
        "adx_trend": 25.0,
        "adx_range": 20.0,
        "rsi_overbought": 70.0,
        "rsi_oversold": 30.0,
        "use_di": True,
        "sl_atr": 2.0,
        "reward_risk": 2.5,
        "variant": "talib",
    }
    # ADX smooths twice with Wilder's 1/14: 2 x 10 x 14 bars, plus one.
    assert strategy.min_bars == 281
    # The longest period sets the window: an EMA of 100 needs 5 x 101 bars.
    assert ResonanceStrategy({"ema_slow": 100}).min_bars == 506


def test_fewer_than_min_bars_gives_no_signal() -> None:
    strategy = ResonanceStrategy({})
    bars = market(RANGE + climb(2, 1)[:4])  # a trend buy on the newest bar, 304 bars in all
    assert strategy.evaluate(span(bars, 304 - 281, 304)) is not None
    assert strategy.evaluate(span(bars, 304 - 280, 304)) is None
    assert strategy.evaluate(bars.head(0)) is None


def test_how_much_older_history_is_loaded_does_not_change_a_signal(
    eurusd_walk: tuple[ResonanceStrategy, dict[int, Signal]],
) -> None:
    # The decision (side, votes, bar, stop and target) is identical. The indicators run from the
    # first loaded bar, so the values quoted in the reasons keep a trace of that seed: within
    # 1e-4 relative, or one step of the 0.1 rounding of ADX/DI/RSI (MACD, a small difference
    # of two prices, moves in its sixth significant digit).
    strategy, signals = eurusd_walk
    n = strategy.min_bars
    for t in [*signals, *range(n, len(BARS), 97)]:
        expected = signals.get(t)
        for start in (t + 1 - n, t + 1 - n - 1, t - 1500, 0):
            got = strategy.evaluate(span(BARS, start, t + 1))
            assert (got is None) is (expected is None), (t, start)
            if got is None or expected is None:
                continue
            assert replace(got, context={}) == replace(expected, context={}), (t, start)
            assert got.context.keys() == expected.context.keys()
            for key, value in got.context.items():
                assert value == pytest.approx(expected.context[key], rel=1e-4, abs=0.1), key


def test_indicators_and_conditions_never_look_ahead() -> None:
    # Within the window every value at bar k is the same whether later bars exist or not.
    strategy = ResonanceStrategy({})
    window = span(BARS, 1000, 1000 + strategy.min_bars)
    full_ind = strategy.indicators(window)
    full_cond = strategy.conditions(full_ind)
    for k in (1, 30, 100, 200, strategy.min_bars - 1):
        ind = strategy.indicators(window.head(k))
        for name, a, b in zip(Indicators._fields, ind, full_ind, strict=True):
            np.testing.assert_array_equal(a, b[:k], err_msg=f"{name} at {k}")
        for a, b in zip(strategy.conditions(ind), full_cond, strict=True):
            np.testing.assert_array_equal(a, b[:k])


# --- real EURUSD H1 -------------------------------------------------------------------------------


def test_eurusd_gives_buys_and_sells_of_both_kinds(
    eurusd_walk: tuple[ResonanceStrategy, dict[int, Signal]],
) -> None:
    _, signals = eurusd_walk
    counts = Counter(kind(s) for s in signals.values())
    for side in ("buy", "sell"):
        for k in ("trend", "reversion"):
            assert counts[(side, k)] > 0, counts
    # One per regime, not one an hour: far fewer signals than bars.
    assert len(signals) < len(BARS) / 20, counts


def documented_entry(strategy: ResonanceStrategy, ind: Indicators) -> tuple[str, str] | None:
    """The module docstring's rules in plain numpy: which entry fires on the window's last bar?"""
    p = strategy.params
    up, down = ind.ema_fast > ind.ema_slow, ind.ema_fast < ind.ema_slow
    macd_up, macd_down = ind.macd > ind.macd_signal, ind.macd < ind.macd_signal
    trending, ranging = ind.adx > p["adx_trend"], ind.adx < p["adx_range"]
    oversold, overbought = ind.rsi < p["rsi_oversold"], ind.rsi > p["rsi_overbought"]
    entries = {
        ("buy", "trend"): (
            up
            & macd_up
            & trending
            & (ind.plus_di > ind.minus_di)
            & ~overbought
            & (ind.close <= ind.bb_upper),
            up,
        ),
        ("sell", "trend"): (
            down
            & macd_down
            & trending
            & (ind.minus_di > ind.plus_di)
            & ~oversold
            & (ind.close >= ind.bb_lower),
            down,
        ),
        ("buy", "reversion"): (oversold & ranging & (ind.close <= ind.bb_lower), oversold),
        ("sell", "reversion"): (overbought & ranging & (ind.close >= ind.bb_upper), overbought),
    }
    for key, (agree, regime) in entries.items():
        if not agree[-1]:
            continue
        run_start = len(regime) - np.argmin(regime[::-1]) if not regime.all() else 0
        if not agree[run_start:-1].any():
            return key
    return None


def test_every_eurusd_signal_follows_the_documented_rules(
    eurusd_walk: tuple[ResonanceStrategy, dict[int, Signal]],
) -> None:
    strategy, signals = eurusd_walk
    n = strategy.min_bars
    checked = sorted({*signals, *range(2000, 2600)})  # every signal, and 600 bars in a row
    for t in checked:
        window = span(BARS, t + 1 - n, t + 1)
        ind = strategy.indicators(window)
        expected = documented_entry(strategy, ind)
        got = signals.get(t)
        assert (kind(got) if got else None) == expected, t
        if got is not None:
            assert got.bar_time == int(BARS.time[t])
            assert got.sl_distance == pytest.approx(2.0 * float(ind.atr[-1]), rel=1e-15)
            assert got.tp_distance == pytest.approx(2.5 * got.sl_distance, rel=1e-15)
            assert got.context["adx"] == round(float(ind.adx[-1]), 1)
            assert got.context["rsi"] == round(float(ind.rsi[-1]), 1)


# --- parameters -----------------------------------------------------------------------------------


def test_bad_parameters_are_reported_all_at_once() -> None:
    with pytest.raises(ValueError) as err:
        ResonanceStrategy(
            {"ema_fast": 0, "rsi_oversold": 120, "variant": "mt4", "sl_atr": -1, "use_di": 1}
        )
    message = str(err.value)
    for expected in (
        "strategy.params.ema_fast: expected an integer >= 1, got 0",
        "strategy.params.rsi_oversold: expected a number from 0 to 100, got 120",
        "strategy.params.variant: expected 'talib' or 'mt5', got 'mt4'",
        "strategy.params.sl_atr: expected a number > 0, got -1",
        "strategy.params.use_di: expected true or false, got 1",
    ):
        assert expected in message


def test_parameters_that_contradict_each_other_are_refused() -> None:
    with pytest.raises(ValueError, match=r"ema_fast: must be < ema_slow \(26\), got 30"):
        ResonanceStrategy({"ema_fast": 30})
    with pytest.raises(ValueError, match=r"adx_range: must be <= adx_trend \(25"):
        ResonanceStrategy({"adx_range": 30})
    with pytest.raises(ValueError, match=r"rsi_oversold: must be < rsi_overbought \(60"):
        ResonanceStrategy({"rsi_overbought": 60, "rsi_oversold": 60})
    with pytest.raises(ValueError, match=r"bb_period: expected an integer >= 2"):
        ResonanceStrategy({"bb_period": 1})


def test_unknown_parameters_are_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"unknown key\(s\) adx_treshold for resonance"):
        ResonanceStrategy({"adx_treshold": 30})
