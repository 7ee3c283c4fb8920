"""SQLite persistence: one file, WAL mode.

What is acknowledged to the EA (trades, breaker state, anchors, locks, recent signal ids) is
committed before the reply is sent, so a restart, `kill -9` included, loses none of it: in WAL
mode with synchronous=NORMAL a commit is in the OS before `commit()` returns (only a power cut
can lose the last commits). The decision journal, written on every tick, goes through a
background writer in batches to keep the verdict path fast; it is bounded by row count.
"""

from __future__ import annotations

import collections
import functools
import json
import logging
import sqlite3
import threading
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec

from sidecar.engine.state import AccountState

log = logging.getLogger("sidecar.store")

SCHEMA_VERSION = 1
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

_TRADE_COLUMNS = (
    "login deal order_id position symbol side entry volume price profit commission swap time "
    "comment received_gmt"
).split()


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
    def __init__(self, path: str | Path, journal_retention: int = 200_000) -> None:
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
            self._conn.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
        self._seq_lock = threading.Lock()
        with self._lock:
            self._seq = self._conn.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM account_state"
            ).fetchone()[0]
        self._journal = _JournalWriter(self.path, journal_retention)

    # ------------------------------------------------------------ health

    def ping(self) -> bool:
        try:
            with self._lock:
                self._conn.execute("SELECT 1").fetchone()
            return True
        except sqlite3.Error:
            return False

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
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                cur = self._conn.execute(
                    f"INSERT OR IGNORE INTO trades ({', '.join(_TRADE_COLUMNS)}) "
                    f"VALUES ({', '.join('?' * len(_TRADE_COLUMNS))})",
                    values,
                )
                inserted = cur.rowcount == 1
                if inserted and state_row is not None:
                    self._conn.execute(_UPSERT_STATE, state_row)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return inserted

    def forget_account(self, login: int) -> None:
        """Drop an account's deals, state and events (a new Strategy Tester run starts clean)."""
        with self._lock:
            self._conn.execute("BEGIN")
            for table in ("trades", "account_state", "events"):
                self._conn.execute(f"DELETE FROM {table} WHERE login = ?", (login,))
            self._conn.execute("COMMIT")

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
        with self._lock:
            self._conn.execute("BEGIN")
            self._conn.executemany(
                "INSERT INTO calendar_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (source, event_id) DO UPDATE SET time_gmt = excluded.time_gmt, "
                "currency = excluded.currency, importance = excluded.importance, "
                "name = excluded.name, actual = excluded.actual, forecast = excluded.forecast, "
                "previous = excluded.previous, received_gmt = excluded.received_gmt",
                rows,
            )
            self._conn.execute("COMMIT")
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
            self._conn.execute("BEGIN")
            self._conn.executemany("INSERT OR IGNORE INTO news VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            self._conn.execute("COMMIT")
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
    ) -> None:
        """Queue one verdict for the journal (written in the background, in batches)."""
        self._journal.put((login, symbol, gmt, request_id, action, mode, verdict.decode()))

    def decisions(self, symbol: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        self._journal.flush()
        rows = self._newest("decisions", "symbol", symbol or None, "id DESC", limit)
        return [{**dict(r), "verdict": json.loads(r["verdict"])} for r in rows]

    def close(self) -> None:
        self._journal.close()
        with self._lock:
            self._conn.close()


_INSERT_CHUNK = 100  # rows per INSERT: 700 parameters, under even old SQLite builds' 999 limit


def _insert_decisions(conn: sqlite3.Connection, rows: list[tuple[Any, ...]]) -> None:
    """Journal rows in multi-row INSERTs. executemany steps once per row and every step releases
    and retakes the GIL, so on a busy journal the writer and the verdict thread handed the GIL
    back and forth once per row; one statement per 100 rows does it once."""
    for start in range(0, len(rows), _INSERT_CHUNK):
        chunk = rows[start : start + _INSERT_CHUNK]
        conn.execute(_insert_sql(len(chunk)), [v for row in chunk for v in row])


@functools.lru_cache(maxsize=_INSERT_CHUNK)
def _insert_sql(n: int) -> str:
    return (
        "INSERT INTO decisions (login, symbol, gmt, request_id, action, mode, verdict) VALUES "
        + ",".join(["(?, ?, ?, ?, ?, ?, ?)"] * n)
    )


class _JournalWriter:
    """Batches journal rows (and written-behind states) on its own connection and thread.

    The verdict path only appends to a deque (no lock, no wake-up); the writer drains it every
    `_LINGER_S`, so a stream of ticks costs one commit per interval, not one per tick.
    """

    _LINGER_S = 0.05

    def __init__(self, path: str, retention: int) -> None:
        self._path = path
        self._retention = retention
        self._items: collections.deque[Any] = collections.deque()
        self._wake = threading.Event()
        self._stopping = False
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
        if batch or states:
            try:
                self._write(conn, batch, list(states.values()))
            except sqlite3.Error:
                # The journal is best effort (verdicts were already answered); never let a
                # locked or full disk kill the writer thread.
                log.exception("journal write failed", extra={"event": "store.journal_error"})
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
        for w in waiters:
            w.set()

    def _write(
        self, conn: sqlite3.Connection, batch: list[tuple[Any, ...]], states: list[tuple[Any, ...]]
    ) -> None:
        conn.execute("BEGIN")
        conn.executemany(_UPSERT_STATE, states)
        _insert_decisions(conn, batch)
        if batch:
            # Keep the newest `retention` rows, deleting at most a bounded chunk per commit so
            # the write lock (which a synchronous state save may be waiting for) stays short.
            conn.execute(
                "DELETE FROM decisions WHERE id IN (SELECT id FROM decisions WHERE id <= "
                "(SELECT MAX(id) FROM decisions) - ? ORDER BY id LIMIT ?)",
                (self._retention, _PRUNE_CHUNK),
            )
        conn.execute("COMMIT")
