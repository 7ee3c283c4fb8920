"""Generated sample bars: `sidecar bias-check`'s data when neither `--csv` nor backtesting.py's
EURUSD H1 (a dev dependency) is at hand.

A seeded random walk with trending stretches and volatility clusters, so the strategies cross,
vote and stand aside as on a real market. Always the same bars (Python's Mersenne Twister,
seeded), on any platform. For look-ahead and warm-up bias any varied series serves: the check
compares a strategy with itself on the same bars.
"""

from __future__ import annotations

import math
import random

START = 1_704_067_200  # 2024-01-01 00:00 UTC, a Monday
H1 = 3600


def sample_rows(count: int = 3000, seed: int = 17, start_price: float = 1.10) -> list[list[float]]:
    """`count` H1 bars `[time, open, high, low, close, tick_volume, spread]`, weekends skipped."""
    rng = random.Random(seed)
    rows: list[list[float]] = []
    t = START
    close = start_price
    drift = 0.0  # per-bar log drift, a slowly wandering trend
    vol = 0.0012  # per-bar volatility, clustered
    while len(rows) < count:
        weekday = (t // 86400 + 3) % 7  # 1970-01-01 was a Thursday: 0 = Monday
        if weekday >= 5:
            t += H1
            continue
        drift = 0.995 * drift + rng.gauss(0.0, 0.00003)
        vol = min(0.004, max(0.0004, vol * math.exp(rng.gauss(0.0, 0.08)) * 0.999 + 0.0000012))
        open_ = close * math.exp(rng.gauss(0.0, vol * 0.05))
        close = open_ * math.exp(drift + rng.gauss(0.0, vol))
        high = max(open_, close) * math.exp(abs(rng.gauss(0.0, vol * 0.6)))
        low = min(open_, close) * math.exp(-abs(rng.gauss(0.0, vol * 0.6)))
        volume = float(int(500 + 4000 * vol / 0.0012 * rng.random()))
        rows.append(
            [t, round(open_, 5), round(high, 5), round(low, 5), round(close, 5), volume, 0.0]
        )
        t += H1
    for row in rows:  # rounding must not leave a close outside its bar
        row[2] = max(row[1:5])
        row[3] = min(row[1:5])
    return rows
