"""Indicator definitions, as specifications.

- The default variant is TA-Lib's: on real EURUSD H1 bars every indicator is NaN exactly where
  TA-Lib's is and equal to it within 1e-9 relative, bar by bar, everywhere else.
- The `mt5` variant follows MetaTrader 5's example indicators; small hand-worked vectors pin down
  each place where MT5 differs from TA-Lib.
- Every indicator is causal: a truncated history gives the same values at every common bar.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import talib
from backtesting.test import EURUSD
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.engine import indicators as ind

HIGH = EURUSD["High"].to_numpy(np.float64)
LOW = EURUSD["Low"].to_numpy(np.float64)
CLOSE = EURUSD["Close"].to_numpy(np.float64)
NAN = np.nan


def assert_matches_talib(ours: np.ndarray, theirs: np.ndarray) -> None:
    # NaN exactly where TA-Lib has NaN (the warm-up), and within 1e-9 relative everywhere else.
    assert np.isfinite(theirs).sum() > CLOSE.size - 500, "the oracle produced no values"
    np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=0.0, equal_nan=True)


# --- parity with TA-Lib on EURUSD H1 ------------------------------------------------------------


@pytest.mark.parametrize("period", [2, 20, 200])
def test_sma_matches_talib(period: int) -> None:
    assert_matches_talib(ind.sma(CLOSE, period), talib.SMA(CLOSE, period))


@pytest.mark.parametrize("period", [2, 12, 26, 200])
def test_ema_matches_talib(period: int) -> None:
    assert_matches_talib(ind.ema(CLOSE, period), talib.EMA(CLOSE, period))


@pytest.mark.parametrize(("fast", "slow", "signal"), [(12, 26, 9), (5, 35, 5), (2, 3, 2)])
def test_macd_matches_talib(fast: int, slow: int, signal: int) -> None:
    ours = ind.macd(CLOSE, fast, slow, signal)
    line, sig, hist = talib.MACD(CLOSE, fast, slow, signal)
    assert_matches_talib(ours.line, line)
    assert_matches_talib(ours.signal, sig)
    assert_matches_talib(ours.hist, hist)


@pytest.mark.parametrize("period", [2, 14, 30])
def test_rsi_matches_talib(period: int) -> None:
    assert_matches_talib(ind.rsi(CLOSE, period), talib.RSI(CLOSE, period))


@pytest.mark.parametrize(("period", "k"), [(20, 2.0), (10, 1.5), (50, 3.0)])
def test_bollinger_matches_talib(period: int, k: float) -> None:
    ours = ind.bollinger(CLOSE, period, k)
    upper, middle, lower = talib.BBANDS(CLOSE, period, k, k, 0)  # matype 0 = SMA
    assert_matches_talib(ours.upper, upper)
    assert_matches_talib(ours.middle, middle)
    assert_matches_talib(ours.lower, lower)


def test_true_range_matches_talib() -> None:
    assert_matches_talib(ind.true_range(HIGH, LOW, CLOSE), talib.TRANGE(HIGH, LOW, CLOSE))


@pytest.mark.parametrize("period", [1, 14, 50])
def test_atr_matches_talib(period: int) -> None:
    assert_matches_talib(ind.atr(HIGH, LOW, CLOSE, period), talib.ATR(HIGH, LOW, CLOSE, period))


@pytest.mark.parametrize("period", [2, 14, 30])
def test_adx_and_directional_indicators_match_talib(period: int) -> None:
    ours = ind.adx(HIGH, LOW, CLOSE, period)
    assert_matches_talib(ours.adx, talib.ADX(HIGH, LOW, CLOSE, period))
    assert_matches_talib(ours.plus_di, talib.PLUS_DI(HIGH, LOW, CLOSE, period))
    assert_matches_talib(ours.minus_di, talib.MINUS_DI(HIGH, LOW, CLOSE, period))


@given(
    steps=st.lists(st.integers(-3, 3), min_size=1, max_size=80),
    spreads=st.lists(st.integers(0, 2), min_size=80, max_size=80),
)
@settings(max_examples=60, deadline=None)
def test_talib_parity_holds_with_flat_bars_and_zero_ranges(
    steps: list[int], spreads: list[int]
) -> None:
    # Integer prices with repeated closes and zero-range bars: the divisions by zero (no gains or
    # losses, no true range, no directional movement) resolve the way TA-Lib resolves them.
    close = 100.0 + np.cumsum(np.asarray(steps, dtype=np.float64))
    spread = np.asarray(spreads[: close.size], dtype=np.float64)
    high, low = close + spread, close - spread

    def same(ours: np.ndarray, theirs: np.ndarray) -> None:
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-9, equal_nan=True)

    same(ind.ema(close, 5), talib.EMA(close, 5))
    for ours, theirs in zip(ind.macd(close, 3, 7, 4), talib.MACD(close, 3, 7, 4), strict=True):
        same(ours, theirs)
    same(ind.rsi(close, 5), talib.RSI(close, 5))
    for ours, theirs in zip(ind.bollinger(close, 5, 2.0), talib.BBANDS(close, 5), strict=True):
        same(ours, theirs)
    same(ind.atr(high, low, close, 5), talib.ATR(high, low, close, 5))
    dmi = ind.adx(high, low, close, 5)
    same(dmi.adx, talib.ADX(high, low, close, 5))
    same(dmi.plus_di, talib.PLUS_DI(high, low, close, 5))
    same(dmi.minus_di, talib.MINUS_DI(high, low, close, 5))


# --- MetaTrader 5 variants, worked by hand ------------------------------------------------------


def test_mt5_ema_is_seeded_with_the_first_price() -> None:
    x = np.array([2.0, 4.0, 9.0, 5.0, 11.0, 3.0])
    # period 3: alpha = 2/(3+1) = 0.5, y = y + 0.5·(x - y)
    # mt5:   y0 = 2 (first price); 2→3→6→5.5→8.25→5.625; NaN before bar period-1 = 2
    mt5 = ind.ema(x, 3, variant="mt5")
    np.testing.assert_array_equal(mt5, [NAN, NAN, 6.0, 5.5, 8.25, 5.625])
    # talib: y2 = (2+4+9)/3 = 5 (SMA seed); 5→5→8→5.5
    np.testing.assert_array_equal(ind.ema(x, 3), [NAN, NAN, 5.0, 5.0, 8.0, 5.5])
    np.testing.assert_allclose(ind.ema(x, 3), talib.EMA(x, 3), rtol=1e-15)


def test_mt5_macd_signal_is_a_simple_average_of_the_line() -> None:
    x = np.array([4.0, 8.0, 6.0, 10.0, 2.0, 6.0])
    # fast 1 (the price itself), slow 3 (alpha 0.5, seeded with 4), signal 2.
    #   slow EMA:        4, 6, 6, 8, 5, 5.5
    #   line = x - slow: 0, 2, 0, 2, -3, 0.5
    #   signal = SMA2:   -, 1, 1, 1, -0.5, -1.25
    # Everything is warm-up before bar slow+signal-2 = 3.
    m = ind.macd(x, fast=1, slow=3, signal=2, variant="mt5")
    np.testing.assert_array_equal(m.line, [NAN, NAN, NAN, 2.0, -3.0, 0.5])
    np.testing.assert_array_equal(m.signal, [NAN, NAN, NAN, 1.0, -0.5, -1.25])
    np.testing.assert_array_equal(m.hist, [NAN, NAN, NAN, 1.0, -2.5, 1.75])
    # talib: the same line (slow seeded with (4+8+6)/3 = 6 at bar 2), but the signal is an EMA
    # (alpha 2/3) seeded with mean(line[2:4]) = 1: 1 → 1 + 2/3·(-3 - 1) = -5/3
    #                                              → -5/3 + 2/3·(0.5 + 5/3) = -2/9
    t = ind.macd(x, fast=1, slow=3, signal=2)
    np.testing.assert_array_equal(t.line, m.line)
    np.testing.assert_allclose(t.signal, [NAN, NAN, NAN, 1.0, -5 / 3, -2 / 9], rtol=1e-15)


# Seven bars; true range = max(high, previous close) - min(low, previous close).
#   bar:        0    1    2    3    4    5    6
#   high:      10   11   12   14   13   11   16
#   low:        8    9   10   11    9   10   13
#   close:      9   10   11   13   10   11   15
#   TR:         -    2    2    3    4    1    5   (bar 4: 13-9, bar 6: 16-11, a gap from close 11)
ATR_H = np.array([10.0, 11, 12, 14, 13, 11, 16])
ATR_L = np.array([8.0, 9, 10, 11, 9, 10, 13])
ATR_C = np.array([9.0, 10, 11, 13, 10, 11, 15])


def test_mt5_atr_is_a_simple_average_of_true_range() -> None:
    np.testing.assert_array_equal(ind.true_range(ATR_H, ATR_L, ATR_C), [NAN, 2, 2, 3, 4, 1, 5])
    # period 3, both variants start at bar 3 with (2+2+3)/3 = 7/3
    # mt5:   rolling mean       → (2+3+4)/3 = 3, (3+4+1)/3 = 8/3, (4+1+5)/3 = 10/3
    # talib: Wilder (prev·2+TR)/3 → (7/3·2+4)/3 = 26/9, (26/9·2+1)/3 = 61/27, (61/27·2+5)/3 = 257/81
    mt5 = ind.atr(ATR_H, ATR_L, ATR_C, 3, variant="mt5")
    np.testing.assert_allclose(mt5, [NAN, NAN, NAN, 7 / 3, 3, 8 / 3, 10 / 3], rtol=1e-15)
    wilder = ind.atr(ATR_H, ATR_L, ATR_C, 3)
    np.testing.assert_allclose(
        wilder, [NAN, NAN, NAN, 7 / 3, 26 / 9, 61 / 27, 257 / 81], rtol=1e-15
    )
    np.testing.assert_allclose(wilder, talib.ATR(ATR_H, ATR_L, ATR_C, 3), rtol=1e-15)


# Nine bars for ADX, period 3 (mt5: alpha = 2/(3+1) = 0.5).
#   bar:  high low close | +DM -DM  TR | 100·+DM/TR 100·-DM/TR
#   0      10   8   9    |
#   1      11   9  10    |  1   0    2 |    50         0
#   2      12  10  11    |  1   0    2 |    50         0
#   3      11   7   8    |  0   3    4 |     0        75     (down move 3 beats up move -1)
#   4      10   6   9    |  0   1    4 |     0        25
#   5      13   9  12    |  3   0    4 |    75         0
#   6      14  12  13    |  1   0    2 |    50         0
#   7      14  12  13    |  0   0    2 |     0         0     (an inside bar: no movement)
#   8      14  10  11    |  0   2    4 |     0        50
ADX_H = np.array([10.0, 11, 12, 11, 10, 13, 14, 14, 14])
ADX_L = np.array([8.0, 9, 10, 7, 6, 9, 12, 12, 10])
ADX_C = np.array([9.0, 10, 11, 8, 9, 12, 13, 13, 11])


def test_mt5_adx_smooths_per_bar_ratios_with_an_ema() -> None:
    # +DI, -DI start at 0 on bar 0, then y = (y + ratio)/2:
    plus = [0, 25, 37.5, 18.75, 9.375, 42.1875, 46.09375, 23.046875, 11.5234375]
    minus = [0, 0, 0, 37.5, 31.25, 15.625, 7.8125, 3.90625, 26.953125]
    # DX = 100·|+DI - -DI| / (+DI + -DI) per bar, e.g. bar 3: 100·18.75/56.25 = 100/3;
    # bars 6 and 7 share 4900/69 because an inside bar halves both DIs.
    dx = [100.0, 100.0, 100 / 3, 700 / 13, 1700 / 37, 4900 / 69, 4900 / 69, 7900 / 197]
    # ADX starts at 0 on bar 0, then adx = (adx + dx)/2 bar by bar.
    adx_by_bar = [0.0]
    for value in dx:
        adx_by_bar.append((adx_by_bar[-1] + value) / 2)
    got = ind.adx(ADX_H, ADX_L, ADX_C, 3, variant="mt5")
    # MT5 draws +DI/-DI from bar `period` = 3 and ADX from bar 2·period = 6.
    np.testing.assert_array_equal(got.plus_di, [NAN] * 3 + plus[3:])
    np.testing.assert_array_equal(got.minus_di, [NAN] * 3 + minus[3:])
    np.testing.assert_allclose(got.adx, [NAN] * 6 + adx_by_bar[6:], rtol=1e-14)
    assert got.adx[6:] == pytest.approx([60.4953, 65.7549, 52.9282], abs=1e-4)


def test_wilder_adx_differs_from_mt5_and_matches_talib_on_the_same_bars() -> None:
    wilder = ind.adx(ADX_H, ADX_L, ADX_C, 3)
    np.testing.assert_allclose(wilder.adx, talib.ADX(ADX_H, ADX_L, ADX_C, 3), rtol=1e-14)
    np.testing.assert_allclose(wilder.plus_di, talib.PLUS_DI(ADX_H, ADX_L, ADX_C, 3), rtol=1e-14)
    # Wilder at bar 3: sums over bars 1..2 (TR 4, +DM 2, -DM 0) take one step S - S/3 + x:
    # sTR = 4 - 4/3 + 4 = 20/3, s+DM = 2 - 2/3 + 0 = 4/3 → +DI = 100·(4/3)/(20/3) = 20
    assert wilder.plus_di[3] == pytest.approx(20.0, rel=1e-14)
    assert ind.adx(ADX_H, ADX_L, ADX_C, 3, variant="mt5").plus_di[3] == 18.75


def test_rsi_without_any_movement_reads_0_in_talib_and_50_in_mt5() -> None:
    flat = np.full(6, 1.2345)
    np.testing.assert_array_equal(ind.rsi(flat, 3), [NAN, NAN, NAN, 0.0, 0.0, 0.0])
    np.testing.assert_array_equal(ind.rsi(flat, 3), talib.RSI(flat, 3))
    np.testing.assert_array_equal(ind.rsi(flat, 3, "mt5"), [NAN, NAN, NAN, 50.0, 50.0, 50.0])
    # Otherwise the two are the same Wilder RSI.
    np.testing.assert_array_equal(ind.rsi(CLOSE, 14, "mt5"), ind.rsi(CLOSE, 14))


def test_bollinger_uses_the_population_standard_deviation() -> None:
    x = np.array([1.0, 2.0, 3.0, 4.0])
    # mean 2.5; σ² = (2.25 + 0.25 + 0.25 + 2.25)/4 = 1.25 (divided by n, not n-1)
    bands = ind.bollinger(x, 4, 2.0)
    assert bands.middle[3] == 2.5
    assert bands.upper[3] == pytest.approx(2.5 + 2 * np.sqrt(1.25), rel=1e-15)
    assert bands.lower[3] == pytest.approx(2.5 - 2 * np.sqrt(1.25), rel=1e-15)
    assert np.isnan(bands.middle[:3]).all()


def test_each_mt5_variant_really_differs_from_talib_after_warm_up() -> None:
    # Not only in the warm-up: the definitions disagree on real data for good.
    for name, talib_values, mt5_values in [
        ("ema", ind.ema(CLOSE, 26), ind.ema(CLOSE, 26, "mt5")),
        ("macd signal", ind.macd(CLOSE).signal, ind.macd(CLOSE, variant="mt5").signal),
        ("atr", ind.atr(HIGH, LOW, CLOSE), ind.atr(HIGH, LOW, CLOSE, variant="mt5")),
        ("adx", ind.adx(HIGH, LOW, CLOSE).adx, ind.adx(HIGH, LOW, CLOSE, variant="mt5").adx),
    ]:
        ok = np.isfinite(talib_values) & np.isfinite(mt5_values)
        assert not np.allclose(talib_values[ok], mt5_values[ok], rtol=1e-9), name


# --- causality ----------------------------------------------------------------------------------

Indicator = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _all_indicators(variant: ind.Variant) -> dict[str, Indicator]:
    return {
        "sma": lambda h, lo, c: ind.sma(c, 20),
        "ema": lambda h, lo, c: ind.ema(c, 26, variant),
        "macd.line": lambda h, lo, c: ind.macd(c, variant=variant).line,
        "macd.signal": lambda h, lo, c: ind.macd(c, variant=variant).signal,
        "macd.hist": lambda h, lo, c: ind.macd(c, variant=variant).hist,
        "rsi": lambda h, lo, c: ind.rsi(c, 14, variant),
        "bb.upper": lambda h, lo, c: ind.bollinger(c).upper,
        "bb.lower": lambda h, lo, c: ind.bollinger(c).lower,
        "tr": lambda h, lo, c: ind.true_range(h, lo, c),
        "atr": lambda h, lo, c: ind.atr(h, lo, c, 14, variant),
        "adx": lambda h, lo, c: ind.adx(h, lo, c, 14, variant).adx,
        "plus_di": lambda h, lo, c: ind.adx(h, lo, c, 14, variant).plus_di,
        "minus_di": lambda h, lo, c: ind.adx(h, lo, c, 14, variant).minus_di,
    }


@pytest.mark.parametrize("variant", ind.VARIANTS)
def test_a_truncated_history_gives_the_same_values_at_every_common_bar(
    variant: ind.Variant,
) -> None:
    for name, f in _all_indicators(variant).items():
        full = f(HIGH, LOW, CLOSE)
        assert full.shape == CLOSE.shape, name
        for cut in (0, 1, 2, 14, 26, 27, 33, 34, 100, 2001, CLOSE.size - 1):
            part = f(HIGH[:cut], LOW[:cut], CLOSE[:cut])
            np.testing.assert_array_equal(part, full[:cut], err_msg=f"{name} cut at {cut}")


@given(
    closes=st.lists(st.floats(0.5, 2.0), min_size=2, max_size=120),
    cut=st.integers(0, 120),
    variant=st.sampled_from(ind.VARIANTS),
)
@settings(max_examples=40, deadline=None)
def test_no_indicator_looks_ahead(closes: list[float], cut: int, variant: ind.Variant) -> None:
    # Changing the bars after `cut` leaves every value up to `cut` untouched.
    c = np.asarray(closes)
    h, lo = c * 1.001, c * 0.999
    future = c.copy()
    future[cut:] = future[cut:][::-1] * 1.1
    hf, lf = future * 1.001, future * 0.999
    for name, f in _all_indicators(variant).items():
        np.testing.assert_array_equal(
            f(h, lo, c)[:cut], f(hf, lf, future)[:cut], err_msg=f"{name} looked ahead"
        )


# --- bad input ----------------------------------------------------------------------------------


def test_bad_arguments_name_the_field_and_what_was_expected() -> None:
    with pytest.raises(ValueError, match=r"period: must be an integer >= 1, got 0"):
        ind.ema(CLOSE, 0)
    with pytest.raises(ValueError, match=r"period: must be an integer >= 1, got 2.5"):
        ind.sma(CLOSE, 2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"variant: must be one of talib, mt5, got 'mt4'"):
        ind.rsi(CLOSE, 14, "mt4")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"fast: must be < slow \(12\), got 26"):
        ind.macd(CLOSE, fast=26, slow=12)
    with pytest.raises(ValueError, match=r"high/low/close: must have the same length, got 3/3/2"):
        ind.atr(CLOSE[:3], LOW[:3], CLOSE[:2])
    with pytest.raises(ValueError, match=r"k: must be a finite number > 0"):
        ind.bollinger(CLOSE, 20, 0.0)
    with pytest.raises(ValueError, match=r"x: must be a 1-D array"):
        ind.sma(np.ones((3, 3)), 2)


def test_short_histories_are_all_warm_up() -> None:
    short = CLOSE[:10]
    assert np.isnan(ind.ema(short, 26)).all()
    assert np.isnan(ind.macd(short).signal).all()
    assert np.isnan(ind.adx(HIGH[:10], LOW[:10], short).adx).all()
