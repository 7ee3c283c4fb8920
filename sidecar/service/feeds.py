"""News feeds in the service: background pollers, an in-memory snapshot, and the feed gate.

`FeedService` owns the `EodhdClient` and its `CallBudget` and runs daemon threads:

* `calendar`   — economic events yesterday → +7 days (`feeds.calendar_*`), stored in the SQLite
                 `calendar_events` table as source `eodhd`;
* `news`       — `/news` per tracked ticker (`feeds.news_tickers`), stored in the `news` table
                 (one row per link: EODHD's offset paging repeats articles); articles EODHD left
                 unscored are scored by the offline lexicon;
* `sentiments` — the `/sentiments` daily series of the same tickers;
* `watch`      — rebuilds the snapshot when the EA pushes its calendar (and every minute), and
                 keeps the feed-age, upcoming-event and active-blackout metrics and logs.

The snapshot (merged and de-duplicated calendar events per currency, decayed sentiment per
currency, macro surprises) is an immutable object swapped in whole, so `feed_gate` — called on
the verdict path under the handler's lock — reads one reference and never waits on the network,
the database or a lock held by a poller. The decisions themselves are the pure functions of
`sidecar.engine.news`, which the backtester can call with historical events.

Stopping sets one event: every wait (interval, retry back-off) wakes at once; a request already
on the wire ends within the configured timeout (the threads are daemons either way).
"""

from __future__ import annotations

import bisect
import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sidecar.engine.news import (
    CurrencyScore,
    blackout_reasons,
    blackout_windows,
    close_reasons,
    combine,
    events_near,
    fmt_time,
    index_high_impact,
    sentiment_reasons,
    stale_reasons,
    upcoming_events,
)
from sidecar.engine.strategies.base import StrategyContext
from sidecar.feeds.budget import BudgetExceeded, CallBudget, Priority
from sidecar.feeds.calendar_rules import (
    DEFAULT_RULES,
    ImpactRules,
    merge_calendar_rows,
    normalize_name,
    spec_currencies,
    symbol_currencies,
)
from sidecar.feeds.eodhd import CallEvent, EodhdClient, EodhdError
from sidecar.feeds.pull import pull_calendar
from sidecar.feeds.sentiment import (
    LexiconScorer,
    SentimentItem,
    currency_scores,
    decay,
    macro_items,
    macro_surprise,
    news_items,
    series_items,
    ticker_scores,
)
from sidecar.kernel import SymbolContext
from sidecar.protocol import SymbolSpec, Tick
from sidecar.service.handler import FeedStatus, Sidecar
from sidecar.service.logs import event

log = logging.getLogger("sidecar.service.feeds")

CALENDAR, NEWS, SENTIMENTS, MT5 = "eodhd_calendar", "eodhd_news", "eodhd_sentiments", "mt5_calendar"
WATCH_EVERY_S = 1.0  # metrics/log refresh; cheap (in-memory only)
REBUILD_EVERY_S = 60.0  # the calendar window moves with the clock
FAILED_RETRY_S = 60.0  # a failed refresh is tried again after min(interval, this)


class _Stopped(Exception):
    """Raised inside a poller's back-off sleep when the service stops."""


@dataclass(frozen=True)
class NewsSnapshot:
    """What `feed_gate` reads. Replaced as a whole, never mutated."""

    by_currency: Mapping[str, tuple[Mapping[str, Any], ...]] = field(default_factory=dict)
    # The event times of each `by_currency` tuple (which is sorted by time), for bisecting the
    # few events near a tick instead of walking every event on file on every tick.
    times: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    events: tuple[Mapping[str, Any], ...] = ()  # merged events of every importance
    scores: Mapping[str, CurrencyScore] = field(default_factory=dict)
    tickers: Mapping[str, CurrencyScore] = field(default_factory=dict)
    scores_at: int = 0
    macro: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    surprises: tuple[Mapping[str, Any], ...] = ()


def impact_rules(high: Mapping[str, list[str]], medium: Mapping[str, list[str]]) -> ImpactRules:
    """The built-in importance tables with the config's per-country lists replacing theirs."""
    return ImpactRules(
        high={**DEFAULT_RULES.high, **{k.upper(): tuple(v) for k, v in high.items()}},
        medium={**DEFAULT_RULES.medium, **{k.upper(): tuple(v) for k, v in medium.items()}},
    )


def calendar_row(ev: Mapping[str, Any]) -> dict[str, Any]:
    """A normalised EODHD event (`pull.normalize_event`) → a `calendar_events` row. The
    comparison (m/m, y/y) is kept in the name so that "Inflation Rate" m/m and y/y stay apart."""
    name = str(ev["name"])
    comp = ev.get("comparison")
    if comp and str(comp).lower() not in normalize_name(name).split():
        name = f"{name} ({str(comp).upper()})"
    return {
        "id": ev["id"],
        "time_gmt": ev["time"],
        "currency": ev.get("currency") or "",
        "importance": ev["importance"],
        "name": name,
        "actual": ev.get("actual"),
        "forecast": ev.get("estimate"),
        "previous": ev.get("previous"),
    }


class FeedService:
    def __init__(self, sidecar: Sidecar, clock: Callable[[], float] = time.time) -> None:
        self.sidecar = sidecar
        self.cfg = cfg = sidecar.config.feeds
        self.store = sidecar.store
        self.metrics = sidecar.metrics
        self._clock = clock
        self.rules = impact_rules(cfg.high_impact, cfg.medium_impact)
        self.before_s = int(cfg.blackout_before_minutes * 60)
        self.after_s = int(cfg.blackout_after_minutes * 60)
        self.close_s = int(cfg.close_before_event_minutes * 60)
        self.half_life_s = cfg.sentiment_half_life_hours * 3600
        self._stop = threading.Event()
        self._dirty = threading.Event()
        self._threads: list[threading.Thread] = []
        self._snap = NewsSnapshot()
        self._swap_lock = threading.Lock()
        self._series: list[SentimentItem] = []
        self._scorer: LexiconScorer | None = None
        self._currencies: dict[str, tuple[str, ...]] = {}
        # strategy_context per (symbol, base, quote): (the snapshot it was built from, context)
        self._contexts: dict[tuple[str, str, str], tuple[NewsSnapshot, StrategyContext]] = {}
        self._announced: set[tuple[str, int, str]] = set()
        self._open_windows: set[tuple[str, int, str]] = set()
        self.started = clock()
        self.budget = CallBudget(cfg.budget_daily_calls, cfg.budget_per_minute)
        token = cfg.eodhd_token.strip()
        self.client: EodhdClient | None = None
        if token:
            self.client = EodhdClient(
                token,
                cfg.eodhd_base_url,
                timeout=(min(5.0, cfg.request_timeout_seconds), cfg.request_timeout_seconds),
                max_retries=cfg.max_retries,
                backoff_base_s=1.0,
                backoff_cap_s=30.0,
                max_retry_after_s=60.0,
                sleep=self._sleep,
                budget=self.budget,
                on_call=self._on_call,
            )
        self.intervals: dict[str, float] = {MT5: cfg.mt5_calendar_interval_seconds}
        if self.client is not None:
            self.intervals[CALENDAR] = cfg.calendar_interval_seconds
            if cfg.news_tickers:
                self.intervals[NEWS] = cfg.news_interval_seconds
                self.intervals[SENTIMENTS] = cfg.sentiments_interval_seconds
        with sidecar.lock:
            for name, interval in self.intervals.items():
                if name != MT5:
                    sidecar.feeds[name] = FeedStatus(name, interval)
            if MT5 in sidecar.feeds:
                sidecar.feeds[MT5].interval_s = self.intervals[MT5]
            sidecar.news_configured = self.client is not None
            sidecar.kernel.feed_gate = self.feed_gate
            sidecar.news_report = self.report
            sidecar.on_calendar = self.calendar_pushed
            sidecar.kernel.strategy_context = self.strategy_context
        self.metrics.eodhd_budget_remaining.set(cfg.budget_daily_calls)
        self.metrics.eodhd_budget_daily.set(cfg.budget_daily_calls)

    # ------------------------------------------------------------ lifecycle

    @property
    def eodhd_enabled(self) -> bool:
        return self.client is not None

    def start(self) -> FeedService:
        self._rebuild_events()
        self._rebuild_scores()
        loops: list[tuple[str, Callable[[], None], float]] = []
        if self.client is not None:
            loops.append((CALENDAR, self._poll_calendar, self.cfg.calendar_interval_seconds))
            if self.cfg.news_tickers:
                loops.append((NEWS, self._poll_news, self.cfg.news_interval_seconds))
                loops.append(
                    (SENTIMENTS, self._poll_sentiments, self.cfg.sentiments_interval_seconds)
                )
        for name, fn, interval in loops:
            self._spawn(f"feeds-{name}", self._loop, name, fn, interval)
        self._spawn("feeds-watch", self._watch)
        return self

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._dirty.set()
        for t in self._threads:
            t.join(timeout)
        if self.client is not None:
            self.client.close()

    def _spawn(self, name: str, target: Callable[..., None], *args: Any) -> None:
        t = threading.Thread(target=target, args=args, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def _sleep(self, seconds: float) -> None:
        if self._stop.wait(seconds):
            raise _Stopped

    # ------------------------------------------------------------ the verdict path

    def feed_gate(
        self, tick: Tick, true_gmt: int, ctx: SymbolContext | None = None
    ) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
        """(entry blocks, defensive labels, close reasons) for this tick: blackouts of the
        symbol's currencies, sentiment against the side of the entry the strategy proposes, stale
        sources, and high-impact events close enough to flatten before (when configured). Reads
        the in-memory snapshot only."""
        snap = self._snap
        currencies = self.currencies(tick.symbol, ctx)
        # Only events whose blackout or close-before window can contain this tick:
        # T - before <= now <= T + after, or now < T <= now + close.
        first, last = true_gmt - self.after_s, true_gmt + max(self.before_s, self.close_s)
        events = events_near(snap.by_currency, snap.times, currencies, first, last)
        # Each part only when it can say something: this runs on every tick, and most ticks
        # have no event of their currencies on file and no signal.
        parts = []
        if events:
            parts.append(
                blackout_reasons(events, currencies, true_gmt, self.before_s, self.after_s)
            )
        signal = ctx.analysis.signal if ctx is not None else None
        if signal is not None and len(currencies) == 2:
            parts.append(
                sentiment_reasons(
                    currencies[0],
                    currencies[1],
                    signal.side,
                    self._scores_at(snap, currencies, true_gmt),
                    self.cfg.sentiment_block_below,
                    self.cfg.sentiment_defensive_below,
                    self.cfg.sentiment_min_weight,
                )
            )
        ages = self.ages()
        if ages:
            parts.append(stale_reasons(ages, self.intervals, self.cfg.stale_policy))
        blocks, defensive = combine(*parts) if parts else ((), ())
        close = close_reasons(events, currencies, true_gmt, self.close_s) if events else ()
        return blocks, defensive, close

    def currencies(self, symbol: str, ctx: Any = None) -> tuple[str, ...]:
        cached = self._currencies.get(symbol)
        if cached is None:
            if ctx is None:
                return symbol_currencies(symbol, self.cfg.symbol_currencies)
            cached = self._currencies[symbol] = spec_currencies(
                ctx.spec, self.cfg.symbol_currencies
            )
        return cached

    def _scores_at(
        self, snap: NewsSnapshot, currencies: tuple[str, ...], now: int
    ) -> dict[str, CurrencyScore]:
        # A decayed weighted mean keeps its value as time passes (numerator and denominator
        # decay alike); only the evidence (weight) shrinks.
        factor = decay(now - snap.scores_at, self.half_life_s) if now > snap.scores_at else 1.0
        return {
            c: CurrencyScore(s.value, s.weight * factor)
            for c in currencies
            if (s := snap.scores.get(c)) is not None
        }

    def ages(self) -> dict[str, float]:
        """Seconds since each configured source refreshed (since start when it never did)."""
        now = self._clock()
        out = {}
        for name in self.intervals:
            status = self.sidecar.feeds.get(name)
            if status is None:  # the EA never pushed its calendar: not a configured source
                continue
            out[name] = now - (status.last_ok if status.last_ok is not None else self.started)
        return out

    # ------------------------------------------------------------ pollers

    def _loop(self, name: str, fn: Callable[[], None], interval: float) -> None:
        delay = 0.0
        while not self._stop.wait(delay):
            try:
                fn()
            except _Stopped:
                return
            except BudgetExceeded as exc:
                delay = min(interval, max(exc.retry_in_s or interval, 1.0))
                self._failed(name, exc, delay)
                continue
            except EodhdError as exc:
                delay = min(interval, FAILED_RETRY_S)
                self._failed(name, exc, delay)
                continue
            except Exception as exc:  # a poller must survive anything and say so
                log.exception(
                    "feed refresh crashed", extra={"event": "news.poll_crashed", "source": name}
                )
                delay = min(interval, FAILED_RETRY_S)
                self._failed(name, exc, delay)
                continue
            status = self.sidecar.feeds.get(name)
            if status is not None:
                status.last_ok = self._clock()
                status.detail = {**status.detail, "last_error": None}
            delay = interval

    def _failed(self, name: str, exc: BaseException, retry_in: float) -> None:
        status = self.sidecar.feeds.get(name)
        if status is not None:
            errors = int(status.detail.get("errors", 0)) + 1
            status.detail = {**status.detail, "errors": errors, "last_error": str(exc)[:300]}
        event(
            log,
            "news.poll_failed",
            logging.WARNING,
            f"{name} refresh failed: {exc}",
            source=name,
            error=type(exc).__name__,
            retry_in_s=round(retry_in, 1),
        )

    def _today(self) -> date:
        return datetime.fromtimestamp(self._clock(), UTC).date()

    def _poll_calendar(self) -> None:
        assert self.client is not None
        today = self._today()
        events = pull_calendar(
            self.client,
            today - timedelta(days=self.cfg.calendar_days_back),
            today + timedelta(days=self.cfg.calendar_days_ahead),
            rules=self.rules,
            priority=Priority.HIGH,
        )
        rows = [calendar_row(ev) for ev in events if ev.get("currency")]
        self.store.upsert_calendar("eodhd", rows, int(self._clock()))
        self._rebuild_events()
        event(log, "news.calendar_refreshed", events=len(rows))

    def _score(self, article: Mapping[str, Any]) -> tuple[float | None, str]:
        if self._scorer is None:
            self._scorer = LexiconScorer()
        items = news_items([article], self._scorer)
        if not items:
            return None, ""
        return items[0].score, items[0].source

    def _poll_news(self) -> None:
        assert self.client is not None
        start = self._today() - timedelta(days=2)
        first_error: Exception | None = None
        new = 0
        for ticker in self.cfg.news_tickers:
            try:
                articles = self.client.news(
                    symbol=ticker, start=start, limit=self.cfg.news_limit, priority=Priority.NORMAL
                )
            except (EodhdError, BudgetExceeded) as exc:
                first_error = first_error or exc
                continue
            rows = []
            for art in articles:
                if not art.get("date"):
                    continue
                try:
                    dt = datetime.fromisoformat(str(art["date"]).replace("Z", "+00:00"))
                except ValueError:
                    continue
                when = int((dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp())
                symbols = [str(s).upper() for s in art.get("symbols") or []] or [ticker.upper()]
                score, source = self._score({**art, "symbols": symbols})
                rows.append(
                    {
                        "link": str(art.get("link") or f"{art.get('title')}|{art['date']}"),
                        "time_gmt": when,
                        "title": str(art.get("title") or "")[:500],
                        "symbols": symbols,
                        "score": score,
                        "score_source": source,
                    }
                )
            new += self.store.insert_news(rows, int(self._clock()))
        self._rebuild_scores()
        if new:
            event(log, "news.articles", new=new)
        if first_error is not None:
            raise first_error

    def _poll_sentiments(self) -> None:
        assert self.client is not None
        today = self._today()
        data = self.client.sentiments(
            self.cfg.news_tickers, today - timedelta(days=7), today, priority=Priority.LOW
        )
        self._series = series_items(data, self.cfg.sentiment_series_weight)
        self._rebuild_scores()

    # ------------------------------------------------------------ snapshot

    def calendar_pushed(self) -> None:
        """The EA pushed its calendar (called by the handler): rebuild in the background."""
        status = self.sidecar.feeds.get(MT5)
        if status is not None:
            status.interval_s = self.intervals[MT5]
        self._dirty.set()

    def _rebuild_events(self) -> None:
        now = int(self._clock())
        rows = self.store.calendar_events(
            now - (self.cfg.calendar_days_back + 1) * 86400,
            now + (self.cfg.calendar_days_ahead + 1) * 86400,
        )
        merged = merge_calendar_rows(rows)
        by_currency, times = index_high_impact(merged)
        macro_scores = ticker_scores(macro_items(merged), now, self.half_life_s)
        surprises = []
        for ev in merged:
            s = macro_surprise(ev)
            if s is not None and ev["time"] <= now:
                surprises.append(
                    {
                        "currency": ev["currency"],
                        "event": ev["name"],
                        "at": fmt_time(ev["time"]),
                        "actual": ev["actual"],
                        "estimate": ev["estimate"],
                        "surprise": round(s, 4),
                    }
                )
        self._swap(
            by_currency=by_currency,
            times=times,
            events=tuple(merged),
            macro={
                c: {"score": round(s.value, 4), "weight": round(s.weight, 4), "events": s.count}
                for c, s in macro_scores.items()
            },
            surprises=tuple(surprises[-20:]),
        )

    def _rebuild_scores(self) -> None:
        now = int(self._clock())
        since = now - int(10 * self.half_life_s)  # older items weigh < 0.1 %
        items = [
            SentimentItem(
                sym.upper(), int(r["time_gmt"]), float(r["score"]), 1.0, r["score_source"]
            )
            for r in self.store.news(since)
            if r["score"] is not None
            for sym in r["symbols"]
        ]
        items += self._series
        cur = currency_scores(items, now, self.half_life_s)
        tick = ticker_scores(items, now, self.half_life_s)
        self._swap(
            scores={c: CurrencyScore(s.value, s.weight) for c, s in cur.items()},
            tickers={t: CurrencyScore(s.value, s.weight) for t, s in tick.items()},
            scores_at=now,
        )

    def _swap(self, **changes: Any) -> None:
        """Replace the snapshot with some parts changed. Events and scores are rebuilt by
        different threads: the lock keeps one rebuild from dropping the other's update (readers
        never lock; they see the old or the new snapshot, both whole)."""
        with self._swap_lock:
            self._snap = dataclasses.replace(self._snap, **changes)
            self._contexts = {}  # built from the old snapshot: do not keep it alive

    # ------------------------------------------------------------ watch: metrics and logs

    def _watch(self) -> None:
        last_rebuild = self._clock()
        while not self._stop.is_set():
            pushed = self._dirty.wait(WATCH_EVERY_S)
            if self._stop.is_set():
                return
            try:
                if pushed or self._clock() - last_rebuild >= REBUILD_EVERY_S:
                    self._dirty.clear()
                    self._rebuild_events()
                    last_rebuild = self._clock()
                self.refresh_metrics()
            except Exception:
                log.exception("feed watch failed", extra={"event": "news.watch_failed"})

    def refresh_metrics(self) -> None:
        now = self._clock()
        m = self.metrics  # feed ages are read at scrape time (metrics._StateCollector)
        snap = self._snap
        t = int(now)
        horizon = int(self.cfg.upcoming_minutes * 60)
        blackouts: dict[str, float] = {}
        upcoming_n: dict[str, float] = {}
        next_at: dict[str, float] = {}
        for cur, events in snap.by_currency.items():
            times = snap.times.get(cur, ())
            i = bisect.bisect_right(times, t)
            if i < len(times):
                next_at[cur] = float(times[i])
            upcoming = upcoming_events(events, [cur], t, horizon)
            upcoming_n[cur] = len(upcoming)
            for ev in upcoming:
                key = (cur, int(ev["time"]), str(ev["name"]))
                if key not in self._announced:
                    self._announced.add(key)
                    event(
                        log,
                        "news.upcoming",
                        logging.WARNING,
                        f"{cur} {ev['name']} at {fmt_time(ev['time'])}",
                        currency=cur,
                        event_name=ev["name"],
                        at=fmt_time(ev["time"]),
                        in_s=int(ev["time"]) - t,
                        sources=list(ev.get("sources") or []),
                    )
            windows = blackout_windows(events, [cur], t, self.before_s, self.after_s)
            blackouts[cur] = len(windows)
            open_now = {(w.currency, w.time, w.name) for w in windows}
            for w in windows:
                key = (w.currency, w.time, w.name)
                if key not in self._open_windows:
                    event(
                        log,
                        "news.blackout",
                        logging.WARNING,
                        f"{w.currency} blackout for {w.name} until {fmt_time(w.end)}",
                        currency=w.currency,
                        event_name=w.name,
                        at=fmt_time(w.time),
                        until=fmt_time(w.end),
                    )
            self._open_windows = {k for k in self._open_windows if k[0] != cur} | open_now
        m.set_news(blackouts, upcoming_n, next_at)
        self._announced = {k for k in self._announced if k[1] >= t - 86400}
        b = self.budget.snapshot()
        m.eodhd_budget_remaining.set(float(b["remaining_today"]))  # type: ignore[arg-type]

    def _on_call(self, ev: CallEvent) -> None:
        m = self.metrics
        m.count_eodhd(ev.endpoint, str(ev.status))
        b = self.budget.snapshot()
        m.eodhd_budget_remaining.set(float(b["remaining_today"]))  # type: ignore[arg-type]

    # ------------------------------------------------------------ reporting

    def report(self) -> dict[str, Any]:
        """The `news` part of GET /v1/state."""
        snap = self._snap
        now = int(self._clock())
        horizon = now + (self.cfg.calendar_days_ahead + 1) * 86400
        return {
            "eodhd": self.eodhd_enabled,
            "sources": {
                name: {"age_s": round(age, 1), "interval_s": self.intervals[name]}
                for name, age in self.ages().items()
            },
            "stale_policy": self.cfg.stale_policy,
            "blackout": {
                "before_minutes": self.cfg.blackout_before_minutes,
                "after_minutes": self.cfg.blackout_after_minutes,
            },
            "high_impact": [
                {
                    "currency": ev["currency"],
                    "event": ev["name"],
                    "time_gmt": ev["time"],
                    "at": fmt_time(ev["time"]),
                    "sources": list(ev.get("sources") or []),
                }
                for evs in snap.by_currency.values()
                for ev in evs
                if now - self.after_s <= ev["time"] <= horizon
            ],
            "sentiment": {
                c: {"score": round(s.value, 4), "weight": round(s.weight, 4)}
                for c, s in sorted(snap.scores.items())
            },
            "sentiment_at_gmt": snap.scores_at,
            "macro": dict(sorted(snap.macro.items())),
            "surprises": list(snap.surprises),
            "budget": self.budget.snapshot(),
        }

    def macro_scores(self) -> dict[str, float]:
        """Per-currency macro surprise scores (decayed), for strategies and operators."""
        return {c: float(v["score"]) for c, v in self._snap.macro.items()}

    def strategy_context(self, spec: SymbolSpec) -> StrategyContext:
        """What a strategy gets besides bars when a new bar closes: the macro surprise scores
        of the symbol's exposed currencies."""
        # Called on every new bar of every chart (32 at once at a bar close): the currencies
        # (a regex parse) and the scores change only with the spec and the snapshot, so the
        # context is built once per snapshot and symbol (~3 µs hot, ~8 µs in a bar close).
        snap = self._snap
        key = (spec.name, spec.base, spec.quote)
        cached = self._contexts.get(key)
        if cached is not None and cached[0] is snap:
            return cached[1]
        currencies = spec_currencies(spec, self.cfg.symbol_currencies)
        macro = {c: float(v["score"]) for c, v in snap.macro.items()}  # = macro_scores()
        context = StrategyContext(currencies, {c: macro[c] for c in currencies if c in macro})
        if len(self._contexts) >= 1024:  # bounded against a flood of symbol names
            self._contexts.clear()
        self._contexts[key] = (snap, context)
        return context
