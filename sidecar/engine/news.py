"""Pure news decisions: calendar blackouts, sentiment direction, feed staleness, macro scores.

No I/O and no clock: the time is passed in (`now_gmt`, unix seconds UTC), so the live service
(through `FeedService.feed_gate`) and the backtester (with historical events from the SQLite
`calendar_events` table) make the same decisions for the same inputs.

Every function returns `(blocks, defensive)`: `blocks` are reason strings that refuse new
entries (the first becomes the verdict's veto, the rest notes), `defensive` are short labels
that the leverage-regime gate lists in `LEVERAGE_CAP regime=defensive ... why=<labels>`.

Events are plain mappings: `time` (or `time_gmt`) unix seconds UTC, `currency`, `name`,
`importance` (high/medium/low) and optionally `sources` (e.g. ["eodhd", "mt5"]).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sidecar.engine import reasons as R

DEFENSIVE_BLACKOUT = "news"
DEFENSIVE_SENTIMENT = "sentiment"
DEFENSIVE_STALE = "news_stale"
STALE_POLICIES = ("block", "defensive", "ignore")

Reasons = tuple[tuple[str, ...], tuple[str, ...]]


def fmt_time(t: int) -> str:
    """Unix seconds → `2025-06-06T12:30Z` (the form used in reasons)."""
    return datetime.fromtimestamp(int(t), UTC).strftime("%Y-%m-%dT%H:%MZ")


def event_time(event: Mapping[str, Any]) -> int:
    value = event.get("time", event.get("time_gmt"))
    if value is None:
        raise ValueError(f"event {event.get('name')!r} has neither 'time' nor 'time_gmt'")
    return int(value)


@dataclass(frozen=True)
class Window:
    """The blackout window of one high-impact event: entries refused in [start, end]."""

    currency: str
    name: str
    time: int
    start: int
    end: int
    sources: tuple[str, ...]


def index_high_impact(
    events: Iterable[Mapping[str, Any]],
) -> tuple[dict[str, tuple[Mapping[str, Any], ...]], dict[str, tuple[int, ...]]]:
    """High-impact events per currency, sorted by time, and their times (for `events_near`)."""
    by_currency: dict[str, list[Mapping[str, Any]]] = {}
    for ev in sorted(events, key=lambda e: (event_time(e), e.get("currency"), e.get("name"))):
        if str(ev.get("importance") or "").lower() == "high":
            by_currency.setdefault(str(ev.get("currency") or "").upper(), []).append(ev)
    return (
        {k: tuple(v) for k, v in by_currency.items()},
        {k: tuple(event_time(ev) for ev in v) for k, v in by_currency.items()},
    )


def events_near(
    by_currency: Mapping[str, Sequence[Mapping[str, Any]]],
    times: Mapping[str, Sequence[int]],
    currencies: Sequence[str],
    first: int,
    last: int,
) -> list[Mapping[str, Any]]:
    """The indexed events of `currencies` with first <= time <= last: a bisection per currency,
    not a walk over every event on file (this runs on every tick)."""
    out: list[Mapping[str, Any]] = []
    for cur in currencies:
        ts = times.get(cur)
        if ts:
            lo = bisect.bisect_left(ts, first)
            out.extend(by_currency[cur][lo : bisect.bisect_right(ts, last, lo)])
    return out


def blackout_windows(
    events: Iterable[Mapping[str, Any]],
    currencies: Sequence[str],
    now_gmt: int,
    before_s: int,
    after_s: int,
) -> list[Window]:
    """High-impact events of `currencies` whose window [time − before_s, time + after_s]
    (both bounds inclusive) contains `now_gmt`, earliest event first."""
    wanted = {c.upper() for c in currencies}
    out = []
    for ev in events:
        if str(ev.get("importance") or "").lower() != "high":
            continue
        cur = str(ev.get("currency") or "").upper()
        if cur not in wanted:
            continue
        t = event_time(ev)
        if t - before_s <= now_gmt <= t + after_s:
            sources = tuple(
                str(s) for s in ev.get("sources") or ([ev["source"]] if ev.get("source") else [])
            )
            out.append(
                Window(cur, str(ev.get("name") or ""), t, t - before_s, t + after_s, sources)
            )
    out.sort(key=lambda w: (w.time, w.currency, w.name))
    return out


def blackout_reasons(
    events: Iterable[Mapping[str, Any]],
    currencies: Sequence[str],
    now_gmt: int,
    before_s: int = 1800,
    after_s: int = 3600,
) -> Reasons:
    """`NEWS_BLACKOUT currency=USD event="Non Farm Payrolls" at=... until=...` for every open
    window, plus the defensive label `news` when there is at least one."""
    windows = blackout_windows(events, currencies, now_gmt, before_s, after_s)
    blocks = tuple(
        R.reason(
            R.NEWS_BLACKOUT,
            currency=w.currency,
            event=w.name,
            at=fmt_time(w.time),
            until=fmt_time(w.end),
            **({"sources": ",".join(w.sources)} if w.sources else {}),
        )
        for w in windows
    )
    return blocks, (DEFENSIVE_BLACKOUT,) if blocks else ()


def close_reasons(
    events: Iterable[Mapping[str, Any]],
    currencies: Sequence[str],
    now_gmt: int,
    close_before_s: int,
) -> tuple[str, ...]:
    """`NEWS_CLOSE currency=USD event=... at=...` for each high-impact event of `currencies` due
    within `close_before_s` (now in [T - close_before_s, T)): the positions should be flat
    before it. Empty when `close_before_s` is 0 (off)."""
    if close_before_s <= 0:
        return ()
    due = upcoming_events(events, currencies, now_gmt, close_before_s)  # now < T <= now + s
    return tuple(
        R.reason(
            R.NEWS_CLOSE,
            currency=str(ev.get("currency", "")).upper(),
            event=str(ev.get("name", "")),
            at=fmt_time(event_time(ev)),
        )
        for ev in due
    )


def upcoming_events(
    events: Iterable[Mapping[str, Any]],
    currencies: Sequence[str] | None,
    now_gmt: int,
    horizon_s: int,
) -> list[Mapping[str, Any]]:
    """High-impact events in (now, now + horizon] of `currencies` (None = every currency)."""
    wanted = None if currencies is None else {c.upper() for c in currencies}
    out = []
    for ev in events:
        if str(ev.get("importance") or "").lower() != "high":
            continue
        if wanted is not None and str(ev.get("currency") or "").upper() not in wanted:
            continue
        if now_gmt < event_time(ev) <= now_gmt + horizon_s:
            out.append(ev)
    return sorted(out, key=event_time)


# --- sentiment -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CurrencyScore:
    """A decayed sentiment score of one currency and how much evidence is behind it."""

    value: float  # [-1, 1]
    weight: float


def bought_and_sold(base: str, quote: str, side: str) -> tuple[str, str]:
    """(bought, sold) currencies: buying EURUSD buys EUR and sells USD; selling does the
    opposite, so long USDJPY and short EURUSD are both long USD."""
    s = side.lower()
    if s in ("buy", "long"):
        return base.upper(), quote.upper()
    if s in ("sell", "short"):
        return quote.upper(), base.upper()
    raise ValueError(f"side must be buy/sell/long/short, got {side!r}")


def sentiment_reasons(
    base: str,
    quote: str,
    side: str | None,
    scores: Mapping[str, CurrencyScore],
    block_below: float = -0.5,
    defensive_below: float = -0.2,
    min_weight: float = 1.0,
) -> Reasons:
    """Direction-aware sentiment check of an entry on `side` of base/quote.

    Only the currency the trade is long is judged: its score ≤ `block_below` blocks
    (`NEWS_SENTIMENT currency=USD score=-0.62 side=buy`), ≤ `defensive_below` asks for
    defensive leverage. Scores with less than `min_weight` of decayed evidence are ignored;
    without a side (no proposed entry) there is nothing to judge."""
    if side is None:
        return (), ()
    if not block_below <= defensive_below:
        raise ValueError(
            f"block_below ({block_below}) must be <= defensive_below ({defensive_below})"
        )
    bought, _sold = bought_and_sold(base, quote, side)
    sc = scores.get(bought)
    if sc is None or sc.weight < min_weight:
        return (), ()
    value = round(sc.value, 2)
    if sc.value <= block_below:
        reason = R.reason(R.NEWS_SENTIMENT, currency=bought, score=value, side=side.lower())
        return (reason,), (DEFENSIVE_SENTIMENT,)
    if sc.value <= defensive_below:
        return (), (DEFENSIVE_SENTIMENT,)
    return (), ()


# --- staleness -------------------------------------------------------------------------------


def stale_reasons(
    ages: Mapping[str, float], intervals: Mapping[str, float], policy: str = "block"
) -> Reasons:
    """Sources whose age exceeds twice their refresh interval, handled by `policy`:
    `block` refuses entries (`NEWS_STALE source=eodhd_calendar age_s=1900 max_s=1800`),
    `defensive` only asks for defensive leverage, `ignore` does nothing."""
    if policy not in STALE_POLICIES:
        raise ValueError(f"policy must be one of {STALE_POLICIES}, got {policy!r}")
    if policy == "ignore":
        return (), ()
    stale = []
    for name in sorted(ages):
        limit = 2.0 * intervals[name]
        if ages[name] > limit:
            stale.append(
                R.reason(R.NEWS_STALE, source=name, age_s=int(ages[name]), max_s=int(limit))
            )
    if not stale:
        return (), ()
    if policy == "block":
        return tuple(stale), (DEFENSIVE_STALE,)
    return (), (DEFENSIVE_STALE,)


def combine(*parts: Reasons) -> Reasons:
    """Concatenate (blocks, defensive) pairs, keeping the first occurrence of each label."""
    blocks: list[str] = []
    defensive: list[str] = []
    for b, d in parts:
        blocks.extend(b)
        defensive.extend(x for x in d if x not in defensive)
    return tuple(blocks), tuple(defensive)
