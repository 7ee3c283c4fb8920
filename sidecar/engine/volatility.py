"""ATR percentile: how the newest ATR ranks within its own recent history (once per new bar).

The ranked values are Wilder's ATR seeded at the start of a fixed tail of `window + 10·period`
bars, so the answer does not depend on how many bars were loaded. They are computed without
running that recursion over the tail for every bar: a recursion y seeded at bar s and a running
one F over the same true ranges differ by a geometric term, y[k] = F[k] + β^(k-s)·(y[s] - F[s])
(β = 1 - 1/period). So one running ATR per history (O(1) per new bar) and a 500-element vector
operation give the tail's values; the same formula over every bar gives a whole series. The
result equals the recursion seeded at s to rounding (~1e-16 relative): only two ATR values within
that of each other could rank differently than a fresh loop over the tail would.
"""

from __future__ import annotations

import numpy as np

from sidecar.engine import indicators
from sidecar.engine.bars import Bars

# Wilder's ATR forgets its seed to e^-10 after ten periods: below that the ranked values would
# still depend on where the history started.
_SEED_PERIODS = 10
_CHUNK = 2048  # bars per block in `percentile_series`: bounded memory (block x window floats)


def bars_needed(period: int, window: int) -> int:
    return window + _SEED_PERIODS * period


def _powers(period: int, window: int) -> np.ndarray:
    # β^(k-s) for the ranked bars k of a tail seeded at s (k-s: need-window-period..need-1-period)
    key = (period, window)
    pw = _POWERS.get(key)
    if pw is None:
        need, beta = bars_needed(period, window), 1.0 - 1.0 / period
        pw = beta ** np.arange(need - window - period, need - period, dtype=np.float64)
        pw.flags.writeable = False
        _POWERS[key] = pw
    return pw


_POWERS: dict[tuple[int, int], np.ndarray] = {}


def _rank(values: np.ndarray, window: int) -> float | None:
    if not np.isfinite(values).all():  # the method: np.all's Python wrapper cost ~5 µs a bar
        return None
    return round(100.0 * float(np.count_nonzero(values <= values[-1])) / window, 4)


def running_atr(bars: Bars, period: int) -> np.ndarray:
    """TA-Lib's ATR over the whole of `bars` (seeded at their start): the F of the module doc."""
    return indicators.atr(bars.high, bars.low, bars.close, period)


def percentile_at(tail: Bars, running: np.ndarray, period: int, window: int) -> float | None:
    """The percentile for the newest bar, from the last `bars_needed` bars and the running ATR
    over (at least) the same bars, aligned on the newest."""
    need = bars_needed(period, window)
    # The seed as `indicators.atr` takes it, the mean true range of the tail's bars 1..period,
    # written out (`true_range` + `mean` on 15 bars cost ~10 µs a bar in wrappers): the same
    # elementwise max/min/subtract, the same sum, the same division, so the same bits.
    bars_1, end = slice(1 - need, 1 - need + period), -need + period
    prev = tail.close[-need:end]
    tr = np.maximum(tail.high[bars_1], prev) - np.minimum(tail.low[bars_1], prev)
    seed = float(np.add.reduce(tr)) / period
    anchor = float(running[-need + period])
    values = running[-window:] + _powers(period, window) * (seed - anchor)
    return _rank(values, window)


def atr_percentile(bars: Bars, period: int, window: int) -> float | None:
    """Share (0..100) of the last `window` ATR values at or below the newest one.

    Uses a fixed tail of the history, so the answer does not depend on how many bars were
    loaded; None until that tail is available or when the ATR is not finite.
    """
    if len(bars) < bars_needed(period, window):
        return None
    return percentile_at(bars, running_atr(bars, period), period, window)


def percentile_series(
    bars: Bars, running: np.ndarray, period: int, window: int
) -> list[float | None]:
    """`percentile_at` for every bar with a full tail behind it (None before), vectorised in
    blocks of bars; bit for bit what one bar at a time gives."""
    need, n = bars_needed(period, window), len(bars)
    out: list[float | None] = [None] * n
    if n < need:
        return out
    tr = indicators.true_range(bars.high, bars.low, bars.close)
    # The seed of the tail ending at bar e: mean true range of its bars 1..period.
    seeds = indicators.window_mean(tr, period)
    pw = _powers(period, window)
    view = np.lib.stride_tricks.sliding_window_view(running, window)
    # A row is finite when its running ATRs are (prefix counts of NaNs) and its shift is.
    bad = np.concatenate(([0], np.cumsum(~np.isfinite(running))))
    # `_rank`'s rounding, once per possible count: the same floats, looked up.
    table = np.array([round(100.0 * float(c) / window, 4) for c in range(window + 1)])
    for a in range(need - 1, n, _CHUNK):
        b = min(n, a + _CHUNK)
        ends = np.arange(a, b)
        s = ends - need + 1 + period  # the seed bar of each tail
        shift = seeds[s] - running[s]
        values = view[a - window + 1 : b - window + 1] + pw * shift[:, None]
        counts = np.count_nonzero(values <= values[:, -1:], axis=1)
        finite = (bad[ends + 1] == bad[ends + 1 - window]) & np.isfinite(shift)
        ranks = table[counts].tolist()
        for k in np.flatnonzero(finite).tolist():
            out[a + k] = ranks[k]
    return out
