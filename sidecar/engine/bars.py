"""Bar history for one account/symbol/timeframe: bounded, ordered, de-duplicated.

Bars arrive as `[time, open, high, low, close, tick_volume, spread]` (oldest first) in `hello`
warm-up and in each `tick`. A repeated bar time replaces the stored bar when its values differ
(the terminal may resend the last bar with final values); an identical resend changes nothing, so
it does not trigger a new analysis. A bar older than the newest one replaces a stored bar with the
same time, and is otherwise ignored and reported: inserting it would rewrite history that
decisions were already made on.

Storage is seven preallocated numpy columns with room for twice the capacity: a new bar is one row
written in place, trimming moves a start index, and the columns are compacted (copied into fresh
buffers) once every `capacity` appends, so a new bar costs O(1) amortised and `view()` is seven
slices, never a rebuild. Views are immutable: appends write past every earlier view's end, and a
replacement or a compaction writes into new buffers, so a view handed out earlier never changes.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

BAR_FIELDS = ("time", "open", "high", "low", "close", "tick_volume", "spread")


@dataclass(frozen=True)
class Lineage:
    """Where a view came from, so an analysis can continue from the previous bar instead of
    starting over: `first`/`end` are absolute bar numbers within the history (bar k is the k-th
    bar it ever appended), `generation` changes whenever a stored bar was replaced."""

    history: int  # id of the BarHistory (unique per process, never reused)
    generation: int
    first: int
    end: int


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
    # Set on views of a BarHistory only; slices of a view (head/tail) do not carry it.
    lineage: Lineage | None = field(default=None, compare=False, repr=False)

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

    def span(self, start: int, stop: int) -> Bars:
        return Bars(*(getattr(self, f)[start:stop] for f in BAR_FIELDS))


@dataclass
class MergeReport:
    appended: int = 0
    replaced: int = 0
    ignored_old: list[int] = field(default_factory=list)


_ids = itertools.count(1)


class BarHistory:
    """Mutable store of closed bars with a fixed capacity (oldest dropped first)."""

    def __init__(self, capacity: int = 2000) -> None:
        if capacity < 2:
            raise ValueError("capacity: must be >= 2")
        self.capacity = capacity
        self.id = next(_ids)
        self.generation = 0
        self._cols = self._alloc(2 * capacity)
        self._start = 0  # row of the oldest held bar in the buffers
        self._stop = 0  # one past the newest
        self._first = 0  # absolute number of the oldest held bar
        self._view: Bars | None = None

    @staticmethod
    def _alloc(rows: int) -> list[np.ndarray]:
        return [np.empty(rows, np.int64)] + [np.empty(rows, np.float64) for _ in range(6)]

    def __len__(self) -> int:
        return self._stop - self._start

    @property
    def last_time(self) -> int | None:
        return int(self._cols[0][self._stop - 1]) if self._stop > self._start else None

    def merge(self, rows: Iterable[Sequence[float]]) -> MergeReport:
        report = MergeReport()
        for row in rows:
            t = int(row[0])
            values = tuple(map(float, row[1:7]))
            last = self.last_time
            if last is None or t > last:
                self._append(t, values)
                report.appended += 1
            else:
                # The newest bar again, or an older one: replace it in place if we hold that
                # exact time with other values, else ignore (and report if it is unknown).
                idx = self._stop - 1 if t == last else self._find(t)
                if idx is None:
                    report.ignored_old.append(t)
                elif self._row(idx) != values:
                    self._replace(idx, values)
                    report.replaced += 1
        if report.appended or report.replaced:
            self._view = None
        return report

    def _row(self, idx: int) -> tuple[float, ...]:
        return tuple(float(c[idx]) for c in self._cols[1:])

    def _append(self, t: int, values: tuple[float, ...]) -> None:
        if self._stop == self._cols[0].shape[0]:
            self._compact(self._cols)
        cols, i = self._cols, self._stop
        cols[0][i] = t
        cols[1][i], cols[2][i], cols[3][i], cols[4][i], cols[5][i], cols[6][i] = values
        self._stop += 1
        if self._stop - self._start > self.capacity:
            self._start += 1
            self._first += 1

    def _compact(self, source: list[np.ndarray]) -> None:
        # Fresh buffers rather than a copy within the old ones: earlier views stay as they were.
        n = self._stop - self._start
        cols = self._alloc(2 * self.capacity)
        for new, old in zip(cols, source, strict=True):
            new[:n] = old[self._start : self._stop]
        self._cols, self._start, self._stop = cols, 0, n

    def _replace(self, idx: int, values: tuple[float, ...]) -> None:
        offset = idx - self._start
        self._compact(self._cols)  # copy on write: a replacement is rare, views are not
        for col, v in zip(self._cols[1:], values, strict=True):
            col[offset] = v
        self.generation += 1

    def _find(self, t: int) -> int | None:
        times = self._cols[0][self._start : self._stop]
        pos = int(np.searchsorted(times, t))
        if pos < times.shape[0] and int(times[pos]) == t:
            return self._start + pos
        return None

    def view(self) -> Bars:
        """Column view: seven slices, made once per change (per new bar, not per tick)."""
        if self._view is None:
            a, b = self._start, self._stop
            lineage = Lineage(self.id, self.generation, self._first, self._first + b - a)
            self._view = Bars(*(c[a:b] for c in self._cols), lineage=lineage)
        return self._view
