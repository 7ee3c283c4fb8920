"""A stand-in EODHD server: real HTTP on loopback, documented shapes, injectable faults.

    with FakeEodhd() as fake:
        client = EodhdClient(fake.token, fake.base_url)
        fake.fail("/api/intraday", 429, retry_after=2)     # next intraday request → 429
        ...
        assert fake.count("/api/intraday") == 2

Serves `/api/economic-events`, `/api/news`, `/api/sentiments`, `/api/eod/{SYMBOL}`,
`/api/intraday/{SYMBOL}` and `/api/user` with data generated deterministically in code (the same
request always gets the same answer for the same `now`). It behaves like the real API where the
reference documents it: plain-text `Unauthenticated` 401 / `Forbidden...` 403 bodies with
`text/html`, JSON 422 `{"errors": {...}}` (e.g. an intraday range longer than 120/600/7200 days),
CSV when `fmt=json` is missing, `X-Ratelimit-*` headers on 200s only, 429 over the per-minute
limit, 402 when an optional daily call budget is spent. Faults are injected per path prefix at
run time. Every request is recorded (path, params without `api_token`, status).

Demo: `python -m sidecar.testing.fake_eodhd --port 8899 [--token TOKEN] [--now 2025-06-30T12:00]`.
"""

from __future__ import annotations

import argparse
import json
import math
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

DEFAULT_TOKEN = "fake-eodhd-token-0123456789"
DEFAULT_NOW = datetime(2025, 6, 30, 12, 0, tzinfo=UTC)
INTRADAY_STEP_S = {"1m": 60, "5m": 300, "1h": 3600}
INTRADAY_MAX_DAYS = {"1m": 120, "5m": 600, "1h": 7200}
COSTS = {"eod": 1, "intraday": 5, "news": 5, "sentiments": 5, "economic-events": 1, "user": 1}
DEMO_TICKERS = frozenset(
    ["AAPL.US", "MSFT.US", "TSLA.US", "VTI.US", "AMZN.US", "SWPPX.US", "EURUSD.FOREX", "BTC-USD.CC"]
)
FREE_PLAN_WARNING = "Data is limited by one year as you have free subscription."
TEXT_BODIES = {
    401: "Unauthenticated",
    402: '{"error":"You exceeded your daily API requests limit.","code":402}',
    403: "Forbidden. Please contact support@eodhistoricaldata.com",
    404: "Ticker Not Found.",
    429: '{"error":"API rate limit exceeded"}',
    500: "<html><head><title>500 Internal Server Error</title></head></html>",
    502: "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
    503: "<html><head><title>503 Service Temporarily Unavailable</title></head></html>",
    504: "<html><head><title>504 Gateway Time-out</title></head></html>",
}
HTML = "text/html; charset=UTF-8"
JSON = "application/json"


def _unit(*parts: object) -> float:
    """Deterministic pseudo-random number in [0, 1) from its arguments."""
    return zlib.crc32("|".join(map(str, parts)).encode()) / 2**32


# --- fixtures: economic events ---------------------------------------------------------------


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    d = date(year, month, 1)
    d += timedelta(days=(weekday - d.weekday()) % 7)
    return d + timedelta(weeks=n - 1)


def _business_day(year: int, month: int, day: int) -> date:
    d = date(year, month, min(day, 28))
    while d.weekday() >= 5:
        d += timedelta(days=1)
    return d


# (country, type, comparison, rule, HH:MM UTC, level, noise, months or None=every month)
# rule: ("nth", weekday, n) | ("day", d)
_MONTHLY: tuple[
    tuple[str, str, str | None, tuple[Any, ...], str, float, float, tuple[int, ...] | None], ...
] = (
    ("US", "Non Farm Payrolls", None, ("nth", 4, 1), "12:30", 180.0, 60.0, None),
    ("US", "Unemployment Rate", None, ("nth", 4, 1), "12:30", 4.0, 0.1, None),
    ("US", "Average Hourly Earnings", "mom", ("nth", 4, 1), "12:30", 0.3, 0.1, None),
    ("US", "Inflation Rate", "yoy", ("day", 12), "12:30", 3.0, 0.2, None),
    ("US", "Core Inflation Rate", "mom", ("day", 12), "12:30", 0.3, 0.1, None),
    ("US", "Retail Sales", "mom", ("day", 15), "12:30", 0.4, 0.4, None),
    ("US", "ISM Manufacturing PMI", None, ("day", 1), "14:00", 49.0, 1.5, None),
    (
        "US",
        "Fed Interest Rate Decision",
        None,
        ("nth", 2, 3),
        "18:00",
        5.5,
        0.0,
        (1, 3, 5, 6, 7, 9, 11, 12),
    ),
    ("US", "Fed Chair Powell Speech", None, ("day", 20), "16:00", 0.0, 0.0, None),
    (
        "EU",
        "ECB Interest Rate Decision",
        None,
        ("nth", 3, 2),
        "12:15",
        4.25,
        0.0,
        (1, 3, 4, 6, 7, 9, 10, 12),
    ),
    ("EU", "Inflation Rate", "yoy", ("day", 2), "09:00", 2.4, 0.2, None),
    ("EU", "GDP Growth Rate", "qoq", ("day", 28), "09:00", 0.3, 0.2, (1, 4, 7, 10)),
    ("DE", "Ifo Business Climate", None, ("day", 24), "08:00", 87.0, 1.0, None),
    ("DE", "HCOB Manufacturing PMI", None, ("day", 23), "07:30", 45.0, 1.0, None),
    (
        "UK",
        "BoE Interest Rate Decision",
        None,
        ("nth", 3, 1),
        "11:00",
        5.0,
        0.0,
        (2, 3, 5, 6, 8, 9, 11, 12),
    ),
    ("UK", "GDP", "mom", ("day", 11), "06:00", 0.1, 0.2, None),
    ("UK", "Inflation Rate", "yoy", ("day", 17), "06:00", 3.0, 0.2, None),
    (
        "JP",
        "BoJ Interest Rate Decision",
        None,
        ("day", 19),
        "03:00",
        0.25,
        0.0,
        (1, 3, 4, 6, 7, 9, 10, 12),
    ),
    ("JP", "Unemployment Rate", None, ("day", 27), "23:30", 2.5, 0.1, None),
    ("CA", "Employment Change", None, ("nth", 4, 1), "12:30", 25.0, 20.0, None),
    (
        "AU",
        "RBA Interest Rate Decision",
        None,
        ("nth", 1, 1),
        "04:30",
        4.35,
        0.0,
        (2, 3, 5, 6, 8, 9, 11, 12),
    ),
    ("CH", "SNB Interest Rate Decision", None, ("nth", 3, 3), "07:30", 1.0, 0.0, (3, 6, 9, 12)),
)
# (country, type, weekday, HH:MM, level, noise)
_WEEKLY = (
    ("US", "Initial Jobless Claims", 3, "12:30", 220.0, 15.0),
    ("US", "Baker Hughes Oil Rig Count", 4, "17:00", 480.0, 5.0),
    ("US", "3-Month Bill Auction", 0, "15:30", 5.2, 0.02),
)


def _event_row(
    country: str,
    typ: str,
    comparison: str | None,
    when: datetime,
    level: float,
    noise: float,
    now: datetime,
) -> dict[str, Any]:
    key = (country, typ, when.date().isoformat())
    prev_month = (when.replace(day=1) - timedelta(days=1)).strftime("%b")
    previous = round(level + noise * (2 * _unit("p", *key) - 1), 2)
    estimate = round(level + noise * (2 * _unit("e", *key) - 1), 2)
    actual = round(estimate + noise * (2 * _unit("a", *key) - 1), 2) if when <= now else None
    if noise == 0.0 and level == 0.0:  # speeches and the like carry no numbers
        previous = estimate = None  # type: ignore[assignment]
        actual = None
    change = round(actual - previous, 3) if actual is not None and previous is not None else None
    change_pct = (
        round(100 * change / previous, 3)
        if change is not None and previous not in (0, None)
        else None
    )
    return {
        "type": typ,
        "comparison": comparison,
        "period": prev_month,
        "country": country,
        "date": when.strftime("%Y-%m-%d %H:%M:%S"),
        "actual": actual,
        "previous": previous,
        "estimate": estimate,
        "change": change,
        "change_percentage": change_pct,
    }


def economic_events(start: date, end: date, now: datetime = DEFAULT_NOW) -> list[dict[str, Any]]:
    """Events dated within [start, end], ascending by date: a realistic monthly/weekly schedule
    (US Non Farm Payrolls, CPI, Fed; EU ECB, HICP; DE Ifo; UK BoE, GDP; JP BoJ; ...)."""
    rows: list[dict[str, Any]] = []
    y, m = start.year, start.month
    while date(y, m, 1) <= end:
        for country, typ, comp, rule, hhmm, level, noise, months in _MONTHLY:
            if months is not None and m not in months:
                continue
            d = (
                _nth_weekday(y, m, rule[1], rule[2])
                if rule[0] == "nth"
                else _business_day(y, m, rule[1])
            )
            hh, mm = map(int, hhmm.split(":"))
            when = datetime(d.year, d.month, d.day, hh, mm, tzinfo=UTC)
            if start <= d <= end:
                rows.append(_event_row(country, typ, comp, when, level, noise, now))
        y, m = (y + 1, 1) if m == 12 else (y, m + 1)
    d = start
    while d <= end:
        for country, typ, weekday, hhmm, level, noise in _WEEKLY:
            if d.weekday() == weekday:
                hh, mm = map(int, hhmm.split(":"))
                when = datetime(d.year, d.month, d.day, hh, mm, tzinfo=UTC)
                rows.append(_event_row(country, typ, None, when, level, noise, now))
        d += timedelta(days=1)
    rows.sort(key=lambda r: (r["date"], r["country"], r["type"]))
    return rows


# --- fixtures: news and sentiments -----------------------------------------------------------

NEWS_TICKERS = ("EURUSD.FOREX", "USDJPY.FOREX", "GBPUSD.FOREX", "XAUUSD.FOREX", "AAPL.US")
# (title template, content template, polarity or None when EODHD left it unscored)
_NEWS_TEMPLATES: tuple[tuple[str, str, float | None], ...] = (
    (
        "{a} rallies against {b} as strong data lifts confidence",
        "The {a} gained broadly after upbeat figures beat expectations.",
        0.83,
    ),
    (
        "{a} slumps versus {b} after weak data and recession fears",
        "Disappointing numbers hurt the {a}; analysts warn of further losses.",
        -0.78,
    ),
    (
        "{pair} steady ahead of central bank decision",
        "Traders wait for the rate decision; volumes are thin.",
        0.02,
    ),
    (
        "{b} strengthens as investors seek safety; {pair} slides",
        "Risk aversion weighed on the {a} while the {b} found support.",
        -0.52,
    ),
    (
        "Analysts upgrade outlook for {a}, see solid growth",
        "Strong growth and rising optimism support the {a}.",
        None,
    ),
    (
        "{a} tumbles as crisis deepens and losses mount",
        "A terrible week for the {a}: panic selling and fears of default.",
        None,
    ),
)


def _news_names(ticker: str) -> dict[str, str]:
    code = ticker.split(".")[0]
    if ticker.endswith(".FOREX") and len(code) == 6:
        return {"a": code[:3], "b": code[3:], "pair": code}
    return {"a": code, "b": "the market", "pair": code}


def news_items(now: datetime = DEFAULT_NOW, days: int = 14) -> list[dict[str, Any]]:
    """News of the last `days` before `now`, newest first; every sixth item has no `sentiment`
    (like articles EODHD left unscored) so lexicon scoring gets exercised."""
    out: list[dict[str, Any]] = []
    for ti, ticker in enumerate(NEWS_TICKERS):
        names = _news_names(ticker)
        for k in range(days * 2):  # two articles per ticker per day
            when = now - timedelta(hours=12 * k + ti)
            tpl = _NEWS_TEMPLATES[(k + ti) % len(_NEWS_TEMPLATES)]
            item: dict[str, Any] = {
                "date": when.strftime("%Y-%m-%dT%H:%M:%S+00:00"),
                "title": tpl[0].format(**names),
                "content": tpl[1].format(**names),
                "link": f"https://news.example.com/{ticker.lower()}/{int(when.timestamp())}",
                "symbols": [ticker],
                "tags": ["FOREX"] if ticker.endswith(".FOREX") else ["TECH"],
            }
            if tpl[2] is not None:
                p = tpl[2]
                neg = round(max(0.0, -p) * 0.3, 3)
                pos = round(max(0.0, p) * 0.3, 3)
                item["sentiment"] = {
                    "polarity": p,
                    "neg": neg,
                    "neu": round(1 - neg - pos, 3),
                    "pos": pos,
                }
            out.append(item)
    out.sort(key=lambda x: x["date"], reverse=True)
    return out


def sentiment_series(ticker: str, start: date, end: date) -> list[dict[str, Any]]:
    """Daily `{date, count, normalized}` rows, newest first; some days have no news (absent)."""
    rows = []
    d = end
    while d >= start:
        u = _unit("s", ticker.upper(), d.isoformat())
        if u >= 0.15:
            rows.append(
                {
                    "date": d.isoformat(),
                    "count": 1 + int(30 * _unit("c", ticker.upper(), d.isoformat())),
                    "normalized": round(2 * u - 1, 4),
                }
            )
        d -= timedelta(days=1)
    return rows


# --- fixtures: bars --------------------------------------------------------------------------

BASE_PRICE = {"EURUSD": 1.08, "GBPUSD": 1.27, "USDJPY": 150.0, "XAUUSD": 2300.0, "AAPL": 190.0}


def _price(symbol: str, t: float) -> float:
    code = symbol.split(".")[0].upper()
    base = BASE_PRICE.get(code, 10 + 90 * _unit("base", code))
    wave = 0.02 * math.sin(2 * math.pi * t / (30 * 86400)) + 0.004 * math.sin(
        2 * math.pi * t / 86400
    )
    return base * (1 + wave + 0.001 * (_unit(code, int(t)) - 0.5))


def _digits(symbol: str) -> int:
    p = _price(symbol, 0)
    return 5 if p < 10 else 3 if p < 1000 else 2


def _ohlc(symbol: str, t0: int, t1: int) -> tuple[float, float, float, float]:
    nd = _digits(symbol)
    o, c = _price(symbol, t0), _price(symbol, t1)
    span = abs(c - o) + o * 0.0004
    h = max(o, c) + span * _unit("h", symbol, t0)
    lo = min(o, c) - span * _unit("l", symbol, t0)
    return round(o, nd), round(h, nd), round(lo, nd), round(c, nd)


def eod_bars(symbol: str, start: date, end: date) -> list[dict[str, Any]]:
    """Weekday daily bars in [start, end], oldest first; FX volume is 0 as on EODHD."""
    fx = symbol.upper().endswith(".FOREX")
    out = []
    d = start
    while d <= end:
        if d.weekday() < 5:
            t0 = int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp())
            o, h, lo, c = _ohlc(symbol, t0, t0 + 86400 - 60)
            vol = 0 if fx else 1_000_000 + int(9_000_000 * _unit("v", symbol, t0))
            out.append(
                {
                    "date": d.isoformat(),
                    "open": o,
                    "high": h,
                    "low": lo,
                    "close": c,
                    "adjusted_close": c,
                    "volume": vol,
                }
            )
        d += timedelta(days=1)
    return out


def default_session(symbol: str) -> tuple[int, int]:
    """Trading minutes of the UTC day: US equities 13:30–20:00, everything else the full day."""
    return (13 * 60 + 30, 20 * 60) if symbol.upper().endswith(".US") else (0, 24 * 60)


def intraday_bars(
    symbol: str, interval: str, start: int, end: int, session: tuple[int, int] | None = None
) -> list[dict[str, Any]]:
    """Weekday bars with open time in [start, end] (unix seconds), oldest first."""
    step = INTRADAY_STEP_S[interval]
    s_min, e_min = session or default_session(symbol)
    fx = symbol.upper().endswith(".FOREX")
    out: list[dict[str, Any]] = []
    for day in range(start - start % 86400, end + 1, 86400):
        if datetime.fromtimestamp(day, UTC).weekday() >= 5:
            continue
        lo = max(day + s_min * 60, start)
        lo += (-lo) % step  # bars open on the interval grid
        hi = min(day + e_min * 60 - 1, end)  # the session end is exclusive
        for t in range(lo, hi + 1, step):
            o, h, low, c = _ohlc(symbol, t, t + step)
            out.append(
                {
                    "timestamp": t,
                    "gmtoffset": 0,
                    "datetime": datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S"),
                    "open": o,
                    "high": h,
                    "low": low,
                    "close": c,
                    "volume": 0 if fx else int(1000 + 50_000 * _unit("v", symbol, t)),
                }
            )
    return out


# --- faults and records ----------------------------------------------------------------------


@dataclass
class Fault:
    """One injected misbehaviour for requests whose path starts with `path`.

    kind: "status" (answer `status` with `body`), "slow" (sleep `delay_s`, then answer
    normally), "malformed" (200 with broken JSON), "warning" (add the free-plan warning element).
    It skips the first `after` matching requests, then applies `times` times (None = forever).
    """

    path: str
    kind: str
    status: int = 500
    body: str | None = None
    content_type: str | None = None
    retry_after: str | None = None
    delay_s: float = 0.0
    placement: str = "element"
    times: int | None = 1
    after: int = 0
    seen: int = 0


@dataclass
class RecordedRequest:
    """One request as it arrived; `status` is 0 until the reply is sent (slow replies).
    `at` is the server's monotonic clock on arrival (for sliding-window rate checks)."""

    path: str
    params: dict[str, str]
    endpoint: str
    status: int = 0
    at: float = 0.0


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # header and body go in separate writes: avoid 40 ms stalls

    def log_message(self, format: str, *args: Any) -> None:  # quiet: tests read records instead
        return

    def do_GET(self) -> None:
        self.server.fake._handle(self)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    fake: FakeEodhd

    def handle_error(self, request: Any, client_address: Any) -> None:
        return  # a client that timed out and hung up is expected here


class _Reply(Exception):
    def __init__(
        self, status: int, body: str, ctype: str = HTML, headers: dict[str, str] | None = None
    ):
        super().__init__(status)
        self.status, self.body, self.ctype, self.headers = status, body, ctype, headers or {}


def _validation(errors: dict[str, list[str]]) -> _Reply:
    return _Reply(422, json.dumps({"errors": errors}), JSON)


class FakeEodhd:
    """The stand-in server. Start with `start()` or `with FakeEodhd() as fake:`."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        token: str = DEFAULT_TOKEN,
        now: datetime = DEFAULT_NOW,
        per_minute_limit: int = 1000,
        daily_limit: int | None = None,
        demo_tickers: Iterable[str] = DEMO_TICKERS,
        intraday_session: tuple[int, int] | None = None,
        clock: Callable[[], float] = time.monotonic,
        events: list[dict[str, Any]] | None = None,
        news: list[dict[str, Any]] | None = None,
        sentiments: dict[str, list[dict[str, Any]]] | None = None,
    ) -> None:
        self.host, self.port, self.token, self.now = host, port, token, now
        # Explicit data served instead of the generated fixtures (None = generated). Rows use
        # the documented shapes; they may be replaced at run time.
        self.events = events
        self.news = news
        self.sentiments = sentiments
        self.per_minute_limit = per_minute_limit
        self.daily_limit = daily_limit
        self.demo_tickers = frozenset(t.upper() for t in demo_tickers)
        self.intraday_session = intraday_session
        self._clock = clock
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._records: list[RecordedRequest] = []
        self._minute: deque[float] = deque()
        self.calls_used = 0
        self._stop = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> FakeEodhd:
        self._server = _Server((self.host, self.port), _Handler)
        self._server.fake = self
        self.port = self._server.server_address[1]
        self._stop.clear()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name="fake-eodhd",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()  # wakes slow replies
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = self._thread = None

    def __enter__(self) -> FakeEodhd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}/api"

    # -- faults ---------------------------------------------------------------------------

    def inject(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def fail(
        self,
        path: str,
        status: int,
        *,
        times: int | None = 1,
        after: int = 0,
        body: str | None = None,
        retry_after: float | str | None = None,
    ) -> Fault:
        """Answer `status` (429, 5xx, 401, 403, 404, 402, 422 ...) with the real API's body."""
        ctype = None
        if body is None and status == 422:
            body, ctype = json.dumps({"errors": {"from": ["The from field is invalid."]}}), JSON
        elif body is None:
            body = TEXT_BODIES.get(status, f"HTTP {status}")
            ctype = JSON if body.startswith("{") else HTML
        return self.inject(
            Fault(
                path,
                "status",
                status=status,
                body=body,
                content_type=ctype,
                retry_after=None if retry_after is None else str(retry_after),
                times=times,
                after=after,
            )
        )

    def slow(self, path: str, delay_s: float, *, times: int | None = 1, after: int = 0) -> Fault:
        return self.inject(Fault(path, "slow", delay_s=delay_s, times=times, after=after))

    def malformed(self, path: str, *, times: int | None = 1, after: int = 0) -> Fault:
        return self.inject(Fault(path, "malformed", times=times, after=after))

    def warning(
        self, path: str, *, placement: str = "element", times: int | None = None, after: int = 0
    ) -> Fault:
        """Add the free-plan `warning` as a trailing element (or as a field on the last row)."""
        if placement not in ("element", "field"):
            raise ValueError(f"placement must be 'element' or 'field', got {placement!r}")
        return self.inject(Fault(path, "warning", placement=placement, times=times, after=after))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for f in self._faults:
                if not path.startswith(f.path) or f.times == 0:
                    continue
                f.seen += 1
                if f.seen <= f.after:
                    continue
                if f.times is not None:
                    f.times -= 1
                return f
        return None

    # -- records --------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._records)

    def count(self, path_prefix: str = "/api") -> int:
        return sum(1 for r in self.requests if r.path.startswith(path_prefix))

    def reset_requests(self) -> None:
        with self._lock:
            self._records.clear()

    # -- request handling -----------------------------------------------------------------

    def _handle(self, h: _Handler) -> None:
        parts = urlsplit(h.path)
        path = unquote(parts.path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        token = params.pop("api_token", None)
        segs = [p for p in path.split("/") if p]
        endpoint = segs[1] if len(segs) > 1 and segs[0] == "api" else ""
        record = RecordedRequest(path, params, endpoint, at=self._clock())
        with self._lock:
            self._records.append(record)  # on arrival, so counts include requests in flight
        try:
            fault = self._take_fault(path)
            if fault is not None and fault.kind == "status":
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
                raise _Reply(fault.status, fault.body or "", fault.content_type or HTML, headers)
            if fault is not None and fault.kind == "slow" and self._stop.wait(fault.delay_s):
                return
            self._check_auth(token, endpoint, segs)
            self._check_rate(endpoint)
            data = self._route(endpoint, segs, params)
            if fault is not None and fault.kind == "warning" and isinstance(data, list):
                if fault.placement == "field" and data:
                    data[-1] = {**data[-1], "warning": FREE_PLAN_WARNING}
                else:
                    data.append({"warning": FREE_PLAN_WARNING})
            if params.get("fmt") != "json" and endpoint in ("eod", "intraday", "economic-events"):
                body, ctype = _csv(data), "text/csv; charset=UTF-8"
            else:
                body, ctype = json.dumps(data), JSON
            if fault is not None and fault.kind == "malformed":
                body, ctype = body[: max(1, len(body) // 2)] + '{"trunc', JSON
            reply = _Reply(200, body, ctype, self._rate_headers())
        except _Reply as r:
            reply = r
        record.status = reply.status
        self._send(h, reply)

    def _send(self, h: _Handler, r: _Reply) -> None:
        payload = r.body.encode()
        try:
            h.send_response(r.status)
            h.send_header("Content-Type", r.ctype)
            h.send_header("Content-Length", str(len(payload)))
            h.send_header("Cache-Control", "no-cache, private")
            for k, v in r.headers.items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            pass  # the client gave up (timeout test); nothing to answer

    def _check_auth(self, token: str | None, endpoint: str, segs: list[str]) -> None:
        if not token:
            raise _Reply(401, TEXT_BODIES[401])
        if token == "demo" and self.token != "demo":
            if endpoint == "economic-events":
                raise _Reply(403, "Forbidden")
            ticker = segs[2].upper() if len(segs) > 2 else ""
            if endpoint in ("eod", "intraday") and ticker not in self.demo_tickers:
                raise _Reply(401, TEXT_BODIES[401])
            return
        if token != self.token:
            raise _Reply(401, TEXT_BODIES[401])

    def _check_rate(self, endpoint: str) -> None:
        with self._lock:
            now = self._clock()
            while self._minute and now - self._minute[0] >= 60:
                self._minute.popleft()
            if len(self._minute) >= self.per_minute_limit:
                raise _Reply(429, TEXT_BODIES[429], JSON, {"Retry-After": "60"})
            cost = COSTS.get(endpoint, 1)
            if self.daily_limit is not None and self.calls_used + cost > self.daily_limit:
                raise _Reply(402, TEXT_BODIES[402], JSON)
            self._minute.append(now)
            self.calls_used += cost

    def _rate_headers(self) -> dict[str, str]:
        with self._lock:
            remaining = max(0, self.per_minute_limit - len(self._minute))
        return {
            "X-Ratelimit-Limit": str(self.per_minute_limit),
            "X-Ratelimit-Remaining": str(remaining),
            "Access-Control-Allow-Origin": "*",
        }

    def _route(self, endpoint: str, segs: list[str], q: dict[str, str]) -> Any:
        if endpoint == "economic-events" and len(segs) == 2:
            return self._economic_events(q)
        if endpoint == "news" and len(segs) == 2:
            return self._news(q)
        if endpoint == "sentiments" and len(segs) == 2:
            return self._sentiments(q)
        if endpoint == "eod" and len(segs) == 3:
            return self._eod(segs[2], q)
        if endpoint == "intraday" and len(segs) == 3:
            return self._intraday(segs[2], q)
        if endpoint in ("user", "internal-user") and len(segs) == 2:
            return {
                "name": "Fake User",
                "email": "fake@example.com",
                "subscriptionType": "fake",
                "apiRequests": self.calls_used,
                "dailyRateLimit": self.daily_limit or 100000,
                "apiRequestsDate": self.now.date().isoformat(),
            }
        raise _Reply(404, TEXT_BODIES[404])

    def _date(self, q: dict[str, str], key: str, default: date) -> date:
        if key not in q:
            return default
        try:
            return date.fromisoformat(q[key])
        except ValueError:
            raise _validation({key: [f"The {key} does not match the format Y-m-d."]}) from None

    def _int(self, q: dict[str, str], key: str, default: int, lo: int, hi: int) -> int:
        try:
            v = int(q.get(key, default))
        except ValueError:
            raise _validation({key: [f"The {key} must be an integer."]}) from None
        if not lo <= v <= hi:
            raise _validation({key: [f"The {key} must be between {lo} and {hi}."]})
        return v

    def _economic_events(self, q: dict[str, str]) -> list[dict[str, Any]]:
        today = self.now.date()
        start = self._date(q, "from", today - timedelta(days=7))
        end = self._date(q, "to", today + timedelta(days=7))
        limit = self._int(q, "limit", 50, 0, 1000)
        offset = self._int(q, "offset", 0, 0, 1000)
        if self.events is None:
            rows = economic_events(start, end, self.now)
        else:
            rows = sorted(
                (r for r in self.events if start <= date.fromisoformat(r["date"][:10]) <= end),
                key=lambda r: (r["date"], r["country"], r["type"]),
            )
        if q.get("country"):
            rows = [r for r in rows if r["country"] == q["country"].upper()]
        if q.get("comparison"):
            rows = [r for r in rows if r["comparison"] == q["comparison"]]
        return rows[offset : offset + limit]

    def _news(self, q: dict[str, str]) -> list[dict[str, Any]]:
        if not q.get("s") and not q.get("t"):
            raise _validation({"s": ["The s field is required when t is not present."]})
        limit = self._int(q, "limit", 50, 1, 1000)
        offset = self._int(q, "offset", 0, 0, 10**6)
        items = news_items(self.now) if self.news is None else list(self.news)
        if q.get("s"):
            wanted = {s.strip().upper() for s in q["s"].split(",")}
            items = [i for i in items if wanted & set(i["symbols"])]
        else:
            items = [i for i in items if q["t"].upper() in i["tags"]]
        if "from" in q:
            f = self._date(q, "from", date.min).isoformat()
            items = [i for i in items if i["date"][:10] >= f]
        if "to" in q:
            t = self._date(q, "to", date.max).isoformat()
            items = [i for i in items if i["date"][:10] <= t]
        return items[offset : offset + limit]

    def _sentiments(self, q: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
        if not q.get("s"):
            raise _validation({"s": ["The s field is required."]})
        end = self._date(q, "to", self.now.date())
        start = self._date(q, "from", end - timedelta(days=30))
        if self.sentiments is not None:
            return {
                s.strip().upper(): [
                    r
                    for r in self.sentiments.get(s.strip().upper(), [])
                    if start.isoformat() <= r["date"] <= end.isoformat()
                ]
                for s in q["s"].split(",")
                if s.strip()
            }
        return {
            s.strip().upper(): sentiment_series(s.strip(), start, end)
            for s in q["s"].split(",")
            if s.strip()
        }

    def _eod(self, symbol: str, q: dict[str, str]) -> list[dict[str, Any]]:
        if q.get("period", "d") not in ("d", "w", "m"):
            raise _validation({"period": ["The selected period is invalid."]})
        start = self._date(q, "from", date(2020, 1, 1))
        end = min(self._date(q, "to", self.now.date()), self.now.date())
        rows = eod_bars(symbol, start, end)
        return rows[::-1] if q.get("order") == "d" else rows

    def _intraday(self, symbol: str, q: dict[str, str]) -> list[dict[str, Any]]:
        interval = q.get("interval", "5m")
        if interval not in INTRADAY_STEP_S:
            raise _validation({"interval": ["The selected interval is invalid."]})
        now_ts = int(self.now.timestamp())
        try:
            end = int(q.get("to", now_ts))
            start = int(q.get("from", end - 120 * 86400))
        except ValueError:
            raise _validation({"from": ["The from must be a unix timestamp."]}) from None
        max_days = INTRADAY_MAX_DAYS[interval]
        if end - start > max_days * 86400:
            msg = [f"Max period length is {max_days} days"]
            raise _validation({"to": msg, "from": msg})
        return intraday_bars(symbol, interval, start, min(end, now_ts), self.intraday_session)


def _csv(data: Any) -> str:
    if not isinstance(data, list) or not data:
        return ""
    cols = list(data[0])
    lines = [",".join(c.capitalize() for c in cols)]
    lines += [",".join("" if r.get(c) is None else str(r.get(c)) for c in cols) for r in data]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="Stand-in EODHD server on loopback")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8899)
    ap.add_argument("--token", default=DEFAULT_TOKEN)
    ap.add_argument("--now", default=None, help="ISO UTC time the data ends at (default: now)")
    args = ap.parse_args(argv)
    now = datetime.fromisoformat(args.now) if args.now else datetime.now(UTC).replace(microsecond=0)
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    fake = FakeEodhd(host=args.host, port=args.port, token=args.token, now=now).start()
    print(f"fake EODHD at {fake.base_url} (token {args.token}); Ctrl-C to stop", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()


if __name__ == "__main__":
    main()
