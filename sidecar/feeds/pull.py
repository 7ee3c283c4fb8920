"""Bulk pulls from EODHD: bar history into CSV files, and the economic calendar normalised.

Bars: `pull_bars` writes one CSV per symbol and interval, `{out_dir}/{SYMBOL}_{interval}.csv`
with the header `time,open,high,low,close,volume` (`time` = bar open, unix seconds UTC; daily
bars are stamped 00:00 UTC of their date; a null volume is written empty).

Resumability — append-only with a verified last line: each chunk of bars (one API request) is
appended, flushed and fsync'ed before the next request. On start, an existing file is checked:
a partial last line (a crash mid-write) is cut off, the header must match, and the pull resumes
after the last complete bar, so a re-run after an interruption continues without duplicates.
A start earlier than the file's first bar is not back-filled (use another out_dir for that).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TextIO

from sidecar.feeds.budget import Priority
from sidecar.feeds.calendar_rules import (
    DEFAULT_RULES,
    ImpactRules,
    classify_importance,
    currency_for_country,
)
from sidecar.feeds.eodhd import EodhdClient

log = logging.getLogger("sidecar.feeds.pull")

CSV_HEADER = "time,open,high,low,close,volume"
INTERVAL_SECONDS: dict[str, int] = {"1m": 60, "5m": 300, "1h": 3600, "d": 86400}
TimeLike = int | float | datetime | date | str


@dataclass(frozen=True)
class PullResult:
    symbol: str
    interval: str
    path: Path
    bars_written: int  # by this run
    resumed_after: int | None  # last bar time found in the file before this run, if any
    last_time: int | None  # last bar time in the file after this run


def _to_unix(value: TimeLike, *, end_of_day: bool) -> int:
    """Unix seconds UTC. A bare date (or `YYYY-MM-DD`) means its whole day when it is an end."""
    if isinstance(value, bool):
        raise TypeError("bool is not a time")
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        value = date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
    if isinstance(value, datetime):
        return int((value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp())
    midnight = int(datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp())
    return midnight + 86_399 if end_of_day else midnight


def csv_path(out_dir: Path | str, symbol: str, interval: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", symbol)
    return Path(out_dir) / f"{safe}_{interval}.csv"


def _prepare_file(path: Path) -> int | None:
    """Create the file with its header, or repair and inspect an existing one.

    Returns the time of the last complete bar, or None when there is none yet."""
    if not path.exists() or path.stat().st_size == 0:
        with open(path, "w", encoding="ascii", newline="\n") as f:
            f.write(CSV_HEADER + "\n")
        return None
    with open(path, "r+b") as f:
        data = f.read()
        if not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            log.warning(
                "pull: cutting a partial last line off %s", path, extra={"event": "pull.repair"}
            )
            f.seek(cut)
            f.truncate()
            data = data[:cut]
    lines = data.decode("ascii").splitlines()
    if not lines or lines[0] != CSV_HEADER:
        raise ValueError(
            f"{path}: not a bar file of ours (expected header {CSV_HEADER!r}, "
            f"got {lines[0] if lines else ''!r}); refusing to append"
        )
    if len(lines) == 1:
        return None
    try:
        return int(lines[-1].split(",", 1)[0])
    except ValueError:
        raise ValueError(f"{path}: last line {lines[-1]!r} has no integer time") from None


def _fmt(v: Any) -> str:
    if v is None or v == "NA":
        return ""
    return str(v)


def _rows_to_csv(rows: Iterable[tuple[int, Any, Any, Any, Any, Any]]) -> str:
    return "".join(",".join([str(r[0]), *map(_fmt, r[1:])]) + "\n" for r in rows)


class _Progress:
    def __init__(self, stream: TextIO | None, label: str, start: int, end: int) -> None:
        self.stream, self.label, self.start, self.end = stream, label, start, end
        self.bars = 0
        self.last: int | None = None

    def update(self, last_time: int | None, added: int, finished: bool = False) -> None:
        self.bars += added
        if last_time is not None:
            self.last = last_time
        if self.stream is None:
            return
        span = max(self.end - self.start, 1)
        t = self.last
        done = 100.0 if finished or t is None else min(100.0, 100.0 * (t - self.start) / span)
        at = datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M") if t else "-"
        self.stream.write(f"\r{self.label}: {max(done, 0.0):5.1f}% up to {at} +{self.bars} bars")
        self.stream.flush()

    def close(self) -> None:
        if self.stream is not None:
            self.stream.write("\n")
            self.stream.flush()


def _append(f: TextIO, text: str) -> None:
    f.write(text)
    f.flush()
    os.fsync(f.fileno())  # a chunk is on disk before the next request


def pull_bars(
    client: EodhdClient,
    symbols: Sequence[str],
    interval: str,
    start: TimeLike,
    end: TimeLike,
    out_dir: Path | str,
    progress: bool | TextIO = True,
    *,
    priority: Priority | str = Priority.LOW,
) -> dict[str, PullResult]:
    """Pull bars of `symbols` (EODHD tickers, e.g. `EURUSD.FOREX`, `AAPL.US`) for
    `interval` in {"1m", "5m", "1h", "d"} between `start` and `end` (unix seconds, datetimes
    — naive = UTC — or dates; an end date includes its whole day) into `out_dir`.

    `progress=True` writes a progress line to stderr; pass a stream to write elsewhere.
    Raises the client's errors (after its retries); re-running resumes (module docstring)."""
    if interval not in INTERVAL_SECONDS:
        raise ValueError(f"interval must be one of {sorted(INTERVAL_SECONDS)}, got {interval!r}")
    s, e = _to_unix(start, end_of_day=False), _to_unix(end, end_of_day=True)
    if e < s:
        raise ValueError(f"start {start!r} is after end {end!r}")
    if isinstance(symbols, str):
        raise TypeError("symbols must be a list of tickers, not one string")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stream: TextIO | None = sys.stderr if progress is True else (progress or None)  # type: ignore[assignment]
    results: dict[str, PullResult] = {}
    for symbol in symbols:
        path = csv_path(out, symbol, interval)
        last = resumed_after = _prepare_file(path)
        first = s if last is None else max(s, last + INTERVAL_SECONDS[interval])
        bar = _Progress(stream, f"{symbol} {interval}", s, e)
        written = 0
        try:
            with open(path, "a", encoding="ascii", newline="\n") as f:
                if first <= e:
                    for rows in _bar_chunks(client, symbol, interval, first, e, priority):
                        rows = [r for r in rows if last is None or r[0] > last]
                        if rows:
                            _append(f, _rows_to_csv(rows))
                            last = rows[-1][0]
                            written += len(rows)
                        bar.update(last, len(rows))
            bar.update(None, 0, finished=True)
        finally:
            bar.close()  # end the progress line even when the pull is interrupted
        results[symbol] = PullResult(symbol, interval, path, written, resumed_after, last)
    return results


def _bar_chunks(
    client: EodhdClient,
    symbol: str,
    interval: str,
    start: int,
    end: int,
    priority: Priority | str,
) -> Iterable[list[tuple[int, Any, Any, Any, Any, Any]]]:
    if interval == "d":
        d0 = datetime.fromtimestamp(start, UTC).date()
        d1 = datetime.fromtimestamp(end, UTC).date()
        rows = []
        for b in client.eod_bars(symbol, d0, d1, priority=priority):
            t = _to_unix(str(b["date"])[:10], end_of_day=False)
            if start <= t <= end:
                rows.append(
                    (t, b.get("open"), b.get("high"), b.get("low"), b.get("close"), b.get("volume"))
                )
        rows.sort(key=lambda r: r[0])
        yield rows
        return
    for chunk in client.iter_intraday(symbol, interval, start, end, priority=priority):
        yield [
            (
                int(b["timestamp"]),
                b.get("open"),
                b.get("high"),
                b.get("low"),
                b.get("close"),
                b.get("volume"),
            )
            for b in chunk
            if start <= int(b["timestamp"]) <= end
        ]


# --- calendar --------------------------------------------------------------------------------


def _number(v: Any) -> float | None:
    """EODHD numbers may be null, "" (OpenAPI artefact), "NA" or stringified decimals."""
    if v is None or isinstance(v, bool):
        return None
    if isinstance(v, int | float):
        return float(v)
    try:
        return float(str(v).strip())
    except ValueError:
        return None


def normalize_event(raw: Mapping[str, Any], rules: ImpactRules = DEFAULT_RULES) -> dict[str, Any]:
    """One EODHD economic event → the sidecar's calendar event (see `pull_calendar`)."""
    when = datetime.strptime(str(raw["date"]), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
    country = str(raw.get("country") or "").upper()
    name = str(raw.get("type") or "").strip()
    comparison = raw.get("comparison") or None
    key = f"{country}|{name}|{comparison}|{raw['date']}"
    return {
        "id": "eodhd:" + hashlib.sha1(key.encode()).hexdigest()[:16],
        "source": "eodhd",
        "time": int(when.timestamp()),
        "country": country,
        "currency": currency_for_country(country),
        "name": name,
        "comparison": comparison,
        "period": raw.get("period") or None,
        "actual": _number(raw.get("actual")),
        "estimate": _number(raw.get("estimate")),
        "previous": _number(raw.get("previous")),
        "importance": classify_importance(name, country, rules),
    }


def pull_calendar(
    client: EodhdClient,
    start: date | datetime | str,
    end: date | datetime | str,
    *,
    countries: Sequence[str] | None = None,
    rules: ImpactRules = DEFAULT_RULES,
    priority: Priority | str = Priority.NORMAL,
) -> list[dict[str, Any]]:
    """Economic events dated in [start, end] (whole UTC days), normalised and sorted by time:
    `{id, source, time (unix UTC), country, currency, name, comparison, period, actual,
    estimate, previous, importance}`. Rows with an unparsable date are skipped and logged."""
    raws: list[dict[str, Any]] = []
    for country in countries or [None]:  # type: ignore[list-item]
        raws.extend(client.economic_events(start, end, country=country, priority=priority))
    events: dict[str, dict[str, Any]] = {}
    for raw in raws:
        try:
            ev = normalize_event(raw, rules)
        except (KeyError, ValueError, TypeError):
            log.warning(
                "pull_calendar: skipping an event without a valid date: %r",
                {k: raw.get(k) for k in ("type", "country", "date")},
                extra={"event": "pull.bad_event"},
            )
            continue
        events[ev["id"]] = ev
    return sorted(events.values(), key=lambda ev: (ev["time"], ev["country"], ev["name"]))
