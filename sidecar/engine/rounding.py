"""Rounding of risk percentages before they are compared with limits.

Percentages are rounded to 9 decimals so that binary noise never decides a boundary
(100 * (1 - 9000/10000) is 9.999999999999998, and a 10% limit must hold at exactly 10%).
`round(x, 9)` gives that but costs ~2.5k machine instructions (a decimal string round trip);
this runs several times on every tick, so it scales to an integer instead: the same result up to
the last binary digit, which is noise at this scale either way.
"""

from __future__ import annotations

import math


def round9(x: float) -> float:
    """`x` rounded to 9 decimals (non-finite values are returned unchanged)."""
    if not math.isfinite(x):
        return x
    return round(x * 1e9) / 1e9
