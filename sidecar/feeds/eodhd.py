"""EODHD REST client: economic events, news, sentiments, EOD and intraday bars.

One job: turn EODHD HTTP into Python data, safely. Every request has a timeout; 429, 5xx,
timeouts and connection errors are retried with exponential backoff and full jitter (a
`Retry-After` header wins over the computed delay); 401/402/403/404/422 are not retried and raise
a subclass of `EodhdError` naming the endpoint. The API token never appears in logs, exception
messages, reprs or metric labels: URLs are redacted (`api_token=***`), wrapped `requests`
exceptions are re-raised `from None` (their text holds the full URL), and a filter redacts
urllib3's own debug log of request lines.

Each HTTP attempt logs one `eodhd.call` record (logger `sidecar.feeds.eodhd`, fields in
`extra`: event, endpoint, status, cost, latency_ms, attempt) and bumps `stats`; `on_call`
receives the same fields for a metrics layer. An optional `CallBudget` is consulted before every
attempt, so a refused request never reaches the network.
"""

from __future__ import annotations

import email.utils
import logging
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import requests

from sidecar.feeds.budget import (
    BudgetExceeded,
    CallBudget,
    Grant,
    Priority,
    endpoint_of,
    request_cost,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "INTRADAY_MAX_DAYS",
    "BudgetExceeded",
    "CallEvent",
    "CallStats",
    "EodhdAuthError",
    "EodhdClient",
    "EodhdConfigError",
    "EodhdError",
    "EodhdNotFoundError",
    "EodhdPlanError",
    "EodhdPlanWarning",
    "EodhdQuotaError",
    "EodhdRateLimitError",
    "EodhdResponseError",
    "EodhdServerError",
    "EodhdTimeoutError",
    "EodhdValidationError",
    "intraday_windows",
    "redact",
]

log = logging.getLogger("sidecar.feeds.eodhd")

DEFAULT_BASE_URL = "https://eodhd.com/api"
# Max span of one intraday request per interval (reference §5); longer → HTTP 422.
INTRADAY_MAX_DAYS: dict[str, int] = {"1m": 120, "5m": 600, "1h": 7200}
FREE_PLAN_WARNING_KEY = "warning"
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
# HTTP errors EODHD does not charge (reference §7); 404 (invalid symbol) still costs.
_UNCHARGED_STATUSES = frozenset({401, 402, 403, 422, 429, 500, 502, 503, 504})
_TOKEN_RE = re.compile(r"(api_token=)[^&\s\"'#]*", re.IGNORECASE)


def redact(text: str, token: str | None = None) -> str:
    """Hide `api_token=...` values and any literal occurrence of `token`."""
    out = _TOKEN_RE.sub(r"\1***", text)
    if token:
        out = out.replace(token, "***")
    return out


# --- errors ----------------------------------------------------------------------------------


class EodhdError(Exception):
    """Base of every EODHD failure. `endpoint` is the metrics key (`eod`, `intraday` ...),
    `url` the redacted URL, `status` the HTTP status (None for transport errors)."""

    def __init__(
        self,
        message: str,
        *,
        endpoint: str = "",
        url: str = "",
        status: int | None = None,
        body: str = "",
    ) -> None:
        super().__init__(message)
        self.endpoint = endpoint
        self.url = url
        self.status = status
        self.body = body


class EodhdConfigError(EodhdError):
    """Missing or unusable configuration (no token, bad arguments)."""


class EodhdAuthError(EodhdError):
    """401: token missing, wrong, or a demo token used on a non-demo ticker."""


class EodhdPlanError(EodhdError):
    """403: the subscription does not include this endpoint or ticker."""


class EodhdQuotaError(EodhdError):
    """402: the daily call quota is spent; retry after the UTC day resets."""


class EodhdNotFoundError(EodhdError):
    """404: unknown ticker or path."""


class EodhdValidationError(EodhdError):
    """422: EODHD rejected a parameter; `errors` is its {param: [messages]} dict."""

    def __init__(self, message: str, *, errors: Mapping[str, Any], **kw: Any) -> None:
        super().__init__(message, **kw)
        self.errors = dict(errors)


class EodhdRateLimitError(EodhdError):
    """429 still returned after all retries (or a Retry-After longer than allowed)."""

    def __init__(self, message: str, *, retry_after_s: float | None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after_s = retry_after_s


class EodhdServerError(EodhdError):
    """5xx still returned after all retries."""


class EodhdTimeoutError(EodhdError):
    """Timeouts or connection failures on every attempt."""


class EodhdResponseError(EodhdError):
    """A 200 whose body is not the JSON shape documented for the endpoint."""


class EodhdPlanWarning(EodhdError):
    """The free-plan `warning` element was in the data (raised only with plan_warning="raise")."""


# --- metrics ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class CallEvent:
    """One HTTP attempt, as logged and passed to `on_call`. `status` is the HTTP status as a
    string, or `timeout` / `connection_error` / `budget_refused`."""

    endpoint: str
    status: str
    cost: int
    latency_ms: float
    attempt: int


@dataclass
class CallStats:
    """Thread-safe counters the metrics layer reads: attempts by (endpoint, status), calls
    charged by endpoint, free-plan warnings by endpoint."""

    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    calls: dict[tuple[str, str], int] = field(default_factory=dict)
    cost: dict[str, int] = field(default_factory=dict)
    warnings: dict[str, int] = field(default_factory=dict)

    def record(self, ev: CallEvent) -> None:
        with self._lock:
            key = (ev.endpoint, ev.status)
            self.calls[key] = self.calls.get(key, 0) + 1
            self.cost[ev.endpoint] = self.cost.get(ev.endpoint, 0) + ev.cost

    def record_warning(self, endpoint: str) -> None:
        with self._lock:
            self.warnings[endpoint] = self.warnings.get(endpoint, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "calls": dict(self.calls),
                "cost": dict(self.cost),
                "warnings": dict(self.warnings),
            }


class _RedactFilter(logging.Filter):
    """Redacts `api_token=` in urllib3's debug lines ("GET /api/eod/X?api_token=... HTTP/1.1")."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


_URLLIB3_FILTER = _RedactFilter()


def _install_urllib3_filter() -> None:
    lg = logging.getLogger("urllib3.connectionpool")
    if _URLLIB3_FILTER not in lg.filters:
        lg.addFilter(_URLLIB3_FILTER)


# --- helpers ---------------------------------------------------------------------------------


def _ymd(value: date | datetime | str | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return (
            value.astimezone(UTC).date().isoformat() if value.tzinfo else value.date().isoformat()
        )
    if isinstance(value, date):
        return value.isoformat()
    return date.fromisoformat(value).isoformat()  # validates loudly (pylib issue #58)


def _unix(value: int | float | datetime | date | str) -> int:
    """Unix seconds UTC; naive datetimes and dates are UTC."""
    if isinstance(value, bool):
        raise TypeError("bool is not a time")
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime):
        dt = value if value.tzinfo else value.replace(tzinfo=UTC)
        return int(dt.timestamp())
    return int(datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp())


def intraday_windows(
    start: int, end: int, interval: str, max_days: Mapping[str, int] | None = None
) -> list[tuple[int, int]]:
    """Split [start, end] (unix seconds) into request windows no longer than the interval's
    maximum. Consecutive windows share their boundary second; callers drop the duplicate bar."""
    limits = max_days or INTRADAY_MAX_DAYS
    if interval not in limits:
        raise EodhdConfigError(
            f"intraday interval must be one of {sorted(limits)}, got {interval!r}"
        )
    if end < start:
        raise EodhdConfigError(f"intraday range is empty: start {start} > end {end}")
    span = limits[interval] * 86_400
    out: list[tuple[int, int]] = []
    s = start
    while True:
        e = min(s + span, end)
        out.append((s, e))
        if e >= end:
            return out
        s = e


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _short(text: str, n: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[:n] + "…"


# --- client ----------------------------------------------------------------------------------


class EodhdClient:
    """Synchronous EODHD client on a `requests.Session`.

    Args:
        api_token: the key; default `EODHD_API_TOKEN` from the environment.
        base_url: default `EODHD_BASE_URL` or `https://eodhd.com/api`.
        timeout: (connect, read) seconds for every request.
        max_retries: retries after the first attempt for 429/5xx/timeouts.
        backoff_base_s, backoff_cap_s: delay before retry n is uniform in
            [0, min(cap, base * 2**n)] (full jitter), unless Retry-After says otherwise.
        max_retry_after_s: a Retry-After longer than this is not waited for; the 429 is raised.
        sleep, rng: injectable for fast deterministic tests (defaults time.sleep, random.Random()).
        budget: optional `CallBudget` consulted before every attempt.
        plan_warning: "log" (strip the free-plan `warning` element, log and count it) or
            "raise" (raise `EodhdPlanWarning`).
        on_call: optional callback receiving a `CallEvent` per attempt.
    """

    def __init__(
        self,
        api_token: str | None = None,
        base_url: str | None = None,
        *,
        timeout: tuple[float, float] = (5.0, 30.0),
        max_retries: int = 4,
        backoff_base_s: float = 1.0,
        backoff_cap_s: float = 60.0,
        max_retry_after_s: float = 120.0,
        sleep: Callable[[float], None] | None = None,
        rng: random.Random | None = None,
        budget: CallBudget | None = None,
        plan_warning: str = "log",
        on_call: Callable[[CallEvent], None] | None = None,
        session: requests.Session | None = None,
        intraday_max_days: Mapping[str, int] | None = None,
    ) -> None:
        token = api_token if api_token is not None else os.environ.get("EODHD_API_TOKEN", "")
        if not token or not token.strip():
            raise EodhdConfigError(
                "no EODHD API token: pass api_token= or set the EODHD_API_TOKEN environment "
                "variable"
            )
        if plan_warning not in ("log", "raise"):
            raise EodhdConfigError(f"plan_warning must be 'log' or 'raise', got {plan_warning!r}")
        if max_retries < 0:
            raise EodhdConfigError(f"max_retries must be >= 0, got {max_retries}")
        self.__token = token.strip()
        self.base_url = (base_url or os.environ.get("EODHD_BASE_URL") or DEFAULT_BASE_URL).rstrip(
            "/"
        )
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base_s = backoff_base_s
        self.backoff_cap_s = backoff_cap_s
        self.max_retry_after_s = max_retry_after_s
        self._sleep = sleep or time.sleep
        self._rng = rng or random.Random()
        self.budget = budget
        self.plan_warning = plan_warning
        self.on_call = on_call
        self.session = session or requests.Session()
        self.intraday_max_days = dict(intraday_max_days or INTRADAY_MAX_DAYS)
        self.stats = CallStats()
        self.last_rate_limit_remaining: int | None = None
        _install_urllib3_filter()

    def __repr__(self) -> str:
        return f"EodhdClient(base_url={self.base_url!r}, token=***)"

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> EodhdClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport ------------------------------------------------------------------------

    def _emit(self, ev: CallEvent) -> None:
        self.stats.record(ev)
        log.info(
            "eodhd.call endpoint=%s status=%s cost=%d latency_ms=%.1f attempt=%d",
            ev.endpoint,
            ev.status,
            ev.cost,
            ev.latency_ms,
            ev.attempt,
            extra={
                "event": "eodhd.call",
                "endpoint": ev.endpoint,
                "status": ev.status,
                "cost": ev.cost,
                "latency_ms": round(ev.latency_ms, 1),
                "attempt": ev.attempt,
            },
        )
        if self.on_call is not None:
            self.on_call(ev)

    def _backoff(self, attempt: int) -> float:
        return self._rng.uniform(0.0, min(self.backoff_cap_s, self.backoff_base_s * 2**attempt))

    def _redacted_url(self, path: str, params: Mapping[str, Any]) -> str:
        req = requests.Request("GET", f"{self.base_url}/{path}", params=dict(params)).prepare()
        return redact(req.url or "", self.__token)

    def get_json(
        self,
        path: str,
        params: Mapping[str, Any] | None = None,
        *,
        priority: Priority | str = Priority.NORMAL,
        tickers: int = 1,
    ) -> Any:
        """GET `{base_url}/{path}` with `api_token` and `fmt=json`; return parsed JSON.

        Lower-level entry for endpoints without a helper; `path` is relative to the base URL
        (e.g. `eod/EURUSD.FOREX`)."""
        endpoint = endpoint_of(path)
        query = {k: v for k, v in (params or {}).items() if v is not None}
        query["fmt"] = "json"
        url = self._redacted_url(path, query)
        full = {**query, "api_token": self.__token}
        attempt = 0
        while True:
            grant: Grant | None = None
            if self.budget is not None:
                try:
                    grant = self.budget.acquire(endpoint, priority, tickers=tickers)
                except BudgetExceeded:
                    self._emit(CallEvent(endpoint, "budget_refused", 0, 0.0, attempt))
                    raise
            cost = grant.cost if grant else request_cost(endpoint, tickers)
            t0 = time.perf_counter()
            try:
                resp = self.session.get(
                    f"{self.base_url}/{path}", params=full, timeout=self.timeout
                )
            except (requests.Timeout, requests.ConnectionError) as exc:
                kind = "timeout" if isinstance(exc, requests.Timeout) else "connection_error"
                self._emit(
                    CallEvent(endpoint, kind, cost, (time.perf_counter() - t0) * 1e3, attempt)
                )
                if attempt >= self.max_retries:
                    raise EodhdTimeoutError(
                        f"EODHD {endpoint}: {kind} on all {attempt + 1} attempts "
                        f"({type(exc).__name__}) for {url}",
                        endpoint=endpoint,
                        url=url,
                    ) from None  # the original text contains the token
                self._sleep(self._backoff(attempt))
                attempt += 1
                continue
            except requests.RequestException as exc:
                self._emit(
                    CallEvent(endpoint, "error", 0, (time.perf_counter() - t0) * 1e3, attempt)
                )
                if grant is not None and self.budget is not None:
                    self.budget.refund(grant)
                raise EodhdError(
                    f"EODHD {endpoint}: request failed ({type(exc).__name__}: "
                    f"{redact(str(exc), self.__token)}) for {url}",
                    endpoint=endpoint,
                    url=url,
                ) from None
            latency = (time.perf_counter() - t0) * 1e3
            status = resp.status_code
            if status in _UNCHARGED_STATUSES:
                cost = 0
                if grant is not None and self.budget is not None:
                    self.budget.refund(grant)
            self._emit(CallEvent(endpoint, str(status), cost, latency, attempt))
            remaining = resp.headers.get("X-Ratelimit-Remaining")
            if remaining is not None and remaining.strip().isdigit():
                self.last_rate_limit_remaining = int(remaining)
            if status == 200:
                return self._parse(resp, endpoint, url)
            body = redact(resp.text, self.__token)
            if status in _RETRY_STATUSES:
                retry_after = _retry_after_seconds(resp.headers.get("Retry-After"))
                too_long = retry_after is not None and retry_after > self.max_retry_after_s
                if attempt >= self.max_retries or too_long:
                    raise self._final_retry_error(endpoint, url, status, body, retry_after, attempt)
                self._sleep(retry_after if retry_after is not None else self._backoff(attempt))
                attempt += 1
                continue
            raise self._status_error(endpoint, url, status, body, resp)

    def _final_retry_error(
        self,
        endpoint: str,
        url: str,
        status: int,
        body: str,
        retry_after: float | None,
        attempt: int,
    ) -> EodhdError:
        if status == 429:
            return EodhdRateLimitError(
                f"EODHD {endpoint}: HTTP 429 rate limited after {attempt + 1} attempts"
                + (f" (Retry-After {retry_after:.0f}s)" if retry_after is not None else "")
                + f" for {url}",
                retry_after_s=retry_after,
                endpoint=endpoint,
                url=url,
                status=status,
                body=body,
            )
        return EodhdServerError(
            f"EODHD {endpoint}: HTTP {status} after {attempt + 1} attempts for {url}: "
            f"{_short(body)!r}",
            endpoint=endpoint,
            url=url,
            status=status,
            body=body,
        )

    def _status_error(
        self, endpoint: str, url: str, status: int, body: str, resp: requests.Response
    ) -> EodhdError:
        kw: dict[str, Any] = {"endpoint": endpoint, "url": url, "status": status, "body": body}
        text = _short(body)
        if status == 401:
            return EodhdAuthError(
                f"EODHD {endpoint}: HTTP 401 {text!r} — the API token is missing or invalid, or "
                f"a demo token was used on a non-demo ticker ({url})",
                **kw,
            )
        if status == 403:
            return EodhdPlanError(
                f"EODHD {endpoint}: HTTP 403 {text!r} — the subscription plan does not include "
                f"this endpoint or ticker ({url})",
                **kw,
            )
        if status == 402:
            return EodhdQuotaError(
                f"EODHD {endpoint}: HTTP 402 — the daily API call quota is exhausted; it resets "
                f"at 00:00 UTC ({url})",
                **kw,
            )
        if status == 404:
            return EodhdNotFoundError(
                f"EODHD {endpoint}: HTTP 404 — unknown ticker or path ({url}): {text!r}", **kw
            )
        if status == 422:
            errors: Mapping[str, Any] = {}
            if "json" in resp.headers.get("Content-Type", ""):
                try:
                    parsed = resp.json()
                    if isinstance(parsed, dict) and isinstance(parsed.get("errors"), dict):
                        errors = parsed["errors"]
                except ValueError:
                    pass
            detail = "; ".join(
                f"{k}: {', '.join(map(str, v)) if isinstance(v, list) else v}"
                for k, v in errors.items()
            )
            return EodhdValidationError(
                f"EODHD {endpoint}: HTTP 422 invalid parameters — {detail or text!r} ({url})",
                errors=errors,
                **kw,
            )
        return EodhdError(f"EODHD {endpoint}: HTTP {status} {text!r} ({url})", **kw)

    def _parse(self, resp: requests.Response, endpoint: str, url: str) -> Any:
        ctype = resp.headers.get("Content-Type", "")
        try:
            return resp.json()
        except ValueError:
            snippet = _short(redact(resp.text, self.__token), 120)
            raise EodhdResponseError(
                f"EODHD {endpoint}: HTTP 200 but the body is not valid JSON "
                f"(Content-Type {ctype!r}, starts {snippet!r}) for {url}",
                endpoint=endpoint,
                url=url,
                status=200,
                body=snippet,
            ) from None

    # -- shape checks ----------------------------------------------------------------------

    def _expect_list(self, data: Any, endpoint: str, what: str) -> list[dict[str, Any]]:
        if not isinstance(data, list) or not all(isinstance(x, dict) for x in data):
            raise EodhdResponseError(
                f"EODHD {endpoint}: expected a JSON array of {what} objects, got "
                f"{type(data).__name__}",
                endpoint=endpoint,
            )
        return data

    def _strip_warning(self, rows: list[dict[str, Any]], endpoint: str) -> list[dict[str, Any]]:
        """Drop the free-plan `warning` (trailing element or field on a row) and surface it."""
        messages: list[str] = []
        out: list[dict[str, Any]] = []
        for row in rows:
            if FREE_PLAN_WARNING_KEY in row:
                messages.append(str(row[FREE_PLAN_WARNING_KEY]))
                rest = {k: v for k, v in row.items() if k != FREE_PLAN_WARNING_KEY}
                if rest:
                    out.append(rest)
            else:
                out.append(row)
        if messages:
            self.stats.record_warning(endpoint)
            msg = f"EODHD {endpoint}: plan warning: {messages[0]}"
            log.warning(
                msg,
                extra={"event": "eodhd.warning", "endpoint": endpoint, "warning": messages[0]},
            )
            if self.plan_warning == "raise":
                raise EodhdPlanWarning(msg, endpoint=endpoint, status=200, body=messages[0])
        return out

    # -- endpoints --------------------------------------------------------------------------

    def economic_events(
        self,
        start: date | datetime | str,
        end: date | datetime | str,
        *,
        country: str | None = None,
        comparison: str | None = None,
        page_size: int = 1000,
        priority: Priority | str = Priority.NORMAL,
    ) -> list[dict[str, Any]]:
        """Events with `date` in [start, end] (inclusive days), paged with limit/offset.

        EODHD caps `offset` at 1000, so a range with more events than that is split in halves
        by date and fetched again."""
        if not 1 <= page_size <= 1000:
            raise EodhdConfigError(f"page_size must be in 1..1000, got {page_size}")
        s, e = date.fromisoformat(_ymd(start) or ""), date.fromisoformat(_ymd(end) or "")
        if e < s:
            raise EodhdConfigError(f"economic_events: start {s} is after end {e}")
        out: list[dict[str, Any]] = []
        offset = 0
        while True:
            params = {
                "from": s.isoformat(),
                "to": e.isoformat(),
                "country": country,
                "comparison": comparison,
                "limit": page_size,
                "offset": offset,
            }
            page = self._expect_list(
                self.get_json("economic-events", params, priority=priority),
                "economic-events",
                "event",
            )
            out.extend(page)
            if len(page) < page_size:
                return out
            if offset + page_size > 1000:  # EODHD caps offset at 1000: split the dates
                if s == e:
                    log.warning(
                        "EODHD economic-events: more than %d events on %s; the rest is cut",
                        offset + page_size,
                        s,
                        extra={"event": "eodhd.truncated", "endpoint": "economic-events"},
                    )
                    return out
                mid = s + timedelta(days=(e - s).days // 2)
                kw: dict[str, Any] = {
                    "country": country,
                    "comparison": comparison,
                    "page_size": page_size,
                    "priority": priority,
                }
                return self.economic_events(s, mid, **kw) + self.economic_events(
                    mid + timedelta(days=1), e, **kw
                )
            offset += page_size

    def news(
        self,
        *,
        symbol: str | Sequence[str] | None = None,
        tag: str | None = None,
        start: date | datetime | str | None = None,
        end: date | datetime | str | None = None,
        limit: int = 50,
        offset: int = 0,
        priority: Priority | str = Priority.NORMAL,
    ) -> list[dict[str, Any]]:
        """News items, newest first. One of `symbol` (ticker or list) or `tag` is required."""
        if not symbol and not tag:
            raise EodhdConfigError("news: pass symbol= (e.g. 'EURUSD.FOREX') or tag=")
        if not 1 <= limit <= 1000:
            raise EodhdConfigError(f"news: limit must be in 1..1000, got {limit}")
        syms = [symbol] if isinstance(symbol, str) else list(symbol or [])
        params = {
            "s": ",".join(syms) if syms else None,
            "t": None if syms else tag,
            "from": _ymd(start),
            "to": _ymd(end),
            "limit": limit,
            "offset": offset,
        }
        data = self.get_json("news", params, priority=priority, tickers=len(syms) or 1)
        return self._expect_list(data, "news", "news")

    def sentiments(
        self,
        symbols: str | Sequence[str],
        start: date | datetime | str | None = None,
        end: date | datetime | str | None = None,
        *,
        priority: Priority | str = Priority.NORMAL,
    ) -> dict[str, list[dict[str, Any]]]:
        """Daily `{date, count, normalized}` rows per upper-case ticker, newest first."""
        syms = [symbols] if isinstance(symbols, str) else list(symbols)
        if not syms:
            raise EodhdConfigError("sentiments: pass at least one ticker")
        params = {"s": ",".join(syms), "from": _ymd(start), "to": _ymd(end)}
        data = self.get_json("sentiments", params, priority=priority, tickers=len(syms))
        if not isinstance(data, dict) or not all(isinstance(v, list) for v in data.values()):
            raise EodhdResponseError(
                "EODHD sentiments: expected an object of ticker → array, got "
                f"{type(data).__name__}",
                endpoint="sentiments",
            )
        return {str(k).upper(): v for k, v in data.items()}

    def eod_bars(
        self,
        symbol: str,
        start: date | datetime | str | None = None,
        end: date | datetime | str | None = None,
        *,
        period: str = "d",
        priority: Priority | str = Priority.NORMAL,
    ) -> list[dict[str, Any]]:
        """Daily (or w/m) bars `{date, open, high, low, close, adjusted_close, volume}`, oldest
        first, with the free-plan `warning` element removed and surfaced."""
        if period not in ("d", "w", "m"):
            raise EodhdConfigError(f"eod_bars: period must be d, w or m, got {period!r}")
        params = {"from": _ymd(start), "to": _ymd(end), "period": period, "order": "a"}
        data = self.get_json(f"eod/{symbol}", params, priority=priority)
        return self._strip_warning(self._expect_list(data, "eod", "bar"), "eod")

    def iter_intraday(
        self,
        symbol: str,
        interval: str,
        start: int | float | datetime | date | str,
        end: int | float | datetime | date | str,
        *,
        priority: Priority | str = Priority.NORMAL,
    ) -> Iterator[list[dict[str, Any]]]:
        """Intraday bars chunk by chunk (oldest first), each request within the interval's
        maximum window; bars repeated at a chunk boundary are yielded once."""
        s, e = _unix(start), _unix(end)
        last_ts: int | None = None
        for ws, we in intraday_windows(s, e, interval, self.intraday_max_days):
            params = {"interval": interval, "from": ws, "to": we}
            data = self.get_json(f"intraday/{symbol}", params, priority=priority)
            rows = self._strip_warning(self._expect_list(data, "intraday", "bar"), "intraday")
            chunk: list[dict[str, Any]] = []
            for row in sorted(rows, key=lambda r: int(r.get("timestamp") or 0)):
                ts = row.get("timestamp")
                if not isinstance(ts, int | float):
                    raise EodhdResponseError(
                        f"EODHD intraday: bar without a numeric timestamp: {row!r}",
                        endpoint="intraday",
                    )
                if last_ts is not None and ts <= last_ts:
                    continue
                last_ts = int(ts)
                chunk.append(row)
            yield chunk

    def intraday_bars(
        self,
        symbol: str,
        interval: str,
        start: int | float | datetime | date | str,
        end: int | float | datetime | date | str,
        *,
        priority: Priority | str = Priority.NORMAL,
    ) -> list[dict[str, Any]]:
        """All intraday bars in [start, end] (unix seconds or datetimes, UTC), oldest first."""
        out: list[dict[str, Any]] = []
        for chunk in self.iter_intraday(symbol, interval, start, end, priority=priority):
            out.extend(chunk)
        return out
