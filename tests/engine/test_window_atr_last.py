"""`indicators.window_atr_last`, the one-value form `Engine.analyze` uses on every new bar, is
`window_atr(...)[-1]` on the newest bars, bit for bit."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sidecar.engine import indicators
from sidecar.engine.bars import Bars
from sidecar.testing.messages import eurusd_rows

BARS = Bars.from_rows(eurusd_rows())


@pytest.mark.parametrize(("period", "length"), [(14, 140), (14, 15), (14, 33), (3, 30), (20, 41)])
def test_equals_the_last_value_of_window_atr(period: int, length: int) -> None:
    b = BARS
    for end in range(length, len(b), 3):
        t = b.span(end - length, end)
        want = float(indicators.window_atr(t.high, t.low, t.close, period, length)[-1])
        got = indicators.window_atr_last(b.high[:end], b.low[:end], b.close[:end], period, length)
        assert got == want  # bit for bit: same true ranges, weights, product and sum


def test_nan_without_enough_bars_or_a_window_past_the_period() -> None:
    b = BARS.head(30)
    assert math.isnan(indicators.window_atr_last(b.high, b.low, b.close, 14, 31))
    assert math.isnan(indicators.window_atr_last(b.high, b.low, b.close, 14, 14))
    assert isinstance(indicators.window_atr_last(b.high, b.low, b.close, 14, 30), float)
    assert not np.isnan(indicators.window_atr_last(b.high, b.low, b.close, 14, 30))
