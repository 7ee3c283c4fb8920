"""Technical indicators over a bar history: vectorised, causal, TA-Lib compatible by default.

Every function takes float64 arrays (oldest first) and returns arrays of the same length. The value
at bar t uses bars <= t only, and the first bars are NaN while the indicator warms up, exactly where
TA-Lib's outputs are NaN. Recursive indicators (EMA, Wilder averages) are seeded at the start of
the given history, so a history that starts elsewhere gives slightly different early values.

Where MetaTrader 5's built-ins compute something else, `variant="mt5"` follows MetaQuotes'
example sources (`MQL5/Indicators/Examples/*.mq5`, `MovingAverages.mqh`):

- EMA: seeded with the first price (TA-Lib: mean of the first `period` prices);
- MACD: signal line is an SMA of the MACD line (TA-Lib: EMA), on first-price-seeded EMAs;
- ATR: simple moving average of the true range (TA-Lib: Wilder's average);
- ADX/+DI/-DI: `iADX` takes per-bar DM/TR ratios and smooths them with an EMA, alpha 2/(n+1)
  (TA-Lib is Wilder's ADX, which MT5 calls `iADXWilder`);
- RSI: identical except a market without movement reads 50 (TA-Lib: 0).

Bollinger Bands and SMA are the same in both. MT5 buffers hold values during warm-up; here the
warm-up is NaN in both variants, so the mt5 values equal MT5's buffers wherever they are defined.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

Variant = Literal["talib", "mt5"]
VARIANTS: tuple[Variant, ...] = ("talib", "mt5")


class Macd(NamedTuple):
    line: np.ndarray  # EMA(fast) - EMA(slow)
    signal: np.ndarray  # moving average of the line
    hist: np.ndarray  # line - signal


class Bands(NamedTuple):
    upper: np.ndarray
    middle: np.ndarray
    lower: np.ndarray


class Adx(NamedTuple):
    adx: np.ndarray
    plus_di: np.ndarray
    minus_di: np.ndarray


# --- helpers ------------------------------------------------------------------------------------


def _period(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{name}: must be an integer >= 1, got {value!r}")
    return int(value)


def _variant(value: str) -> Variant:
    if value not in VARIANTS:
        raise ValueError(f"variant: must be one of {', '.join(VARIANTS)}, got {value!r}")
    return value  # type: ignore[return-value]


def _series(name: str, x: np.ndarray) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name}: must be a 1-D array, got shape {arr.shape}")
    return arr


def _hlc(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> tuple[np.ndarray, ...]:
    h, lo, c = _series("high", high), _series("low", low), _series("close", close)
    if not h.shape == lo.shape == c.shape:
        raise ValueError(
            f"high/low/close: must have the same length, got {h.size}/{lo.size}/{c.size}"
        )
    return h, lo, c


def _nan(n: int) -> np.ndarray:
    return np.full(n, np.nan)


def _smooth(x: np.ndarray, alpha: float, start: int, seed: float) -> np.ndarray:
    """The one recursion behind every EMA and Wilder average: y[start] = seed, then
    y[i] = y[i-1] + alpha * (x[i] - y[i-1]); NaN before `start`.

    numpy has no first-order IIR filter (scipy's lfilter is not a dependency), and the closed form
    with powers of (1 - alpha) loses precision over thousands of bars, so this is a plain loop over
    Python floats: about 0.1 µs a bar, well under a millisecond for 2000 bars.
    """
    out = _nan(x.size)
    if start >= x.size:
        return out
    y = float(seed)
    acc = [y]
    for v in x[start + 1 :].tolist():
        y += alpha * (v - y)
        acc.append(y)
    out[start:] = acc
    return out


def _rolling_mean(x: np.ndarray, period: int) -> np.ndarray:
    # A window view rather than a running sum: no error accumulates along the series.
    out = _nan(x.size)
    if x.size >= period:
        out[period - 1 :] = sliding_window_view(x, period).mean(axis=1)
    return out


def _ema_seeded(x: np.ndarray, period: int, end_of_seed: int) -> np.ndarray:
    """TA-Lib's EMA: seeded at `end_of_seed` with the mean of the `period` values ending there."""
    if end_of_seed >= x.size:
        return _nan(x.size)
    seed = float(x[end_of_seed - period + 1 : end_of_seed + 1].mean())
    return _smooth(x, 2.0 / (period + 1), end_of_seed, seed)


def _ema_first_price(x: np.ndarray, period: int) -> np.ndarray:
    """MT5's EMA (`ExponentialMAOnBuffer`): seeded with the first price, no warm-up mask."""
    if x.size == 0:
        return _nan(0)
    return _smooth(x, 2.0 / (period + 1), 0, float(x[0]))


# --- moving averages ----------------------------------------------------------------------------


def sma(x: np.ndarray, period: int) -> np.ndarray:
    """Simple moving average; first value at bar period-1."""
    return _rolling_mean(_series("x", x), _period("period", period))


def ema(x: np.ndarray, period: int, variant: Variant = "talib") -> np.ndarray:
    """Exponential moving average, alpha = 2/(period+1); first value at bar period-1.

    talib: seeded with the SMA of the first `period` prices. mt5: seeded with the first price and
    recursed from bar 0 (MT5 draws from bar period-1, the same place this stops being NaN).
    """
    x, period = _series("x", x), _period("period", period)
    if _variant(variant) == "talib":
        return _ema_seeded(x, period, period - 1)
    out = _ema_first_price(x, period)
    out[: period - 1] = np.nan
    return out


def macd(
    close: np.ndarray,
    fast: int = 12,
    slow: int = 26,
    signal: int = 9,
    variant: Variant = "talib",
) -> Macd:
    """MACD line, signal line and histogram; all three start at bar slow+signal-2 (TA-Lib's).

    talib: both EMAs are SMA-seeded at bar slow-1 (the fast one on the `fast` prices ending there,
    as ta_MACD.c does, so it is not `ema(close, fast)`), signal = SMA-seeded EMA of the line.
    mt5 (MACD.mq5): first-price-seeded EMAs from bar 0, signal = SMA of the line from bar 0.
    """
    x = _series("close", close)
    fast, slow, signal = _period("fast", fast), _period("slow", slow), _period("signal", signal)
    if fast >= slow:
        raise ValueError(f"fast: must be < slow ({slow}), got {fast}")
    first = slow + signal - 2
    _, _, line, sig = macd_parts(x, fast, slow, signal, _variant(variant))
    line = line.copy()
    line[:first] = np.nan
    sig[:first] = np.nan
    return Macd(line, sig, line - sig)


def macd_parts(
    x: np.ndarray, fast: int, slow: int, signal: int, variant: Variant
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The two EMAs, the line and the signal behind `macd`, before the warm-up mask."""
    first = slow + signal - 2
    if variant == "talib":
        ema_fast, ema_slow = _ema_seeded(x, fast, slow - 1), _ema_seeded(x, slow, slow - 1)
        line = ema_fast - ema_slow
        sig = _nan(x.size)
        if x.size > first:
            sig[slow - 1 :] = _ema_seeded(line[slow - 1 :], signal, signal - 1)
    else:
        ema_fast, ema_slow = _ema_first_price(x, fast), _ema_first_price(x, slow)
        line = ema_fast - ema_slow
        sig = _rolling_mean(line, signal)
    return ema_fast, ema_slow, line, sig


# --- oscillators and bands ----------------------------------------------------------------------


def rsi(close: np.ndarray, period: int = 14, variant: Variant = "talib") -> np.ndarray:
    """Wilder's RSI; first value at bar `period`.

    Average gain/loss start as the mean of the first `period` changes, then Wilder's average
    (alpha 1/period). With neither gains nor losses TA-Lib reads 0 and MT5 reads 50.
    """
    x, period = _series("close", close), _period("period", period)
    flat = 0.0 if _variant(variant) == "talib" else 50.0
    if x.size <= period:
        return _nan(x.size)
    avg_gain, avg_loss = rsi_averages(x, period)
    out = rsi_from_averages(avg_gain, avg_loss, flat)
    out[:period] = np.nan
    return out


def rsi_averages(x: np.ndarray, period: int) -> tuple[np.ndarray, np.ndarray]:
    """Wilder's average gain and loss behind `rsi` (the state a running RSI carries on)."""
    diff = np.diff(x, prepend=np.nan)
    gain, loss = np.maximum(diff, 0.0), np.maximum(-diff, 0.0)
    avg_gain = _smooth(gain, 1.0 / period, period, float(gain[1 : period + 1].mean()))
    avg_loss = _smooth(loss, 1.0 / period, period, float(loss[1 : period + 1].mean()))
    return avg_gain, avg_loss


def rsi_from_averages(avg_gain: np.ndarray, avg_loss: np.ndarray, flat: float) -> np.ndarray:
    total = avg_gain + avg_loss
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total == 0.0, flat, 100.0 * avg_gain / total)


def bollinger(close: np.ndarray, period: int = 20, k: float = 2.0) -> Bands:
    """SMA ± k population standard deviations (ddof 0, as TA-Lib and BB.mq5); from bar period-1."""
    x, period = _series("close", close), _period("period", period)
    if not np.isfinite(k) or k <= 0:
        raise ValueError(f"k: must be a finite number > 0, got {k!r}")
    mid, sd = _nan(x.size), _nan(x.size)
    if x.size >= period:
        win = sliding_window_view(x, period)
        m = win.mean(axis=1)
        # Two-pass variance: E[x²] - E[x]² cancels badly when σ is tiny next to the price.
        mid[period - 1 :] = m
        sd[period - 1 :] = np.sqrt(((win - m[:, None]) ** 2).mean(axis=1))
    return Bands(mid + k * sd, mid, mid - k * sd)


# --- range and direction ------------------------------------------------------------------------


def true_range(high: np.ndarray, low: np.ndarray, close: np.ndarray) -> np.ndarray:
    """max(high, previous close) - min(low, previous close); NaN at bar 0 (no previous close)."""
    h, lo, c = _hlc(high, low, close)
    prev = np.empty_like(c)
    prev[:1] = np.nan
    prev[1:] = c[:-1]
    return np.maximum(h, prev) - np.minimum(lo, prev)


def atr(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    period: int = 14,
    variant: Variant = "talib",
) -> np.ndarray:
    """Average true range; first value at bar `period`: the mean true range of bars 1..period.

    talib: Wilder's average afterwards. mt5 (ATR.mq5): a rolling mean of the last `period` ranges.
    """
    tr = true_range(high, low, close)
    period = _period("period", period)
    out = _nan(tr.size)
    if tr.size <= period:
        return out
    if _variant(variant) == "talib":
        return _smooth(tr, 1.0 / period, period, float(tr[1 : period + 1].mean()))
    out[1:] = _rolling_mean(tr[1:], period)
    return out


def _directional_movement(h: np.ndarray, lo: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """+DM and -DM: only the larger of the two moves counts, neither on a tie; NaN at bar 0."""
    up = np.diff(h, prepend=np.nan)
    down = -np.diff(lo, prepend=np.nan)
    plus = np.where((up > down) & (up > 0.0), up, 0.0)
    minus = np.where((down > up) & (down > 0.0), down, 0.0)
    plus[:1] = minus[:1] = np.nan
    return plus, minus


def _dx(plus_di: np.ndarray, minus_di: np.ndarray) -> np.ndarray:
    total = plus_di + minus_di
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total == 0.0, 0.0, 100.0 * np.abs(plus_di - minus_di) / total)


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    # 100 * num / den, 0 where den is 0 (a bar or window without range), NaN stays NaN.
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den == 0.0, 0.0, 100.0 * num / den)


def adx(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    period: int = 14,
    variant: Variant = "talib",
) -> Adx:
    """ADX with +DI and -DI.

    talib (Wilder, = MT5's iADXWilder after warm-up): TR, +DM, -DM summed over bars 1..period-1,
    then Wilder-smoothed; DI = 100·sDM/sTR from bar `period`; ADX = Wilder average of DX seeded
    with the mean of the first `period` DX values, from bar 2·period-1.
    mt5 (iADX, ADX.mq5): per-bar 100·DM/TR, EMA-smoothed (alpha 2/(period+1)) from 0 at bar 0;
    ADX = the same EMA of DX. MT5 draws DI from bar `period` and ADX from bar 2·period.
    """
    h, lo, c = _hlc(high, low, close)
    period = _period("period", period)
    return adx_parts(h, lo, c, period, _variant(variant))[0]


def adx_parts(
    h: np.ndarray, lo: np.ndarray, c: np.ndarray, period: int, variant: Variant
) -> tuple[Adx, tuple[np.ndarray, ...]]:
    """`adx` and the running sums behind it (talib: smoothed TR, +DM, -DM; mt5: none beyond
    the unmasked DI lines and ADX), the state a running ADX carries on."""
    tr = true_range(h, lo, c)
    plus_dm, minus_dm = _directional_movement(h, lo)
    n = h.size
    if variant == "talib":
        if n <= period:
            return Adx(_nan(n), _nan(n), _nan(n)), ()
        # Wilder's running sums S = S - S/n + x, kept divided by n (the ratios are unchanged).
        s = period - 1
        alpha = 1.0 / period
        s_tr = _smooth(tr, alpha, s, float(tr[1:period].sum()) / period)
        s_plus = _smooth(plus_dm, alpha, s, float(plus_dm[1:period].sum()) / period)
        s_minus = _smooth(minus_dm, alpha, s, float(minus_dm[1:period].sum()) / period)
        sums = (s_tr, s_plus, s_minus)
        plus_di, minus_di = _ratio(s_plus, s_tr), _ratio(s_minus, s_tr)
        plus_di[:period] = minus_di[:period] = np.nan
        dx = _dx(plus_di, minus_di)
        first = 2 * period - 1
        if n <= first:
            return Adx(_nan(n), plus_di, minus_di), sums
        adx_ = _smooth(dx, alpha, first, float(dx[period : first + 1].mean()))
        return Adx(adx_, plus_di, minus_di), sums
    alpha = 2.0 / (period + 1)
    plus_di = _smooth(_ratio(plus_dm, tr), alpha, 0, 0.0)
    minus_di = _smooth(_ratio(minus_dm, tr), alpha, 0, 0.0)
    adx_ = _smooth(_dx(plus_di, minus_di), alpha, 0, 0.0)
    sums = (plus_di.copy(), minus_di.copy(), adx_.copy())
    plus_di[:period] = minus_di[:period] = np.nan
    adx_[: 2 * period] = np.nan
    return Adx(adx_, plus_di, minus_di), sums


# --- fixed windows, in closed form --------------------------------------------------------------


def wilder_weights(period: int, length: int) -> np.ndarray:
    """Weights w with `sum(w * tr[1:length])` = TA-Lib's ATR at the last bar of a `length`-bar
    window (seeded with the mean true range of window bars 1..period, then Wilder's average).

    The recursion written out as one weighted sum: the same number as the loop to ~1e-15
    relative (all terms are positive: no cancellation), but a pure function of the window's bars
    that numpy evaluates in a few vector operations, for one window or for every window of a
    series, with identical bits either way.
    """
    key = (period, length)
    w = _WEIGHTS.get(key)
    if w is None:
        beta, steps = 1.0 - 1.0 / period, length - 1 - period
        w = np.empty(length - 1)
        w[:period] = beta**steps / period
        w[period:] = (1.0 / period) * beta ** np.arange(steps - 1, -1, -1, dtype=np.float64)
        w.flags.writeable = False
        _WEIGHTS[key] = w
    return w


_WEIGHTS: dict[tuple[int, int], np.ndarray] = {}
_CHUNK = 4096  # rows per block in the whole-series forms: bounded memory on long series


def window_dot(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """`sum(x[k-L+1 : k+1] * w)` for every k >= L-1 (L = len(w); NaN before).

    Each window is multiplied and summed on its own, in the same order as `(x[-L:] * w).sum()`
    for a single window, so the whole series and one bar at a time agree bit for bit.
    """
    L, n = w.size, x.size
    out = _nan(n)
    if n == L:  # one window (a new bar): the same product and sum as a row of the view below
        out[-1] = (x * w).sum()
        return out
    for a in range(L - 1, n, _CHUNK):
        b = min(n, a + _CHUNK)
        out[a:b] = (sliding_window_view(x[a - L + 1 : b], L) * w).sum(axis=1)
    return out


def window_mean(x: np.ndarray, period: int) -> np.ndarray:
    """`x[k-period+1 : k+1].mean()` for every k (NaN before), in blocks; bit for bit the same
    as the mean of one window (numpy sums each row of the window view on its own)."""
    n = x.size
    out = _nan(n)
    for a in range(period - 1, n, _CHUNK):
        b = min(n, a + _CHUNK)
        out[a:b] = sliding_window_view(x[a - period + 1 : b], period).mean(axis=1)
    return out


def window_atr(
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    period: int,
    length: int,
    variant: Variant = "talib",
) -> np.ndarray:
    """The ATR each bar would read from a window of its newest `length` bars (`atr` on that window,
    last value): a fixed-window ATR for every bar of a series, NaN where fewer than `length` bars
    or no ATR. Call it on the last `length` bars for the newest bar alone."""
    tr = true_range(high, low, close)
    out = _nan(tr.size)
    if length <= period or tr.size < length:
        return out
    if _variant(variant) == "talib":
        out[1:] = window_dot(tr[1:], wilder_weights(period, length))
    else:
        out[1:] = window_mean(tr[1:], period)
        out[: length - 1] = np.nan
    return out


def window_atr_last(
    high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int, length: int
) -> float:
    """`window_atr(h, l, c, period, length)[-1]` (TA-Lib variant) of the newest `length` bars,
    bit for bit: the same true ranges (max/min/subtract are exact), the same weights, one
    product and one sum. It skips the whole-array scaffolding (validation, two NaN arrays, a
    copy of the tail), which cost ~10 µs on every new bar for one number."""
    if length <= period or high.shape[0] < length:
        return np.nan
    prev = close[-length:-1]
    tr = np.maximum(high[1 - length :], prev) - np.minimum(low[1 - length :], prev)
    return float((tr * wilder_weights(period, length)).sum())
