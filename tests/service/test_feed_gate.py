"""The feed gate on the verdict path looks only at the events near the tick, and says exactly
what a walk over every event on file would say."""

from __future__ import annotations

import random
from pathlib import Path

import msgspec
import pytest

from sidecar.config import load_config
from sidecar.engine import reasons as R
from sidecar.engine.news import blackout_reasons, close_reasons
from sidecar.engine.strategies import strategy_problems
from sidecar.protocol import Tick
from sidecar.service.feeds import FeedService
from sidecar.service.runner import build
from sidecar.testing import messages as M

NOW = 1_750_000_000  # the feed service's clock: the calendar window is built around it


@pytest.fixture
def dense_calendar(tmp_path: Path):
    """A sidecar whose store holds 3,000 terminal calendar events over ten days (EUR, USD, JPY,
    mostly high impact, several sharing a minute), and a feed service built on it."""
    config = load_config(
        None,
        env={},
        overrides={
            "server": {"db": str(tmp_path / "gate.db")},
            "feeds": {"close_before_event_minutes": 20},
        },
        extra_checks=strategy_problems,
    )
    sidecar = build(config)
    rng = random.Random(11)
    events = [
        {
            "id": f"ev-{i}",
            "time_gmt": NOW - 2 * 86400 + rng.randrange(10 * 86400) // 60 * 60,
            "currency": rng.choice(["EUR", "USD", "JPY"]),
            "importance": rng.choice(["high", "high", "high", "medium"]),
            "name": f"Event {i % 400}",
        }
        for i in range(3000)
    ]
    sidecar.store.upsert_calendar("mt5", events, NOW)
    feeds = FeedService(sidecar, clock=lambda: float(NOW)).start()
    yield sidecar, feeds
    feeds.stop()
    sidecar.close()


def _tick(gmt: int) -> Tick:
    return msgspec.convert(M.tick(gmt, 1.1, 1.1001, symbol="EURUSD"), Tick)


def test_the_gate_matches_a_walk_over_every_event(dense_calendar) -> None:
    _, feeds = dense_calendar
    snap = feeds._snap
    every = [ev for cur in ("EUR", "USD") for ev in snap.by_currency.get(cur, ())]
    assert len(every) > 1500  # the dense calendar did load
    rng = random.Random(5)
    event_times = sorted({int(ev["time"]) for ev in every})
    # Random moments, and every window edge of a sample of events (bounds are inclusive).
    moments = [NOW - 2 * 86400 + rng.randrange(10 * 86400) for _ in range(400)]
    for t in rng.sample(event_times, 60):
        for edge in (-feeds.before_s, feeds.after_s, -feeds.close_s, 0):
            moments += [t + edge - 1, t + edge, t + edge + 1]
    blocked = closing = 0
    for gmt in moments:
        blocks, defensive, close = feeds.feed_gate(_tick(gmt), gmt)
        want_blocks, want_defensive = blackout_reasons(
            every, ("EUR", "USD"), gmt, feeds.before_s, feeds.after_s
        )
        want_close = close_reasons(every, ("EUR", "USD"), gmt, feeds.close_s)
        assert [b for b in blocks if b.startswith(R.NEWS_BLACKOUT)] == list(want_blocks), gmt
        assert set(want_defensive) <= set(defensive)
        assert close == want_close, gmt
        blocked += bool(want_blocks)
        closing += bool(want_close)
    assert blocked > 50 and closing > 20  # both kinds of window were exercised


def test_events_of_other_currencies_never_reach_the_symbol(dense_calendar) -> None:
    _, feeds = dense_calendar
    jpy_only = [ev for ev in feeds._snap.by_currency["JPY"]]
    t = int(jpy_only[len(jpy_only) // 2]["time"])
    blocks, _, _ = feeds.feed_gate(_tick(t), t)
    assert all("currency=JPY" not in b for b in blocks)
