"""The news gate of a backtest: the live rules, fed with history, nothing seen before its time.

Live, the feed service keeps a snapshot of the economic calendar and scored news and the kernel
asks its `feed_gate` on every tick. Here the same pure rules (`sidecar.engine.news`) read the
calendar table and the news table of a SQLite file that `sidecar pull-calendar` (and a running
sidecar) filled:

- an event's schedule (time, currency, importance) is public well before it happens, so its
  blackout window and the close-before-event rule apply as live;
- a scored article counts for sentiment only from its publication time;
- source staleness does not apply (there are no live sources in a backtest).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sidecar.backtest.model import Span
from sidecar.config import Config
from sidecar.engine.news import (
    CurrencyScore,
    blackout_reasons,
    close_reasons,
    combine,
    event_time,
    events_near,
    index_high_impact,
    sentiment_reasons,
)
from sidecar.feeds.calendar_rules import merge_calendar_rows, spec_currencies
from sidecar.feeds.sentiment import SentimentItem, currency_scores
from sidecar.kernel import SymbolContext
from sidecar.protocol import SymbolSpec, Tick
from sidecar.store import Store

Reasons3 = tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]


class HistoricalNews:
    def __init__(
        self,
        config: Config,
        events: Iterable[Mapping[str, Any]] = (),
        articles: Iterable[SentimentItem] = (),
    ) -> None:
        cfg = config.feeds
        self.cfg = cfg
        self.events = list(events)
        self.by_currency, self.times = index_high_impact(self.events)
        self.before_s = int(cfg.blackout_before_minutes * 60)
        self.after_s = int(cfg.blackout_after_minutes * 60)
        self.close_s = int(cfg.close_before_event_minutes * 60)
        self.half_life_s = cfg.sentiment_half_life_hours * 3600
        self.articles = sorted(articles, key=lambda a: a.time)
        self._article_times = [a.time for a in self.articles]
        self._currencies: dict[str, tuple[str, ...]] = {}

    @classmethod
    def from_store(
        cls, config: Config, db: str | Path, start_gmt: int, end_gmt: int
    ) -> HistoricalNews:
        """Events and scored articles of [start, end] (plus the windows' reach) from a SQLite
        file written by `sidecar pull-calendar` or a running sidecar."""
        if not Path(db).is_file():
            raise ValueError(f"calendar: no such SQLite file {str(db)!r}")
        reach = 2 * 86400
        store = Store(str(db))
        try:
            rows = store.calendar_events(start_gmt - reach, end_gmt + reach)
            since = start_gmt - int(10 * config.feeds.sentiment_half_life_hours * 3600)
            news = [r for r in store.news(since, limit=1_000_000) if r["time_gmt"] <= end_gmt]
        finally:
            store.close()
        articles = [
            SentimentItem(
                sym.upper(), int(r["time_gmt"]), float(r["score"]), 1.0, r["score_source"]
            )
            for r in news
            if r["score"] is not None
            for sym in r["symbols"]
        ]
        return cls(config, merge_calendar_rows(rows), articles)

    def currencies_of(self, spec: SymbolSpec) -> tuple[str, ...]:
        if spec.name not in self._currencies:
            self._currencies[spec.name] = spec_currencies(spec, self.cfg.symbol_currencies)
        return self._currencies[spec.name]

    def gate(self, tick: Tick, true_gmt: int, ctx: SymbolContext) -> Reasons3:
        """The kernel's feed gate: blackouts, sentiment against the proposed side, and events
        close enough to flatten before, as the live feed service computes them."""
        currencies = self.currencies_of(ctx.spec)
        first = true_gmt - self.after_s
        last = true_gmt + max(self.before_s, self.close_s)
        events = events_near(self.by_currency, self.times, currencies, first, last)
        parts = []
        if events:
            parts.append(
                blackout_reasons(events, currencies, true_gmt, self.before_s, self.after_s)
            )
        signal = ctx.analysis.signal
        if signal is not None and len(currencies) == 2 and self.articles:
            parts.append(
                sentiment_reasons(
                    currencies[0],
                    currencies[1],
                    signal.side,
                    self.scores_at(true_gmt, currencies),
                    self.cfg.sentiment_block_below,
                    self.cfg.sentiment_defensive_below,
                    self.cfg.sentiment_min_weight,
                )
            )
        blocks, defensive = combine(*parts) if parts else ((), ())
        close = close_reasons(events, currencies, true_gmt, self.close_s) if events else ()
        return blocks, defensive, close

    def scores_at(self, now: int, currencies: Sequence[str]) -> dict[str, CurrencyScore]:
        """Sentiment per currency from the articles published at or before `now`."""
        visible = self.articles[: bisect.bisect_right(self._article_times, now)]
        scores = currency_scores(visible, now, self.half_life_s)
        return {c: CurrencyScore(s.value, s.weight) for c in currencies if (s := scores.get(c))}

    def blackout_spans(self, currencies: Iterable[str], start: int, end: int) -> list[Span]:
        """Blackout windows of the traded currencies' high-impact events within [start, end],
        for the report."""
        out = []
        for cur in sorted(set(currencies)):
            for ev in events_near(
                self.by_currency, self.times, (cur,), start - self.after_s, end + self.before_s
            ):
                t = event_time(ev)
                out.append(Span(t - self.before_s, t + self.after_s, f"{cur} {ev.get('name', '')}"))
        out.sort(key=lambda s: (s.start, s.label))
        return out
