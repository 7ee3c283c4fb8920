"""SQLite persistence: one file, WAL mode.

What is acknowledged to the EA (trades, breaker state, anchors, locks, recent signal ids) is
committed before the reply is sent, so a restart, `kill -9` included, loses none of it: in WAL
mode with synchronous=NORMAL a commit is in the OS before `commit()` returns (only a power cut
can lose the last commits). The decision journal, written on every tick, goes through a
background writer in batches to keep the verdict path fast. The writer keeps what explains the
decisions, not every tick: each non-hold verdict is a row, each change of mode or leverage regime
is a row, and holds (plain, refusals of a signal, locks) are collapsed into runs, one row per run
of ticks whose reason codes stay the same (first and last time, count, the first and the last
verdict). It is bounded by age (`journal.retention_days`) and by row count (`retention_rows`),
pruned in the writer thread.

A write that fails (a full disk, a read-only file, an I/O error) raises sqlite3.Error with
nothing of it committed and the connection still usable: the service then acknowledges nothing
it could not write and tries again (`probe_write`). The journal writer logs the first failure of
a fault and its end, and keeps a written-behind state for its next batch.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import msgspec

from sidecar.engine import reasons as R
from sidecar.engine.state import AccountState

log = logging.getLogger("sidecar.store")

SCHEMA_VERSION = 2  # 2: the decision journal keeps runs (kind, last_gmt, count, codes, ...)
# Deals read per position when the Kelly journal loads: an entry, a partial close or two, the rest.
DEALS_PER_POSITION = 5

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trades (
    login INTEGER NOT NULL, deal INTEGER NOT NULL, order_id INTEGER NOT NULL,
    position INTEGER NOT NULL, symbol TEXT NOT NULL, side TEXT NOT NULL, entry TEXT NOT NULL,
    volume REAL NOT NULL, price REAL NOT NULL, profit REAL NOT NULL, commission REAL NOT NULL,
    swap REAL NOT NULL, time INTEGER NOT NULL, comment TEXT NOT NULL, received_gmt INTEGER NOT NULL,
    PRIMARY KEY (login, deal)
);
CREATE INDEX IF NOT EXISTS trades_by_time ON trades (login, time);
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT, login INTEGER NOT NULL, symbol TEXT NOT NULL,
    gmt INTEGER NOT NULL, request_id TEXT, action TEXT NOT NULL, mode TEXT NOT NULL,
    verdict TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_by_symbol ON decisions (symbol, id);
CREATE INDEX IF NOT EXISTS trades_by_symbol ON trades (symbol, time);
CREATE INDEX IF NOT EXISTS trades_by_recency ON trades (time, login, deal);
CREATE TABLE IF NOT EXISTS account_state (
    login INTEGER PRIMARY KEY, state TEXT NOT NULL, updated_gmt INTEGER NOT NULL,
    seq INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY AUTOINCREMENT, login INTEGER NOT NULL, gmt INTEGER NOT NULL,
    event TEXT NOT NULL, detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS calendar_events (
    source TEXT NOT NULL, event_id TEXT NOT NULL, time_gmt INTEGER NOT NULL,
    currency TEXT NOT NULL, importance TEXT NOT NULL, name TEXT NOT NULL,
    actual REAL, forecast REAL, previous REAL, received_gmt INTEGER NOT NULL,
    PRIMARY KEY (source, event_id)
);
CREATE INDEX IF NOT EXISTS calendar_by_time ON calendar_events (time_gmt);
CREATE TABLE IF NOT EXISTS news (
    link TEXT PRIMARY KEY, time_gmt INTEGER NOT NULL, title TEXT NOT NULL,
    symbols TEXT NOT NULL, score REAL, score_source TEXT NOT NULL, received_gmt INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS news_by_time ON news (time_gmt);
"""

_UPSERT_STATE = (
    "INSERT INTO account_state (login, state, updated_gmt, seq) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (login) DO UPDATE SET state = excluded.state, updated_gmt = excluded.updated_gmt, "
    "seq = excluded.seq WHERE excluded.seq > account_state.seq"
)

_PRUNE_CHUNK = 5000  # journal rows deleted per commit at most

# Columns the decision journal gained in schema 2 (added in place to a schema-1 file).
_DECISION_COLUMNS_V2 = (
    ("kind", "TEXT NOT NULL DEFAULT 'verdict'"),  # verdict|hold|refusal|lock|mode|regime
    ("last_gmt", "INTEGER"),  # the run's last tick (= gmt for a single row)
    ("count", "INTEGER NOT NULL DEFAULT 1"),  # ticks in the run
    ("codes", "TEXT NOT NULL DEFAULT ''"),  # " CODE1 CODE2 " (the reasons' first words)
    ("last_request_id", "TEXT"),
    ("last_verdict", "TEXT"),  # the run's last verdict (NULL for a single row)
    ("regime", "TEXT"),  # the leverage regime named by LEVERAGE_CAP, if any
    ("detail", "TEXT"),  # JSON: {"from": ..., "to": ...} of a mode or regime change
)
_DECISION_INDEXES = """
CREATE INDEX IF NOT EXISTS decisions_by_login ON decisions (login, id);
CREATE INDEX IF NOT EXISTS decisions_by_last_gmt ON decisions (last_gmt);
"""
DECISION_KINDS = ("verdict", "hold", "refusal", "lock", "mode", "regime")

_TRADE_COLUMNS = (
    "login deal order_id position symbol side entry volume price profit commission swap time "
    "comment received_gmt"
).split()


@contextlib.contextmanager
def _transaction(conn: sqlite3.Connection, begin: str = "BEGIN") -> Iterator[None]:
    """BEGIN ... COMMIT, rolled back on any error. SQLite ends a transaction by itself on some
    errors (a full disk, an I/O error), so ROLLBACK only runs when one is still open: a failed
    write must neither leave the connection inside a transaction (every later BEGIN would fail
    long after the fault cleared) nor hide its own error behind ROLLBACK's."""
    conn.execute(begin)
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _connect(path: str) -> sqlite3.Connection:
    uri = path.startswith("file:")
    conn = sqlite3.connect(
        path, timeout=10.0, check_same_thread=False, isolation_level=None, uri=uri
    )
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("PRAGMA busy_timeout=10000")
    conn.row_factory = sqlite3.Row
    return conn


class Store:
    def __init__(
        self, path: str | Path, journal_retention: int = 200_000, retention_days: float = 30.0
    ) -> None:
        self.path = str(path)
        if self.path == ":memory:":
            # One private in-memory database that the journal writer's connection shares (a
            # plain ":memory:" would give each connection its own, empty database).
            self.path = f"file:sidecar-{uuid.uuid4().hex}?mode=memory&cache=shared"
        else:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._conn = _connect(self.path)
        self._lock = threading.Lock()  # one connection shared by the transports
        with self._lock:
            self._conn.executescript(_SCHEMA)
            have = {r[1] for r in self._conn.execute("PRAGMA table_info(decisions)")}
            for name, decl in _DECISION_COLUMNS_V2:
                if name not in have:  # a schema-1 file: its rows read as single verdicts
                    self._conn.execute(f"ALTER TABLE decisions ADD COLUMN {name} {decl}")
            self._conn.execute("UPDATE decisions SET last_gmt = gmt WHERE last_gmt IS NULL")
            self._conn.executescript(_DECISION_INDEXES)
            self._conn.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(SCHEMA_VERSION),),
            )
        self._seq_lock = threading.Lock()
        with self._lock:
            self._seq = self._conn.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM account_state"
            ).fetchone()[0]
        self._journal = _JournalWriter(self.path, journal_retention, retention_days)
        # The operator API reads through its own connection: a long scan (a filter no index
        # serves) must not hold the lock the verdict path writes through. WAL lets readers run
        # beside the writer; an in-memory database shares one connection (shared-cache tables
        # would lock instead).
        if self.path.startswith("file:"):
            self._reader, self._read_lock = self._conn, self._lock
        else:
            self._reader, self._read_lock = _connect(self.path), threading.Lock()

    def configure_journal(self, retention_rows: int, retention_days: float) -> None:
        """Set the journal's bounds (applied by the writer from its next batch on)."""
        self._journal.retention = retention_rows
        self._journal.retention_days = retention_days

    # ------------------------------------------------------------ health

    def ping(self) -> bool:
        try:
            with self._lock:
                self._conn.execute("SELECT 1").fetchone()
            return True
        except sqlite3.Error:
            return False

    def probe_write(self) -> None:
        """One tiny committed write (a `meta` row): raises sqlite3.Error while the file cannot
        be written (read-only, disk full, I/O error). The service calls it to see a write
        fault clear."""
        with self._lock:
            self._conn.execute(
                "INSERT INTO meta (key, value) VALUES ('write_probe', ?) "
                "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (str(int(time.time())),),
            )

    @property
    def journal_fault(self) -> str | None:
        """Why the journal writer's last batch failed (None when it was written)."""
        return self._journal.fault

    def journal_backlog(self) -> int:
        """Journal entries (and written-behind states) queued and not yet written (metrics)."""
        return len(self._journal._items)

    # ------------------------------------------------------------ trades

    def insert_trade(self, row: dict[str, Any]) -> bool:
        """Record one deal; False when that deal ticket was already recorded (idempotent)."""
        return self.record_trade(row, None)

    def record_trade(self, row: dict[str, Any], state: AccountState | None) -> bool:
        """Record one deal and the account state that folds it in, in one transaction: a crash
        between the two would leave a deal that a resend answers as a duplicate but whose loss
        never reached the streak. False (and nothing written) when the deal was already known."""
        values = tuple(row[c] for c in _TRADE_COLUMNS)
        state_row = self._state_row(state) if state is not None else None
        with self._lock, _transaction(self._conn, "BEGIN IMMEDIATE"):
            cur = self._conn.execute(
                f"INSERT OR IGNORE INTO trades ({', '.join(_TRADE_COLUMNS)}) "
                f"VALUES ({', '.join('?' * len(_TRADE_COLUMNS))})",
                values,
            )
            inserted = cur.rowcount == 1
            if inserted and state_row is not None:
                self._conn.execute(_UPSERT_STATE, state_row)
        return inserted

    def forget_account(self, login: int) -> None:
        """Drop an account's deals, state and events (a new Strategy Tester run starts clean)."""
        with self._lock, _transaction(self._conn):
            for table in ("trades", "account_state", "events"):
                self._conn.execute(f"DELETE FROM {table} WHERE login = ?", (login,))

    def trades(self, login: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
        rows = self._newest("trades", "login", login, "time DESC, deal DESC", limit)
        return [dict(r) for r in rows]

    def _newest(
        self, table: str, key: str, value: Any, order: str, limit: int
    ) -> list[sqlite3.Row]:
        """The newest `limit` rows of `table`, optionally where `key = value` (names are ours)."""
        where, args = ("", []) if value is None else (f" WHERE {key} = ?", [value])
        sql = f"SELECT * FROM {table}{where} ORDER BY {order} LIMIT ?"
        with self._lock:
            return self._conn.execute(sql, [*args, limit]).fetchall()

    def position_deals(self, login: int, closed: int, opened: int) -> list[dict[str, Any]]:
        """Every deal of the `closed` positions closed most recently, and the entry deals of the
        `opened` newest positions not closed yet (the Kelly journal: a position's result
        includes its entry's commission), oldest first. A deal without a position id is its own
        position (the key of `engine.account.position_key`). Only the newest
        DEALS_PER_POSITION x (closed + opened) deals are read: the trade table is never pruned,
        and this runs when a login is first seen, possibly on its first tick."""
        window = DEALS_PER_POSITION * (closed + opened)
        with self._lock:
            rows = self._conn.execute(
                "WITH keyed AS (SELECT *, CASE WHEN position = 0 THEN -deal ELSE position END AS k "
                "FROM (SELECT * FROM trades WHERE login = ? "
                "ORDER BY time DESC, deal DESC LIMIT ?)), "
                "closed AS (SELECT k FROM keyed WHERE entry != 'in' "
                "GROUP BY k ORDER BY MAX(time) DESC, MAX(deal) DESC LIMIT ?), "
                "opened AS (SELECT k FROM keyed WHERE entry = 'in' "
                "AND k NOT IN (SELECT k FROM keyed WHERE entry != 'in') "
                "ORDER BY time DESC, deal DESC LIMIT ?) "
                "SELECT * FROM keyed WHERE k IN closed OR k IN opened ORDER BY time, deal",
                (login, window, closed, opened),
            ).fetchall()
        deals = [dict(r) for r in rows]
        for d in deals:
            del d["k"]  # the query's own key, not a column
        return deals

    # ------------------------------------------------------------ account state

    def save_state(self, state: AccountState) -> None:
        """Persist now (locks, modes, day anchors, streaks, signal ids: before the reply)."""
        row = self._state_row(state)
        with self._lock:
            self._conn.execute(_UPSERT_STATE, row)

    def save_state_soon(self, state: AccountState) -> None:
        """Persist within ~50 ms from the writer thread (a rising high-water mark on every tick
        would otherwise cost a commit per tick). A newer synchronous save always wins: every
        save carries a sequence number and the upsert keeps the highest."""
        self._journal.put(("state", self._state_row(state)))

    def _state_row(self, state: AccountState) -> tuple[Any, ...]:
        with self._seq_lock:
            self._seq += 1
            seq = self._seq
        payload = json.dumps(state.to_dict(), separators=(",", ":"))
        return (state.login, payload, state.last_gmt, seq)

    def load_states(self) -> dict[int, AccountState]:
        with self._lock:
            rows = self._conn.execute("SELECT login, state FROM account_state").fetchall()
        out = {}
        fields = {f.name for f in msgspec.structs.fields(AccountState)}
        for row in rows:
            data = {k: v for k, v in json.loads(row["state"]).items() if k in fields}
            data["recent_signals"] = tuple(tuple(x) for x in data.get("recent_signals", ()))
            data["reduced_tickets"] = tuple(data.get("reduced_tickets", ()))
            data["position_results"] = tuple(tuple(x) for x in data.get("position_results", ()))
            data["streak_positions"] = tuple(data.get("streak_positions", ()))
            out[row["login"]] = AccountState(**data)
        return out

    # ------------------------------------------------------------ audit events

    def record_event(self, login: int, gmt: int, event: str, detail: dict[str, Any]) -> None:
        with self._lock:
            self._conn.execute(
                "INSERT INTO events (login, gmt, event, detail) VALUES (?, ?, ?, ?)",
                (login, gmt, event, json.dumps(detail, default=str)),
            )

    def events(self, login: int | None = None, limit: int = 100) -> list[dict[str, Any]]:
        rows = self._newest("events", "login", login, "id DESC", limit)
        return [{**dict(r), "detail": json.loads(r["detail"])} for r in rows]

    # ------------------------------------------------------------ calendar

    def upsert_calendar(
        self, source: str, events: Iterable[dict[str, Any]], received_gmt: int
    ) -> int:
        rows = [
            (
                source,
                e["id"],
                e["time_gmt"],
                e["currency"],
                e["importance"],
                e["name"],
                e.get("actual"),
                e.get("forecast"),
                e.get("previous"),
                received_gmt,
            )
            for e in events
        ]
        with self._lock, _transaction(self._conn):
            self._conn.executemany(
                "INSERT INTO calendar_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (source, event_id) DO UPDATE SET time_gmt = excluded.time_gmt, "
                "currency = excluded.currency, importance = excluded.importance, "
                "name = excluded.name, actual = excluded.actual, forecast = excluded.forecast, "
                "previous = excluded.previous, received_gmt = excluded.received_gmt",
                rows,
            )
        return len(rows)

    def calendar_events(self, start_gmt: int, end_gmt: int) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM calendar_events WHERE time_gmt BETWEEN ? AND ? ORDER BY time_gmt",
                (start_gmt, end_gmt),
            ).fetchall()
        return [dict(r) for r in rows]

    def calendar_sources(self) -> list[str]:
        """Sources that ever stored calendar events (e.g. `mt5`, `eodhd`)."""
        with self._lock:
            return [r[0] for r in self._conn.execute("SELECT DISTINCT source FROM calendar_events")]

    # ------------------------------------------------------------ news

    def insert_news(self, items: Iterable[dict[str, Any]], received_gmt: int) -> int:
        """Store articles keyed by `link` ({link, time_gmt, title, symbols, score,
        score_source}); an article already stored is left as it is. Returns how many were new."""
        rows = [
            (
                i["link"],
                i["time_gmt"],
                i.get("title") or "",
                json.dumps(list(i.get("symbols") or [])),
                i.get("score"),
                i.get("score_source") or "",
                received_gmt,
            )
            for i in items
        ]
        with self._lock:
            before = self._conn.total_changes
            with _transaction(self._conn):
                self._conn.executemany(
                    "INSERT OR IGNORE INTO news VALUES (?, ?, ?, ?, ?, ?, ?)", rows
                )
            return self._conn.total_changes - before

    def news(self, since_gmt: int, limit: int = 10_000) -> list[dict[str, Any]]:
        """Articles with time >= since_gmt, newest first."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT * FROM news WHERE time_gmt >= ? ORDER BY time_gmt DESC LIMIT ?",
                (since_gmt, limit),
            ).fetchall()
        return [{**dict(r), "symbols": json.loads(r["symbols"])} for r in rows]

    # ------------------------------------------------------------ decision journal

    def journal(
        self,
        login: int,
        symbol: str,
        gmt: int,
        request_id: str | None,
        action: str,
        mode: str,
        verdict: bytes,
        reasons: Sequence[str] | None = None,
    ) -> None:
        """Queue one verdict for the journal (written in the background, in batches). `reasons`
        are the verdict's reasons (read from `verdict` when not given); the writer thread sorts
        the verdict into a row or a run, so this costs one append on the verdict path."""
        self._journal.put((login, symbol, gmt, request_id, action, mode, verdict, reasons))

    def decisions(
        self,
        symbol: str | None = None,
        limit: int = 100,
        *,
        login: int | None = None,
        action: str | None = None,
        kind: str | None = None,
        reason: str | None = None,
        since: int | None = None,
        until: int | None = None,
        before_id: int | None = None,
    ) -> list[dict[str, Any]]:
        """Journal rows, newest first. A run matches a time range it overlaps ([gmt, last_gmt]);
        `reason` is a reason code (the first word of a reason); `before_id` pages on."""
        self._journal.flush()
        where: list[str] = []
        args: list[Any] = []
        for column, value in (("symbol", symbol), ("login", login), ("action", action)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if kind is not None:
            where.append("kind = ?")
            args.append(kind)
        if reason is not None:
            where.append("instr(codes, ?) > 0")
            args.append(f" {reason} ")
        if since is not None:
            where.append("COALESCE(last_gmt, gmt) >= ?")
            args.append(since)
        if until is not None:
            where.append("gmt <= ?")
            args.append(until)
        if before_id is not None:
            where.append("id < ?")
            args.append(before_id)
        sql = "SELECT * FROM decisions"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id DESC LIMIT ?"
        with self._read_lock:
            rows = self._reader.execute(sql, [*args, limit]).fetchall()
        return [_decision_row(r) for r in rows]

    def trades_page(
        self,
        *,
        login: int | None = None,
        symbol: str | None = None,
        side: str | None = None,
        entries: Sequence[str] | None = None,
        since: int | None = None,
        until: int | None = None,
        before: tuple[int, int, int] | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Deals newest first by (time, login, deal); `before` is the key of the last deal of
        the previous page. Times are the deal's (the trade server's clock)."""
        where: list[str] = []
        args: list[Any] = []
        for column, value in (("login", login), ("symbol", symbol), ("side", side)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        if entries:
            where.append(f"entry IN ({', '.join('?' * len(entries))})")
            args.extend(entries)
        if since is not None:
            where.append("time >= ?")
            args.append(since)
        if until is not None:
            where.append("time <= ?")
            args.append(until)
        if before is not None:
            where.append("(time, login, deal) < (?, ?, ?)")
            args.extend(before)
        sql = "SELECT * FROM trades"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY time DESC, login DESC, deal DESC LIMIT ?"
        with self._read_lock:
            return [dict(r) for r in self._reader.execute(sql, [*args, limit]).fetchall()]

    def has_login(self, login: int) -> bool:
        """Whether any deal or account state of `login` is on file."""
        with self._read_lock:
            return (
                self._reader.execute(
                    "SELECT 1 FROM trades WHERE login = ? UNION ALL "
                    "SELECT 1 FROM account_state WHERE login = ? LIMIT 1",
                    (login, login),
                ).fetchone()
                is not None
            )

    def position_results(self, login: int) -> list[dict[str, Any]]:
        """Every closed position of `login`, oldest first: {key, symbol, result, time} where
        result is the sum of its deals' profit + commission + swap (the entry's included, as the
        Kelly journal counts it) and time is its last deal's (server clock)."""
        with self._read_lock:
            rows = self._reader.execute(
                "SELECT CASE WHEN position = 0 THEN -deal ELSE position END AS k, "
                "MAX(symbol) AS symbol, SUM(profit + commission + swap) AS result, "
                "MAX(time) AS time, MAX(deal) AS deal, SUM(entry != 'in') AS closing "
                "FROM trades WHERE login = ? GROUP BY k HAVING closing > 0 ORDER BY time, deal",
                (login,),
            ).fetchall()
        return [
            {"key": r["k"], "symbol": r["symbol"], "result": r["result"], "time": r["time"]}
            for r in rows
        ]

    def pnl_by(self, login: int, day_offset_hours: float, since_day: int) -> dict[str, Any]:
        """Net P/L of `login`'s deals (profit + commission + swap) by symbol (every deal on file)
        and by broker day (days from `since_day` on; day = (time - offset) // 86400)."""
        offset = round(day_offset_hours * 3600)
        with self._read_lock:
            by_symbol = self._reader.execute(
                "SELECT symbol, SUM(profit + commission + swap) AS pnl, COUNT(*) AS deals "
                "FROM trades WHERE login = ? GROUP BY symbol ORDER BY symbol",
                (login,),
            ).fetchall()
            by_day = self._reader.execute(
                "SELECT (time - ?) / 86400 AS day, SUM(profit + commission + swap) AS pnl, "
                "COUNT(*) AS deals FROM trades WHERE login = ? AND time >= ? "
                "GROUP BY day ORDER BY day",
                (offset, login, since_day * 86400 + offset),
            ).fetchall()
        return {
            "by_symbol": [dict(r) for r in by_symbol],
            "by_day": [dict(r) for r in by_day],
        }

    def close(self) -> None:
        self._journal.close()
        if self._reader is not self._conn:
            with self._read_lock:
                self._reader.close()
        with self._lock:
            self._conn.close()


def _decision_row(r: sqlite3.Row) -> dict[str, Any]:
    row = dict(r)
    row["verdict"] = json.loads(row["verdict"])
    last = row.get("last_verdict")
    row["last_verdict"] = json.loads(last) if last else None
    row["codes"] = row.get("codes", "").split()
    detail = row.get("detail")
    row["detail"] = json.loads(detail) if detail else None
    if row.get("last_gmt") is None:
        row["last_gmt"] = row["gmt"]
    return row


# ------------------------------------------------------------ the journal writer

_DECISION_INSERT_COLUMNS = (
    "id login symbol gmt request_id action mode verdict kind last_gmt count codes "
    "last_request_id last_verdict regime detail"
).split()
_INSERT_CHUNK = 50  # rows per INSERT: 800 parameters, under even old SQLite builds' 999 limit
_MAX_TRACKED = 4096  # open runs, modes and regimes remembered by the writer


def _insert_decisions(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Journal rows in multi-row INSERTs. executemany steps once per row and every step releases
    and retakes the GIL, so on a busy journal the writer and the verdict thread handed the GIL
    back and forth once per row; one statement per 50 rows does it once."""
    for start in range(0, len(rows), _INSERT_CHUNK):
        chunk = rows[start : start + _INSERT_CHUNK]
        conn.execute(_insert_sql(len(chunk)), [v for row in chunk for v in row])


@functools.lru_cache(maxsize=_INSERT_CHUNK)
def _insert_sql(n: int) -> str:
    marks = "(" + ", ".join("?" * len(_DECISION_INSERT_COLUMNS)) + ")"
    return f"INSERT INTO decisions ({', '.join(_DECISION_INSERT_COLUMNS)}) VALUES " + ",".join(
        [marks] * n
    )


@functools.lru_cache(maxsize=4096)
def classify(action: str, reasons: tuple[str, ...]) -> tuple[str, str, str, str | None]:
    """(kind, codes, signal, regime) of a verdict: kind is `verdict` for anything but a hold;
    a hold is a `refusal` when a strategy signal was refused (a SIGNAL_<STRATEGY> reason), a
    `lock` when something vetoes entries without a signal (the reasons before the signal's one:
    daily loss, cooldown, halted, an open position...), else a plain `hold`. codes is
    " CODE1 CODE2 " (searchable with instr), signal the refused signal's reason, regime the
    leverage regime of the LEVERAGE_CAP reason. Cached: the same verdicts repeat tick after tick.
    """
    codes = [r.split(" ", 1)[0] for r in reasons]
    regime = None
    for r, c in zip(reasons, codes, strict=True):
        if c == R.LEVERAGE_CAP:
            for part in r.split(" "):
                if part.startswith("regime="):
                    regime = part[7:]
                    break
            break
    joined = " " + " ".join(codes) + " " if codes else ""
    if action != "hold":
        return "verdict", joined, "", regime
    signal = ""
    marker = None
    for i, (r, c) in enumerate(zip(reasons, codes, strict=True)):
        if c.startswith(R.SIGNAL) or c == R.DATA_WARMUP:
            marker = i
            if c.startswith(R.SIGNAL + "_") and c != R.SIGNAL_NONE:
                signal = r
            break
    if signal:
        return "refusal", joined, signal, regime
    # The engine lists the vetoes first, then the signal's reason (or SIGNAL_NONE, DATA_WARMUP).
    vetoes = [c for c in codes[:marker] if c != R.DATA_CLOCK_BACKWARDS] if marker else []
    return ("lock" if vetoes else "hold"), joined, "", regime


class _Run:
    """A run of holds of one (login, symbol) with the same kind, codes, mode and regime."""

    __slots__ = (
        "codes",
        "count",
        "gmt",
        "id",
        "ident",
        "kind",
        "last_gmt",
        "last_raw",
        "last_request_id",
        "login",
        "mode",
        "raw",
        "regime",
        "request_id",
        "symbol",
        "written",
    )

    def __init__(self, run_id: int, ident: tuple[Any, ...], item: tuple[Any, ...]) -> None:
        login, symbol, gmt, request_id, _action, mode, raw, _reasons = item
        self.id = run_id
        self.ident = ident
        self.login, self.symbol, self.gmt, self.request_id = login, symbol, gmt, request_id
        self.mode, self.raw = mode, raw
        self.kind, self.codes, self.regime = ident[0], ident[1], ident[3]
        self.count = 1
        self.last_gmt, self.last_request_id, self.last_raw = gmt, request_id, raw
        self.written = False  # inserted; later ticks of the run are UPDATEs

    def row(self) -> tuple[Any, ...]:
        last = _text(self.last_raw) if self.count > 1 else None
        return (
            self.id,
            self.login,
            self.symbol,
            self.gmt,
            self.request_id,
            "hold",
            self.mode,
            _text(self.raw),
            self.kind,
            self.last_gmt,
            self.count,
            self.codes,
            self.last_request_id,
            last,
            self.regime,
            None,
        )


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


class _JournalWriter:
    """Batches journal rows (and written-behind states) on its own connection and thread.

    The verdict path only appends to a deque (no lock, no wake-up); the writer drains it every
    `_LINGER_S`, so a stream of ticks costs one commit per interval, not one per tick. The
    writer also sorts verdicts into rows and runs (see the module docstring) and prunes the
    journal by age and size, so none of that runs on the verdict path.
    """

    _LINGER_S = 0.05

    def __init__(self, path: str, retention: int, retention_days: float = 30.0) -> None:
        self._path = path
        self.retention = retention
        self.retention_days = retention_days
        self._items: collections.deque[Any] = collections.deque()
        self._wake = threading.Event()
        self._stopping = False
        self._runs: dict[tuple[int, str], _Run] = {}  # the open run per (login, symbol)
        self._modes: dict[int, str] = {}  # the last journaled mode per login
        self._regimes: dict[tuple[int, str], str] = {}  # ... regime per (login, symbol)
        self._next_id = 1
        self._newest_gmt = 0
        self.fault: str | None = None  # why the last write failed; None once one succeeds
        self._lost = 0  # journal entries dropped during the current fault
        self._probe_at = 0.0  # monotonic: when an idle writer next tries a write in a fault
        self._thread = threading.Thread(target=self._run, name="sidecar-journal", daemon=True)
        self._ready = threading.Event()
        self._thread.start()
        self._ready.wait()

    def put(self, row: tuple[Any, ...]) -> None:
        self._items.append(row)

    def flush(self) -> None:
        done = threading.Event()
        self._items.append(done)
        self._wake.set()
        done.wait(timeout=10)

    def close(self) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        conn = _connect(self._path)
        try:
            seq = conn.execute(
                "SELECT MAX(COALESCE((SELECT MAX(id) FROM decisions), 0), "
                "COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'decisions'), 0))"
            ).fetchone()[0]
            self._next_id = int(seq or 0) + 1
        except sqlite3.Error:  # no sqlite_sequence yet on a new file
            self._next_id = (
                int(conn.execute("SELECT COALESCE(MAX(id), 0) FROM decisions").fetchone()[0]) + 1
            )
        self._ready.set()
        while True:
            self._wake.wait(self._LINGER_S)
            self._wake.clear()
            stopping = self._stopping
            self._drain(conn)
            if stopping:
                break
        conn.close()

    def _drain(self, conn: sqlite3.Connection) -> None:
        batch: list[tuple[Any, ...]] = []
        waiters: list[threading.Event] = []
        states: dict[int, tuple[Any, ...]] = {}
        items = self._items
        while items:
            item = items.popleft()
            if isinstance(item, threading.Event):
                waiters.append(item)
            elif item[0] == "state":
                states[item[1][0]] = item[1]  # only the newest state per login matters
            else:
                batch.append(item)
        if not (batch or states) and self.fault is not None and time.monotonic() > self._probe_at:
            # Nothing queued during a fault: a probe write finds out when it is over.
            self._probe_at = time.monotonic() + 1.0
            try:
                conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('journal_probe', ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                    (str(int(time.time())),),
                )
            except sqlite3.Error:
                pass
            else:
                self._recovered()
        if batch or states:
            try:
                self._write(conn, batch, list(states.values()))
            except (sqlite3.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
                # The journal is best effort (verdicts were already answered); never let a
                # locked or full disk kill the writer thread.
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                # What the runs remember may not be on file: start them afresh.
                self._runs.clear()
                self._failed(exc, len(batch))
                # A state written behind (a risen high-water mark) is kept for the next batch;
                # a newer one queued meanwhile replaces it there.
                for row in states.values():
                    items.appendleft(("state", row))
            else:
                self._recovered()
        for w in waiters:
            w.set()

    def _recovered(self) -> None:
        if self.fault is not None:
            log.warning(
                f"journal writes work again ({self._lost} entries lost during: {self.fault})",
                extra={
                    "event": "store.journal_recovered",
                    "lost_entries": self._lost,
                    "error": self.fault,
                },
            )
            self.fault, self._lost = None, 0

    def _failed(self, exc: Exception, entries: int) -> None:
        """One log line per fault (the writer retries every batch: a full disk would otherwise
        log 20 tracebacks a second), then count what the journal loses until it recovers."""
        self._lost += entries
        if self.fault is None:
            self.fault = str(exc) or type(exc).__name__
            if isinstance(exc, sqlite3.Error):
                log.error(
                    f"journal write failed: {self.fault}; decisions are dropped until a write "
                    "succeeds",
                    extra={"event": "store.journal_error", "error": self.fault},
                )
            else:
                log.exception("journal write failed", extra={"event": "store.journal_error"})

    def _write(
        self, conn: sqlite3.Connection, batch: list[tuple[Any, ...]], states: list[tuple[Any, ...]]
    ) -> None:
        inserts, updates = self._sort(conn, batch)
        conn.execute("BEGIN")
        conn.executemany(_UPSERT_STATE, states)
        _insert_decisions(conn, inserts)
        for run in updates:
            cur = conn.execute(
                "UPDATE decisions SET count = ?, last_gmt = ?, last_request_id = ?, "
                "last_verdict = ? WHERE id = ?",
                (run.count, run.last_gmt, run.last_request_id, _text(run.last_raw), run.id),
            )
            if cur.rowcount == 0:  # pruned meanwhile (a tiny retention): the run ends
                self._runs.pop((run.login, run.symbol), None)
        if inserts:
            self._prune(conn)
        conn.execute("COMMIT")
        for run in self._runs.values():
            run.written = True
        self._bound()

    def _sort(
        self, conn: sqlite3.Connection, batch: list[tuple[Any, ...]]
    ) -> tuple[list[tuple[Any, ...]], list[_Run]]:
        """Rows to insert (in journal order) and written runs that grew, from queued verdicts."""
        entries: list[tuple[Any, ...] | _Run] = []  # rows, and new runs (final at batch end)
        grown: dict[int, _Run] = {}
        runs = self._runs
        for item in batch:
            login, symbol, gmt, request_id, action, mode, raw, reasons = item
            if reasons is None:
                reasons = _reasons_of(raw)
            kind, codes, signal, regime = classify(action, tuple(reasons))
            key = (login, symbol)
            if gmt > self._newest_gmt:
                self._newest_gmt = gmt
            changes = []
            before = self._modes.get(login)
            if before is None:
                before = self._last(conn, "mode", login, None)
            if before is not None and before != mode:
                changes.append(("mode", before, mode))
            self._modes[login] = mode
            if regime is not None:
                was = self._regimes.get(key)
                if was is None:
                    was = self._last(conn, "regime", login, symbol)
                if was is not None and was != regime:
                    changes.append(("regime", was, regime))
                self._regimes[key] = regime
            for what, old, new in changes:
                entries.append(self._row(item, what, codes, regime, {"from": old, "to": new}))
            if kind == "verdict":
                runs.pop(key, None)
                entries.append(self._row(item, "verdict", codes, regime, None))
                continue
            ident = (kind, codes, mode, regime, signal)
            run = runs.get(key)
            if run is not None and run.ident == ident and not changes:
                run.count += 1
                run.last_gmt, run.last_request_id, run.last_raw = gmt, request_id, raw
                if run.written:
                    grown[run.id] = run
                continue
            run = runs[key] = _Run(self._take_id(), ident, item)
            entries.append(run)
        rows = [e.row() if isinstance(e, _Run) else e for e in entries]
        return rows, list(grown.values())

    def _row(
        self,
        item: tuple[Any, ...],
        kind: str,
        codes: str,
        regime: str | None,
        detail: dict[str, Any] | None,
    ) -> tuple[Any, ...]:
        login, symbol, gmt, request_id, action, mode, raw, _reasons = item
        return (
            self._take_id(),
            login,
            symbol,
            gmt,
            request_id,
            action,
            mode,
            _text(raw),
            kind,
            gmt,
            1,
            codes,
            None,
            None,
            regime,
            None if detail is None else json.dumps(detail),
        )

    def _take_id(self) -> int:
        n = self._next_id
        self._next_id += 1
        return n

    @staticmethod
    def _last(conn: sqlite3.Connection, column: str, login: int, symbol: str | None) -> Any:
        """The newest journaled mode (of the login) or regime (of its symbol), after a restart."""
        if symbol is None:
            sql = f"SELECT {column} FROM decisions WHERE login = ? ORDER BY id DESC LIMIT 1"
            row = conn.execute(sql, (login,)).fetchone()
        else:
            sql = (
                f"SELECT {column} FROM decisions WHERE symbol = ? AND login = ? "
                f"AND {column} IS NOT NULL ORDER BY id DESC LIMIT 1"
            )
            row = conn.execute(sql, (symbol, login)).fetchone()
        return None if row is None else row[0]

    def _prune(self, conn: sqlite3.Connection) -> None:
        # Keep the newest `retention` rows and the last `retention_days`, deleting at most a
        # bounded chunk per commit so the write lock (which a synchronous state save may be
        # waiting for) stays short. Both are index lookups when there is nothing to delete.
        conn.execute(
            "DELETE FROM decisions WHERE id IN (SELECT id FROM decisions WHERE id <= "
            "(SELECT MAX(id) FROM decisions) - ? ORDER BY id LIMIT ?)",
            (self.retention, _PRUNE_CHUNK),
        )
        # Age against the newest journaled time, never past the wall clock: a Strategy Tester
        # journal (historical times) keeps its last days, an EA clock ahead prunes nothing early.
        horizon = min(time.time(), self._newest_gmt) - self.retention_days * 86400
        conn.execute(
            "DELETE FROM decisions WHERE id IN (SELECT id FROM decisions WHERE last_gmt < ? "
            "LIMIT ?)",
            (int(horizon), _PRUNE_CHUNK),
        )

    def _bound(self) -> None:
        for d in (self._runs, self._modes, self._regimes):
            if len(d) > _MAX_TRACKED:  # a flood of logins: forget the oldest half
                for k in list(d)[: len(d) // 2]:
                    d.pop(k)  # type: ignore[attr-defined]


def _reasons_of(raw: bytes | str) -> list[str]:
    try:
        data = json.loads(raw)
    except ValueError:
        return []
    reasons = data.get("reasons") if isinstance(data, dict) else None
    return [r for r in reasons if isinstance(r, str)] if isinstance(reasons, list) else []
