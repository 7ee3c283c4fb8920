"""Bar history for one account/symbol/timeframe: bounded, ordered, de-duplicated.

Bars arrive as `[time, open, high, low, close, tick_volume, spread]` (oldest first) in `hello`
warm-up and in each `tick`. A repeated bar time replaces the stored bar when its values differ
(the terminal may resend the last bar with final values); an identical resend changes nothing, so
it does not trigger a new analysis. A bar older than the newest one replaces a stored bar with the
same time, and is otherwise ignored and reported: inserting it would rewrite history that
decisions were already made on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

BAR_FIELDS = ("time", "open", "high", "low", "close", "tick_volume", "spread")


@dataclass(frozen=True)
class Bars:
    """An immutable, column-oriented view of closed bars, oldest first."""

    time: np.ndarray  # int64 bar open times (server time)
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    tick_volume: np.ndarray
    spread: np.ndarray

    def __len__(self) -> int:
        return int(self.time.shape[0])

    @classmethod
    def from_rows(cls, rows: Sequence[Sequence[float]]) -> Bars:
        arr = np.asarray(rows, dtype=np.float64).reshape(-1, 7)
        return cls(
            time=arr[:, 0].astype(np.int64),
            open=arr[:, 1].copy(),
            high=arr[:, 2].copy(),
            low=arr[:, 3].copy(),
            close=arr[:, 4].copy(),
            tick_volume=arr[:, 5].copy(),
            spread=arr[:, 6].copy(),
        )

    def head(self, n: int) -> Bars:
        """The first `n` bars: what the history looked like when bar n-1 had just closed."""
        return Bars(*(getattr(self, f)[:n] for f in BAR_FIELDS))

    def tail(self, n: int) -> Bars:
        return Bars(*(getattr(self, f)[-n:] for f in BAR_FIELDS))


@dataclass
class MergeReport:
    appended: int = 0
    replaced: int = 0
    ignored_old: list[int] = field(default_factory=list)


class BarHistory:
    """Mutable store of closed bars with a fixed capacity (oldest dropped first)."""

    def __init__(self, capacity: int = 2000) -> None:
        if capacity < 2:
            raise ValueError("capacity: must be >= 2")
        self.capacity = capacity
        self._rows: list[tuple[float, ...]] = []
        self._view: Bars | None = None

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def last_time(self) -> int | None:
        return int(self._rows[-1][0]) if self._rows else None

    def merge(self, rows: Iterable[Sequence[float]]) -> MergeReport:
        report = MergeReport()
        for row in rows:
            t = int(row[0])
            bar = (float(t), *map(float, row[1:7]))
            last = self.last_time
            if last is None or t > last:
                self._rows.append(bar)
                report.appended += 1
            elif t == last:
                if self._rows[-1] != bar:
                    self._rows[-1] = bar
                    report.replaced += 1
            else:
                # An older bar: replace it in place if we hold that exact time, else ignore.
                idx = self._find(t)
                if idx is None:
                    report.ignored_old.append(t)
                elif self._rows[idx] != bar:
                    self._rows[idx] = bar
                    report.replaced += 1
        if len(self._rows) > self.capacity:
            del self._rows[: len(self._rows) - self.capacity]
        if report.appended or report.replaced:
            self._view = None
        return report

    def _find(self, t: int) -> int | None:
        lo, hi = 0, len(self._rows)
        while lo < hi:
            mid = (lo + hi) // 2
            if self._rows[mid][0] < t:
                lo = mid + 1
            else:
                hi = mid
        if lo < len(self._rows) and int(self._rows[lo][0]) == t:
            return lo
        return None

    def view(self) -> Bars:
        """Column view, rebuilt only after the history changed (once per new bar, not per tick)."""
        if self._view is None:
            self._view = Bars.from_rows(self._rows) if self._rows else Bars.from_rows([])
        return self._view
