"""ATR percentile: how the newest ATR ranks within its own recent history (once per new bar)."""

from __future__ import annotations

import numpy as np

from sidecar.engine import indicators
from sidecar.engine.bars import Bars

# Wilder's ATR forgets its seed to e^-10 after ten periods: below that the ranked values would
# still depend on where the history started.
_SEED_PERIODS = 10


def bars_needed(period: int, window: int) -> int:
    return window + _SEED_PERIODS * period


def atr_percentile(bars: Bars, period: int, window: int) -> float | None:
    """Share (0..100) of the last `window` ATR values at or below the newest one.

    Uses a fixed tail of the history, so the answer does not depend on how many bars were
    loaded; None until that tail is available or when the ATR is not finite.
    """
    need = bars_needed(period, window)
    if len(bars) < need:
        return None
    tail = bars.tail(need)
    values = indicators.atr(tail.high, tail.low, tail.close, period)[-window:]
    if not np.all(np.isfinite(values)):
        return None
    return round(100.0 * float(np.count_nonzero(values <= values[-1])) / window, 4)
