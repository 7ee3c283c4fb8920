"""Load bar history for the backtester: CSV files and pandas frames become `SeriesData`.

Three file layouts are read (``fmt="auto"`` tells them apart by the header line):

- ``"pull"``: what ``sidecar pull`` writes, header exactly ``time,open,high,low,close,volume``;
  ``time`` is Unix seconds (UTC) or ISO 8601; an empty volume reads as 0; spread is 0.
- ``"mt5"``: MetaTrader 5's exported history (Symbols > Bars > Export), tab-separated with the
  header ``<DATE> <TIME> <OPEN> <HIGH> <LOW> <CLOSE> <TICKVOL> <VOL> <SPREAD>`` (dates
  ``2024.01.02``, times ``00:00:00`` or ``00:00``), or without ``<TIME>`` for daily and longer
  bars. The tick volume is ``<TICKVOL>`` (``<VOL>``, the exchange volume, is ignored).
- ``"generic"``: any CSV with a header naming (case-insensitively, ``<...>`` brackets allowed)
  a time column (``datetime``/``timestamp``/``time``/``date``, or ``date`` and ``time``), ``open``,
  ``high``, ``low``, ``close``, optionally ``tick_volume``/``tickvol``/``volume``/``vol`` and
  ``spread``; other columns are ignored; comma, semicolon or tab separated.

Files are UTF-8 (with or without BOM) or UTF-16 with a BOM (what some MT5 builds write).
Times are seconds since 1970 (Unix time; MT5 counts server time the same way) or dates
``YYYY-MM-DD``/``YYYY.MM.DD``/``YYYY/MM/DD`` with an optional time ``HH:MM[:SS]`` (ISO 8601 ``T``
and a UTC offset such as ``Z`` or ``+02:00`` are accepted).

Time convention. `SeriesData` rows carry the broker's SERVER time, like the bars the EA sends
(`AccountSpec.server_offset_hours`: server time = UTC + that offset). The file's clock is
`file_clock`:

- ``"server"``: the file's times already are server time (MT5 exports): taken as they are;
- ``"utc"``: the file's times are UTC (``sidecar pull`` output): ``server_offset_hours`` is added;
- ``"auto"`` (default): ``"server"`` for MT5 exports, ``"utc"`` for pull and generic files.

Seconds since 1970 and naive date-times are on the file clock. A time written with an explicit
UTC offset (``...Z``, ``...+02:00``) is absolute whatever the file clock: it is converted to UTC,
then ``server_offset_hours`` is added. The offset is one fixed number: brokers that follow DST
(GMT+2 winter, GMT+3 summer) need their MT5 export (server clock) for exact times. Daily, weekly
and monthly bars are labels of a trading day, not instants (pull writes 00:00 UTC of the date,
MT5 00:00 server time): they are never shifted, the date stays.

Validation: any problem raises `DataError` naming the file, the 1-based line and the problem
(``EURUSD_H1.csv:17: time 2024-01-02 10:00 is not after the previous bar (2024-01-02 11:00)``),
times shown as written in the file. The timeframe is the most common gap between bars (MT5's
M1 .. MN1); a `timeframe` given is checked against it. Longer gaps (weekends, holidays, missing
bars) are fine; a shorter gap is an error.
"""

from __future__ import annotations

import csv
import gc
import io
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from sidecar.backtest.model import SeriesData

FileClock = Literal["auto", "utc", "server"]
Format = Literal["auto", "pull", "mt5", "generic"]

PULL_HEADER = "time,open,high,low,close,volume"

# MetaTrader 5's timeframes and their length in seconds (MN1 nominally 30 days: months are
# recognised as gaps of 28 to 31 days).
TIMEFRAME_SECONDS: dict[str, int] = {
    "M1": 60,
    "M2": 120,
    "M3": 180,
    "M4": 240,
    "M5": 300,
    "M6": 360,
    "M10": 600,
    "M12": 720,
    "M15": 900,
    "M20": 1200,
    "M30": 1800,
    "H1": 3600,
    "H2": 7200,
    "H3": 10800,
    "H4": 14400,
    "H6": 21600,
    "H8": 28800,
    "H12": 43200,
    "D1": 86400,
    "W1": 604800,
    "MN1": 2592000,
}
_DAY = 86400
_MONTH_MIN, _MONTH_MAX = 28 * _DAY, 31 * _DAY
_BIG = 1e15  # the protocol's ceiling for every number

_TIME_NAMES = ("datetime", "date_time", "timestamp", "time", "date")
_VOLUME_NAMES = ("tickvol", "tick_volume", "tickvolume", "tick_vol", "volume", "vol")
_DATE_FORMATS = ("%Y-%m-%d", "%Y.%m.%d", "%Y/%m/%d")
_TIME_FORMATS = ("", " %H:%M:%S", " %H:%M", "T%H:%M:%S", "T%H:%M")
_AWARE = re.compile(r".*Z$|.?[+-]\d\d:?\d\d$")  # on the last 6 characters of an ISO time
_NUMERIC = re.compile(r"[+-]?\d+(?:\.\d*)?")
_NUMBER_KEYS = ("open", "high", "low", "close", "volume", "spread")
_TIME_KEYS = ("time", "date")
_NA_TOKENS = frozenset(("", "na", "n/a", "nan", "null", "none", "<na>", "-nan", "#n/a"))
_TIME_HELP = "Unix seconds or YYYY-MM-DD[ HH:MM[:SS]] (also YYYY.MM.DD, ISO 8601)"


class DataError(ValueError):
    """A history file or frame that cannot be used: the message names where and why."""


@dataclass
class _Columns:
    """Parsed columns, one entry per bar in file order."""

    t_wall: np.ndarray  # int64: the file's time (UTC where `aware`), as if it were UTC
    aware: np.ndarray  # bool: the time carried a UTC offset (t_wall is UTC then)
    prices: dict[str, np.ndarray]  # open/high/low/close, float64
    volume: np.ndarray
    spread: np.ndarray


# ---------------------------------------------------------------- public API


def load_series(
    path: str | Path,
    *,
    symbol: str,
    timeframe: str | None = None,
    server_offset_hours: float = 0.0,
    file_clock: FileClock = "auto",
    fmt: Format = "auto",
) -> SeriesData:
    """Read a history CSV into `SeriesData` (server-time protocol rows, oldest first).

    `server_offset_hours`: the broker's server time minus UTC (`AccountSpec.server_offset_hours`),
    added to the file's times when the file clock is UTC (see the module docstring).
    `file_clock`: ``"server"``, ``"utc"`` or ``"auto"`` (MT5 exports: server; others: UTC).
    `timeframe`: checked against the one inferred from the bar times (None: inferred only).
    `fmt`: ``"auto"``, ``"pull"``, ``"mt5"`` or ``"generic"`` (the latter reads every layout).
    Raises `DataError` (a ValueError) naming the file, the line and the problem.
    """
    _check_options(timeframe, file_clock, fmt)
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise DataError(f"{name}: cannot read: {exc.strerror or exc}") from None
    text = _decode(raw, name)
    lines = text.splitlines()
    header_at = next((i for i, line in enumerate(lines) if line.strip()), None)
    if header_at is None:
        raise DataError(f"{name}:1: empty file (expected a header line and bars)")
    header = lines[header_at].strip()
    kind = _detect_format(header)
    if fmt != "auto" and fmt != "generic" and kind != fmt:
        expected = PULL_HEADER if fmt == "pull" else "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t..."
        raise DataError(
            f"{name}:{header_at + 1}: header: expected the {fmt} header {expected!r}, "
            f"got {header!r}"
        )
    if file_clock == "auto":
        file_clock = "server" if kind == "mt5" else "utc"
    sep = "\t" if "\t" in header else ";" if ";" in header else ","
    names = [_norm(x) for x in header.split(sep)]
    where_header = f"{name}:{header_at + 1}"
    layout = _layout(names, header, where_header)

    # Data lines: blank ones are skipped, every other one has the header's column count.
    ncols = len(names)
    data_lines = lines[header_at + 1 :]
    if not any(line.strip() for line in data_lines):
        raise DataError(f"{name}:{header_at + 1}: no bars after the header")
    body = "\n".join(data_lines)
    counts = _separators_per_line(body, sep)
    odd = np.flatnonzero(counts != ncols - 1)
    blank = [int(k) for k in odd if not data_lines[k].strip()]
    if len(blank) != len(odd):
        k = next(int(k) for k in odd if data_lines[k].strip())
        raise DataError(
            f"{name}:{header_at + 2 + k}: expected {ncols} columns like the header "
            f"({', '.join(h.strip() for h in header.split(sep))}), got {counts[k] + 1}"
        )
    keep = np.ones(len(data_lines), dtype=bool)
    keep[blank] = False
    line_no = np.flatnonzero(keep) + header_at + 2
    if blank:
        data_lines = [line for line, k in zip(data_lines, keep, strict=True) if k]
        body = "\n".join(data_lines)
    frame = _read_body(body, sep, layout, data_lines[0].split(sep))
    if len(frame) != len(line_no):  # cannot happen with QUOTE_NONE; never guess silently
        raise DataError(f"{name}: read {len(frame)} rows from {len(line_no)} lines")

    def raw(i: int, col: int) -> str:
        return data_lines[i].split(sep)[col].strip()

    def where(i: int) -> str:
        return f"{name}:{line_no[i]}"

    cols = _parse_text_columns(frame, layout, where, raw)
    return _build(
        cols,
        where=where,
        unit="line",
        symbol=symbol,
        timeframe=timeframe,
        utc_clock=file_clock == "utc",
        offset_s=_offset_seconds(server_offset_hours),
        source=name,
    )


def load_backtesting_frame(
    df: pd.DataFrame,
    symbol: str,
    timeframe: str | None = None,
    *,
    server_offset_hours: float = 0.0,
    file_clock: Literal["utc", "server"] = "server",
    source: str = "",
) -> SeriesData:
    """A pandas OHLC frame (backtesting.py's layout: a DatetimeIndex, columns Open, High, Low,
    Close and optionally Volume and Spread, names case-insensitive) as `SeriesData`.

    A naive index is on the `file_clock` (default: server time, taken as it is); a tz-aware
    index is absolute (converted to UTC, then `server_offset_hours` added). Validated like
    `load_series`; errors name the row position and its index label.
    """
    _check_options(timeframe, file_clock, "auto")
    source = source or f"{symbol} DataFrame"
    index = df.index
    if not isinstance(index, pd.DatetimeIndex):
        raise DataError(f"{source}: expected a DatetimeIndex, got {type(index).__name__}")
    aware = index.tz is not None
    if aware:
        index = index.tz_convert("UTC").tz_localize(None)
    if index.hasnans:
        i = int(np.flatnonzero(index.isna())[0])
        raise DataError(f"{source}: row {i}: time: expected a date-time, got NaT")
    t_wall = index.as_unit("s").asi8.astype(np.int64)
    by_name = {str(c).strip().lower(): c for c in df.columns}

    def column(key: str, aliases: tuple[str, ...], required: bool) -> np.ndarray | None:
        for alias in aliases:
            if alias in by_name:
                values = pd.to_numeric(df[by_name[alias]], errors="coerce")
                return np.asarray(values, dtype=np.float64)
        if required:
            raise DataError(
                f"{source}: no {key!r} column (expected Open, High, Low, Close[, Volume]"
                f"[, Spread]), got {list(df.columns)}"
            )
        return None

    prices = {k: column(k, (k,), True) for k in ("open", "high", "low", "close")}
    volume = column("volume", _VOLUME_NAMES, False)
    spread = column("spread", ("spread",), False)
    n = len(df)
    labels = df.index

    def where(i: int) -> str:
        return f"{source}: row {i} ({labels[i]})"

    cols = _Columns(
        t_wall=t_wall,
        aware=np.full(n, aware),
        prices=prices,  # type: ignore[arg-type]
        volume=np.zeros(n) if volume is None else volume,
        spread=np.zeros(n) if spread is None else spread,
    )
    if n == 0:
        raise DataError(f"{source}: no bars (empty frame)")
    return _build(
        cols,
        where=where,
        unit="row",
        symbol=symbol,
        timeframe=timeframe,
        utc_clock=file_clock == "utc",
        offset_s=_offset_seconds(server_offset_hours),
        source=source,
    )


def infer_timeframe(times: np.ndarray | list[float]) -> str | None:
    """The MT5 timeframe of the most common gap between consecutive bar times (None when there
    is no gap or the most common one is no timeframe)."""
    found = _infer(np.asarray(times, dtype=np.int64))
    return found[0] if found else None


# ---------------------------------------------------------------- reading text


def _check_options(timeframe: str | None, file_clock: str, fmt: str) -> None:
    if timeframe is not None and timeframe not in TIMEFRAME_SECONDS:
        raise DataError(
            f"timeframe: expected one of {', '.join(TIMEFRAME_SECONDS)}, got {timeframe!r}"
        )
    if file_clock not in ("auto", "utc", "server"):
        raise DataError(f"file_clock: expected 'auto', 'utc' or 'server', got {file_clock!r}")
    if fmt not in ("auto", "pull", "mt5", "generic"):
        raise DataError(f"fmt: expected 'auto', 'pull', 'mt5' or 'generic', got {fmt!r}")


def _offset_seconds(hours: float) -> int:
    if not np.isfinite(hours) or abs(hours) > 14:
        raise DataError(f"server_offset_hours: expected -14 .. 14, got {hours}")
    return round(hours * 3600)


def _decode(raw: bytes, name: str) -> str:
    try:
        if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
            return raw.decode("utf-16")
        if len(raw) >= 4 and raw[1] == 0 and raw[3] == 0 and raw[0] != 0:
            return raw.decode("utf-16-le")  # UTF-16 LE without its BOM
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{name}:{line}: not UTF-8 or UTF-16 text ({exc.reason})") from None


def _norm(name: str) -> str:
    return re.sub(r"[\s-]+", "_", name.strip().strip('"').strip().strip("<>").strip().lower())


def _detect_format(header: str) -> str:
    if header == PULL_HEADER:
        return "pull"
    if header.startswith("<"):
        return "mt5"
    return "generic"


def _layout(names: list[str], header: str, where: str) -> dict[str, int]:
    """Which column holds what: keys time (or date + time), open .. close, volume, spread."""
    seen: dict[str, int] = {}
    for i, n in enumerate(names):
        if n in seen:
            raise DataError(f"{where}: header: column {n!r} appears twice in {header!r}")
        seen[n] = i
    layout: dict[str, int] = {}
    if "date" in seen and "time" in seen:
        layout["date"], layout["time"] = seen["date"], seen["time"]
    else:
        for alias in _TIME_NAMES:
            if alias in seen:
                layout["time"] = seen[alias]
                break
    expected = "date/time/datetime/timestamp, open, high, low, close[, volume][, spread]"
    if "time" not in layout:
        raise DataError(f"{where}: header: no time column (expected {expected}), got {header!r}")
    for key in ("open", "high", "low", "close"):
        if key not in seen:
            raise DataError(
                f"{where}: header: no {key!r} column (expected {expected}), got {header!r}"
            )
        layout[key] = seen[key]
    for alias in _VOLUME_NAMES:
        if alias in seen:
            layout["volume"] = seen[alias]
            break
    if "spread" in seen:
        layout["spread"] = seen["spread"]
    return layout


def _separators_per_line(body: str, sep: str) -> np.ndarray:
    """How many `sep` each of the newline-joined lines of `body` holds (vectorised)."""
    data = np.frombuffer(body.encode("utf-8"), dtype=np.uint8)
    ends = np.append(np.flatnonzero(data == 10), data.size)
    before = np.searchsorted(np.flatnonzero(data == ord(sep)), ends)
    return np.diff(before, prepend=0)


def _read_body(body: str, sep: str, layout: dict[str, int], first: list[str]) -> pd.DataFrame:
    """The data lines as a frame: numbers parsed by pandas' C reader when they all are numbers
    (the fast path), otherwise every used column as text (read again, to find the bad line)."""
    usecols = sorted(set(layout.values()))
    options = {"sep": sep, "header": None, "quoting": csv.QUOTE_NONE, "engine": "c"}
    if '"' not in body:
        dtypes: dict[int, type] = {
            layout[k]: np.float64 for k in _NUMBER_KEYS if k in layout and k not in _TIME_KEYS
        }
        time_col = layout["time"]
        if "date" not in layout and _NUMERIC.fullmatch(first[time_col].strip()):
            dtypes[time_col] = np.float64
        for key in _TIME_KEYS:
            if key in layout and layout[key] not in dtypes:
                dtypes[layout[key]] = str
        try:
            return pd.read_csv(io.StringIO(body), usecols=usecols, dtype=dtypes, **options)
        except (ValueError, TypeError):
            pass
    return pd.read_csv(io.StringIO(body), usecols=usecols, dtype=str, na_filter=False, **options)


def _strings(frame: pd.DataFrame, col: int) -> pd.Series:
    s = frame[col].fillna("")  # the fast path reads an empty field as missing
    if s.str.contains('"', regex=False).any():
        return s.str.strip().str.strip('"').str.strip()
    return s


def _number_problem(text: str, what: str) -> str:
    try:
        float(text)
    except ValueError:
        return f"{what}: expected a number, got {text!r}"
    return f"{what}: expected a finite number, got {text!r}"


def _parse_text_columns(
    frame: pd.DataFrame,
    layout: dict[str, int],
    where: Callable[[int], str],
    raw: Callable[[int, int], str],
) -> _Columns:
    """Numbers and times; the earliest line with an unreadable field is reported."""
    n = len(frame)
    numbers: dict[str, np.ndarray] = {}
    first_bad: tuple[int, str] | None = None
    for key in _NUMBER_KEYS:
        if key not in layout:
            numbers[key] = np.zeros(n)
            continue
        col = frame[layout[key]]
        if col.dtype == np.float64:  # read by the fast path: NaN only from NA tokens
            values = col.to_numpy(dtype=np.float64, copy=True)
            if key in ("volume", "spread"):
                values[np.isnan(values)] = 0.0
        else:
            text = _strings(frame, layout[key])
            values = pd.to_numeric(text, errors="coerce").to_numpy(
                np.float64, na_value=np.nan, copy=True
            )
            if key in ("volume", "spread"):  # pull writes EODHD's null volume as empty
                na = text.str.strip().str.lower().isin(_NA_TOKENS).to_numpy(bool)
                values[na] = 0.0
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size and (first_bad is None or bad[0] < first_bad[0]):
            first_bad = (int(bad[0]), _number_problem(raw(int(bad[0]), layout[key]), key))
        numbers[key] = values
    t_wall, aware, time_bad = _parse_times(frame, layout)
    if time_bad is not None and (first_bad is None or time_bad[0] <= first_bad[0]):
        first_bad = time_bad
    if first_bad is not None:
        i, problem = first_bad
        raise DataError(f"{where(i)}: {problem}")
    return _Columns(
        t_wall=t_wall,
        aware=aware,
        prices={k: numbers[k] for k in ("open", "high", "low", "close")},
        volume=numbers["volume"],
        spread=numbers["spread"],
    )


def _parse_times(
    frame: pd.DataFrame, layout: dict[str, int]
) -> tuple[np.ndarray, np.ndarray, tuple[int, str] | None]:
    """(times as if UTC, which carried a UTC offset, the first unreadable (row, problem)).

    Text times are parsed once per distinct value (an MT5 export of M1 bars repeats each date
    1440 times and each time of day on every day)."""
    column = frame[layout["time"]]
    if column.dtype == np.float64:  # seconds since 1970 read by the fast path
        values = column.to_numpy(np.float64)
        ok = np.isfinite(values) & (values == np.floor(values))
        t = np.where(ok, values, 0).astype(np.int64)
        bad = np.flatnonzero(~ok)
        problem = None
        if bad.size:
            problem = (int(bad[0]), f"time: expected whole Unix seconds, got {values[bad[0]]}")
        return t, np.zeros(len(t), dtype=bool), problem
    codes, uniques = _factorize(column)
    if "date" not in layout:
        seconds, aware, bad = _parse_stamps(uniques)
        problem = None if bad is None else (_first_row(codes, bad[0]), bad[1])
        return seconds[codes], aware[codes], problem
    day_codes, days = _factorize(frame[layout["date"]])
    day_seconds, day_aware, day_bad = _parse_stamps(days)
    clock_seconds, clock_bad = _parse_clocks(uniques)
    problems = []
    if day_bad is not None:
        problems.append((_first_row(day_codes, day_bad[0]), day_bad[1].replace("time", "date")))
    if clock_bad is not None:
        problems.append((_first_row(codes, clock_bad[0]), clock_bad[1]))
    t = day_seconds[day_codes] + clock_seconds[codes]
    return t, day_aware[day_codes], min(problems) if problems else None


def _factorize(column: pd.Series) -> tuple[np.ndarray, pd.Series]:
    codes, uniques = pd.factorize(column.fillna(""))
    return codes, pd.Series(uniques, dtype=str)


def _clean(text: pd.Series) -> pd.Series:
    return text.str.strip().str.strip('"').str.strip()


def _first_row(codes: np.ndarray, unique: int) -> int:
    return int(np.argmax(codes == unique))


def _parse_clocks(text: pd.Series) -> tuple[np.ndarray, tuple[int, str] | None]:
    """Times of day HH:MM[:SS] as seconds; (index, problem) of the first bad one."""
    text = _clean(text)
    parts = text.str.extract(r"^(\d{1,2}):(\d\d)(?::(\d\d))?$")
    h = pd.to_numeric(parts[0]).to_numpy(np.float64, na_value=np.nan)
    m = pd.to_numeric(parts[1]).to_numpy(np.float64, na_value=np.nan)
    sec = pd.to_numeric(parts[2]).to_numpy(np.float64, na_value=np.nan)
    sec = np.where(np.isnan(sec), 0, sec)
    ok = (h < 24) & (m < 60) & (sec < 60)  # NaN compares false
    seconds = np.where(ok, h * 3600 + m * 60 + sec, 0).astype(np.int64)
    bad = np.flatnonzero(~ok)
    if bad.size:
        return seconds, (int(bad[0]), f"time: expected HH:MM[:SS], got {text.iloc[bad[0]]!r}")
    return seconds, None


def _parse_stamps(text: pd.Series) -> tuple[np.ndarray, np.ndarray, tuple[int, str] | None]:
    """Unix seconds or date-times as seconds (as if UTC), whether each carried a UTC offset,
    and (index, problem) of the first one that is neither."""
    n = len(text)
    t = np.zeros(n, dtype=np.int64)
    aware = np.zeros(n, dtype=bool)
    done = np.zeros(n, dtype=bool)
    # One vectorised pass per kind of time found (normally exactly one): the kind of the first
    # value not yet read is tried on all the values not yet read.
    cleaned = False
    while not done.all():
        rest = np.flatnonzero(~done)
        first = text.iloc[rest[0]]
        if not cleaned and first != first.strip().strip('"'):  # blanks or quotes: once for all
            text, cleaned = _clean(text), True
            continue
        subset = text.iloc[rest]
        if _NUMERIC.fullmatch(first):  # seconds since 1970 on the file's clock
            values = pd.to_numeric(subset, errors="coerce").to_numpy(np.float64, na_value=np.nan)
            ok = np.isfinite(values) & (values == np.floor(values))
            if not ok[0]:
                return t, aware, (int(rest[0]), f"time: expected whole Unix seconds, got {first!r}")
            good = rest[ok]
            t[good] = values[ok].astype(np.int64)
            done[good] = True
            continue
        fmt = _guess_format(first)
        if fmt is None:
            return t, aware, (int(rest[0]), f"time: expected {_TIME_HELP}, got {first!r}")
        if fmt == "ISO8601":
            parsed = pd.to_datetime(subset, format="ISO8601", utc=True, errors="coerce")
            parsed = parsed.dt.tz_convert(None)
        else:
            parsed = pd.to_datetime(subset, format=fmt, errors="coerce")
        ok = parsed.notna().to_numpy(bool)
        if not ok[0]:
            return t, aware, (int(rest[0]), f"time: expected {_TIME_HELP}, got {first!r}")
        good = rest[ok]
        t[good] = pd.DatetimeIndex(parsed[ok]).as_unit("s").asi8
        if fmt == "ISO8601":
            aware[good] = subset[ok].str.slice(-6).str.match(_AWARE).to_numpy(bool)
        done[good] = True
    return t, aware, None


def _guess_format(text: str) -> str | None:
    for d in _DATE_FORMATS:
        for tf in _TIME_FORMATS:
            try:
                datetime.strptime(text, d + tf)
            except ValueError:
                continue
            return d + tf
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return None
    return "ISO8601"


# ---------------------------------------------------------------- validation


def _show(t: int) -> str:
    stamp = datetime.fromtimestamp(int(t), UTC)
    return stamp.strftime("%Y-%m-%d %H:%M:%S" if stamp.second else "%Y-%m-%d %H:%M")


def _gap(seconds: int) -> str:
    seconds = int(seconds)
    days, rest = divmod(seconds, _DAY)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days} day{'s' if days != 1 else ''}"] if days else []
    if hours:
        parts.append(f"{hours} h")
    if minutes:
        parts.append(f"{minutes} min")
    if secs or not parts:
        parts.append(f"{secs} s")
    return " ".join(parts)


def _timeframe_of_gap(gap: int) -> str | None:
    if _MONTH_MIN <= gap <= _MONTH_MAX:
        return "MN1"
    for name, seconds in TIMEFRAME_SECONDS.items():
        if seconds == gap and name != "MN1":
            return name
    return None


def _infer(times: np.ndarray) -> tuple[str | None, int, int, int] | None:
    """(timeframe or None, most common gap, its count, number of gaps); None without gaps."""
    gaps = np.diff(times)
    gaps = gaps[gaps > 0]
    if gaps.size == 0:
        return None
    values, counts = np.unique(gaps, return_counts=True)
    # Months are 28..31 days long: count them as one gap before picking the most common.
    month = (values >= _MONTH_MIN) & (values <= _MONTH_MAX)
    month_count = int(counts[month].sum())
    k = int(np.argmax(counts))
    if month_count > counts[k]:
        return "MN1", int(values[month][np.argmax(counts[month])]), month_count, int(gaps.size)
    gap = int(values[k])
    return _timeframe_of_gap(gap), gap, int(counts[k]), int(gaps.size)


def _build(
    cols: _Columns,
    *,
    where: Callable[[int], str],
    unit: str,
    symbol: str,
    timeframe: str | None,
    utc_clock: bool,
    offset_s: int,
    source: str,
) -> SeriesData:
    o, h, lo, c = (cols.prices[k] for k in ("open", "high", "low", "close"))
    vol, spread, wall = cols.volume, cols.spread, cols.t_wall
    n = len(wall)
    shift = np.where(cols.aware | utc_clock, offset_s, 0).astype(np.int64)
    t = wall + shift

    # Per-bar checks; the earliest bad bar is reported (ties: the order of this list).
    checks: list[tuple[np.ndarray, Callable[[int], str]]] = []
    for key, values in (("open", o), ("high", h), ("low", lo), ("close", c)):
        checks.append(
            (~np.isfinite(values), lambda i, k=key, v=values: f"{k}: expected a number, got {v[i]}")
        )
        checks.append((values <= 0, lambda i, k=key, v=values: f"{k}: expected > 0, got {v[i]}"))
        checks.append(
            (values >= _BIG, lambda i, k=key, v=values: f"{k}: expected < 1e15, got {v[i]}")
        )
    for key, values in (("volume", vol), ("spread", spread)):
        checks.append(
            (
                ~np.isfinite(values) | (values < 0) | (values >= _BIG),
                lambda i, k=key, v=values: f"{k}: expected a number >= 0, got {v[i]}",
            )
        )
    top = np.maximum(o, c)
    bottom = np.minimum(o, c)
    checks += [
        (h < lo, lambda i: f"high {h[i]} is below low {lo[i]}"),
        (h < top, lambda i: f"high {h[i]} is below max(open, close) {top[i]}"),
        (lo > bottom, lambda i: f"low {lo[i]} is above min(open, close) {bottom[i]}"),
        (t < 0, lambda i: f"time {_show(wall[i])} is before 1970 in server time"),
    ]
    not_after = np.zeros(n, dtype=bool)
    not_after[1:] = t[1:] <= t[:-1]
    checks.append(
        (
            not_after,
            lambda i: f"time {_show(wall[i])} is not after the previous bar ({_show(wall[i - 1])})",
        )
    )
    _raise_first(checks, where, unit)

    # Timeframe: inferred from the most common gap, checked against the one given.
    inferred = _infer(t)
    if inferred is None:
        if timeframe is None:
            raise DataError(
                f"{source}: cannot infer the timeframe from a single bar; pass the timeframe"
            )
        tf = timeframe
    else:
        found, gap, count, total = inferred
        seen = f"the most common gap between bars is {_gap(gap)} ({count} of {total} gaps)"
        if found is None:
            raise DataError(
                f"{source}: cannot infer the timeframe: {seen}, which is no MT5 timeframe "
                f"({', '.join(TIMEFRAME_SECONDS)})"
            )
        if timeframe is not None and timeframe != found:
            raise DataError(
                f"{source}: timeframe {timeframe} was given but the bars are {found}: {seen}"
            )
        tf = found
    tf_s = TIMEFRAME_SECONDS[tf]
    if tf_s >= _DAY:  # daily and longer bars are dates: never shifted
        t = wall.copy()
        if n > 1 and (np.diff(t) <= 0).any():
            i = int(np.flatnonzero(np.diff(t) <= 0)[0]) + 1
            raise DataError(
                f"{where(i)}: time {_show(wall[i])} is not after the previous bar "
                f"({_show(wall[i - 1])})"
            )
    shortest = _MONTH_MIN if tf == "MN1" else tf_s
    short = np.zeros(n, dtype=bool)
    short[1:] = np.diff(t) < shortest
    if short.any():
        i = int(np.flatnonzero(short)[0])
        more = int(short.sum()) - 1
        raise DataError(
            f"{where(i)}: time {_show(wall[i])} is only {_gap(int(t[i] - t[i - 1]))} after the "
            f"previous bar ({_show(wall[i - 1])}); {tf} bars are {_gap(tf_s)} apart"
            + _more(more, unit)
        )
    table = np.column_stack([t.astype(np.float64), o, h, lo, c, vol, spread])
    collecting = gc.isenabled()
    gc.disable()  # a million small lists would trigger pointless collections (3x slower)
    try:
        rows = table.tolist()
    finally:
        if collecting:
            gc.enable()
    return SeriesData(symbol=symbol, timeframe=tf, rows=rows, source=source)


def _more(count: int, unit: str) -> str:
    return f" (and {count} more bad {unit}{'s' if count != 1 else ''})" if count else ""


def _raise_first(
    checks: list[tuple[np.ndarray, Callable[[int], str]]], where: Callable[[int], str], unit: str
) -> None:
    best: tuple[int, Callable[[int], str]] | None = None
    any_bad: np.ndarray | None = None
    for mask, message in checks:
        hits = np.flatnonzero(mask)
        if not hits.size:
            continue
        any_bad = mask.copy() if any_bad is None else any_bad | mask
        if best is None or hits[0] < best[0]:
            best = (int(hits[0]), message)
    if best is None or any_bad is None:
        return
    i, message = best
    raise DataError(f"{where(i)}: {message(i)}" + _more(int(any_bad.sum()) - 1, unit))
