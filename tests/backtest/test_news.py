"""The news gate in a backtest: the calendar and articles a pull stored, each seen only from its
time, act as they do live (blackouts refuse entries, close-before-event flattens, sentiment
counts only once published)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from backtesting.test import EURUSD

from sidecar.backtest.data import load_backtesting_frame
from sidecar.backtest.model import AccountSpec
from sidecar.backtest.news import HistoricalNews
from sidecar.backtest.runner import Backtest, Market, RunOptions
from sidecar.backtest.symbols import resolve_instrument
from sidecar.config import load_config
from sidecar.engine.strategies import strategy_problems
from sidecar.store import Store

BARS = 1500
MIN = 60


def config(**feeds: Any) -> Any:
    return load_config(None, env={}, overrides={"feeds": feeds}, extra_checks=strategy_problems)


def backtest(cfg: Any, db: Path | None = None) -> Any:
    data = load_backtesting_frame(EURUSD.iloc[:BARS], "EURUSD", "H1")
    start, end = int(data.rows[0][0]), int(data.rows[-1][0])
    news = HistoricalNews.from_store(cfg, db, start, end) if db else None
    market = Market(data, resolve_instrument("EURUSD", None))
    return Backtest(cfg, AccountSpec(leverage=500), [market], RunOptions(news=news)).run()


def calendar(db: Path, times: list[int], currency: str = "USD") -> None:
    store = Store(str(db))
    store.upsert_calendar(
        "eodhd",
        [
            {
                "id": f"ev{t}",
                "time_gmt": t,
                "currency": currency,
                "importance": "high",
                "name": "Non Farm Payrolls",
            }
            for t in times
        ],
        received_gmt=2_000_000_000,  # pulled long after: the schedule itself was public
    )
    store.close()


def articles(db: Path, published: int, score: float, n: int = 3) -> None:
    store = Store(str(db))
    store.insert_news(
        [
            {
                "link": f"https://news.example/{published}/{k}",
                "time_gmt": published,
                "title": "euro slides",
                "symbols": ["EURUSD.FOREX"],
                "score": score,
                "score_source": "eodhd",
            }
            for k in range(n)
        ],
        received_gmt=published,
    )
    store.close()


def test_a_high_impact_event_refuses_the_entries_inside_its_window(tmp_path: Path) -> None:
    plain = backtest(config())
    entries = [t.entry_time for t in plain.trades[:6]]
    db = tmp_path / "calendar.sqlite"
    calendar(db, [t + 10 * MIN for t in entries])  # each entry 10 minutes before an event
    gated = backtest(config(), db)
    assert gated.decisions.refused.get("NEWS_BLACKOUT", 0) >= len(entries)
    assert not {t.entry_time for t in gated.trades} & set(entries)
    spans = {(s.start, s.end) for s in gated.blackouts}
    assert {(t + 10 * MIN - 30 * MIN, t + 10 * MIN + 60 * MIN) for t in entries} <= spans


def test_close_before_event_flattens_an_open_position_ahead_of_it(tmp_path: Path) -> None:
    plain = backtest(config())
    long_trade = next(t for t in plain.trades if t.exit_time - t.entry_time >= 6 * 3600)
    bar = long_trade.entry_time + 3 * 3600  # a bar open while the position is held
    db = tmp_path / "calendar.sqlite"
    calendar(db, [bar + 20 * MIN])
    gated = backtest(config(close_before_event_minutes=30), db)
    same = next(t for t in gated.trades if t.entry_time == long_trade.entry_time)
    assert same.exit_time == bar and same.exit_reason == "expert"
    assert gated.decisions.actions.get("close", 0) >= 1


def test_an_article_counts_only_from_its_publication_time(tmp_path: Path) -> None:
    plain = backtest(config())
    buy = next(t for t in plain.trades if t.side == "buy")
    later = tmp_path / "later.sqlite"
    articles(later, buy.entry_time + 3600, -0.9)  # published an hour after the entry
    unaffected = backtest(config(), later)
    assert any(t.entry_time == buy.entry_time for t in unaffected.trades)
    earlier = tmp_path / "earlier.sqlite"
    articles(earlier, buy.entry_time - 1800, -0.9)  # half an hour before
    blocked = backtest(config(), earlier)
    assert not any(t.entry_time == buy.entry_time and t.side == "buy" for t in blocked.trades)
    assert blocked.decisions.refused.get("NEWS_SENTIMENT", 0) >= 1


def test_a_missing_calendar_file_is_an_error_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "none.sqlite"
    try:
        HistoricalNews.from_store(config(), missing, 0, 1)
    except ValueError as exc:
        assert "none.sqlite" in str(exc)
    else:
        raise AssertionError("a missing calendar file must be refused")
    assert not missing.exists()  # and not created empty
