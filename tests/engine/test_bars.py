"""`BarHistory` on preallocated columns: O(1) appends, views that never change afterwards."""

from __future__ import annotations

import numpy as np

from sidecar.engine.bars import BarHistory, Bars
from sidecar.testing.messages import eurusd_rows

ROWS = eurusd_rows()[:400]


def test_many_appends_keep_the_newest_capacity_bars_and_every_old_view() -> None:
    h = BarHistory(capacity=50)
    views = []
    for row in ROWS:
        h.merge([row])
        views.append(h.view())
    assert len(h) == 50 and h.last_time == ROWS[-1][0]
    expected = Bars.from_rows(ROWS[-50:])
    for f in ("time", "open", "high", "low", "close", "tick_volume", "spread"):
        np.testing.assert_array_equal(getattr(h.view(), f), getattr(expected, f))
    # Compactions happened (400 appends into room for 100): the views handed out before them
    # still show exactly the bars they showed then.
    for i, view in enumerate(views):
        lo = max(0, i + 1 - 50)
        np.testing.assert_array_equal(view.close, [r[4] for r in ROWS[lo : i + 1]])
        assert view.lineage is not None
        assert (view.lineage.first, view.lineage.end) == (lo, i + 1)


def test_a_replacement_leaves_earlier_views_alone_and_changes_the_generation() -> None:
    h = BarHistory(capacity=100)
    h.merge(ROWS[:30])
    before = h.view()
    row = [*ROWS[10][:4], ROWS[10][4] + 0.01, *ROWS[10][5:]]
    report = h.merge([row])
    assert report.replaced == 1 and report.appended == 0
    after = h.view()
    assert after.close[10] == row[4] and before.close[10] == ROWS[10][4]
    assert after.lineage.generation == before.lineage.generation + 1
    assert h.merge([row]).replaced == 0  # identical again: nothing changes
    assert h.view() is after


def test_older_unknown_bars_are_ignored_and_times_are_found_after_trimming() -> None:
    h = BarHistory(capacity=20)
    h.merge(ROWS[:60])
    assert h.merge([ROWS[5]]).ignored_old == [ROWS[5][0]]  # trimmed away: unknown now
    row = [*ROWS[45][:4], 9.0, *ROWS[45][5:]]
    assert h.merge([row]).replaced == 1
    assert h.view().close[45 - 40] == 9.0
    h.merge([ROWS[60]])
    assert len(h) == 20 and h.view().time[0] == ROWS[41][0]


def test_an_empty_history_has_an_empty_view() -> None:
    h = BarHistory()
    assert len(h) == 0 and h.last_time is None and len(h.view()) == 0
