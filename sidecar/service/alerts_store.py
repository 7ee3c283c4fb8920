"""The alert relay's memory: one SQLite file (`alerts.db`), separate from the sidecar's database.

Three tables:
- `announced`: per (target, fingerprint) the last state the relay decided to announce
  (`firing`/`resolved`, the alert's `startsAt`) and when. A payload whose alerts all match it is
  a replay and sends nothing; a still-firing alert is announced again after `repeat_hours`.
- `outbox`: what is decided but not delivered yet (rate-limited, or its target failing). A row
  leaves only once a robot accepted the message naming it (or, logged and counted, when it is a
  day old). The decision and the outbox row are written in one transaction, so a crash between
  them cannot lose or double an announcement.
- `sends`: when each target was sent a message, for the 20-a-minute window (it holds across a
  restart), and `blocked`: a target DingTalk throttled, until when.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

WINDOW_SECONDS = 60.0
SCHEMA = """
CREATE TABLE IF NOT EXISTS announced (
    target TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    announced_at REAL NOT NULL,
    PRIMARY KEY (target, fingerprint)
);
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    kind TEXT NOT NULL,
    alert TEXT NOT NULL,
    created_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS outbox_target ON outbox (target, id);
CREATE TABLE IF NOT EXISTS sends (target TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS sends_target ON sends (target, at);
CREATE TABLE IF NOT EXISTS blocked (target TEXT PRIMARY KEY, until REAL NOT NULL);
"""


@dataclass(frozen=True)
class Pending:
    """One announcement waiting in the outbox."""

    id: int
    fingerprint: str
    kind: str  # firing | repeat | resolved
    alert: dict[str, Any]
    created_at: float
    attempts: int
    next_at: float


class AlertStore:
    def __init__(self, path: str | Path) -> None:
        path = str(path)
        if path != ":memory:" and not path.startswith("file:"):
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")  # an acknowledged decision survives
            self._db.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------------- decisions

    def decide(
        self, targets: Iterable[str], alerts: list[dict[str, Any]], now: float, repeat_s: float
    ) -> tuple[int, int]:
        """Queue what is new for each target: an alert whose (status, startsAt) differs from the
        last one announced, or one still firing `repeat_s` after it was (0 = never). Gives
        (queued, duplicates), counted per target."""
        queued = duplicates = 0
        with self._lock:
            db = self._db
            db.execute("BEGIN IMMEDIATE")
            try:
                for target in targets:
                    for alert in alerts:
                        fp, status, starts = (
                            alert["fingerprint"],
                            alert["status"],
                            alert["startsAt"],
                        )
                        row = db.execute(
                            "SELECT status, starts_at, announced_at FROM announced "
                            "WHERE target = ? AND fingerprint = ?",
                            (target, fp),
                        ).fetchone()
                        kind = _kind(row, status, starts, now, repeat_s)
                        if kind is None:
                            duplicates += 1
                            continue
                        db.execute(
                            "INSERT OR REPLACE INTO announced VALUES (?, ?, ?, ?, ?)",
                            (target, fp, status, starts, now),
                        )
                        db.execute(
                            "INSERT INTO outbox (target, fingerprint, kind, alert, created_at) "
                            "VALUES (?, ?, ?, ?, ?)",
                            (target, fp, kind, orjson.dumps(alert).decode(), now),
                        )
                        queued += 1
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return queued, duplicates

    def has_pending(self, target: str, fingerprints: Iterable[str]) -> bool:
        fps = list(fingerprints)
        with self._lock:
            for i in range(0, len(fps), 500):
                chunk = fps[i : i + 500]
                marks = ",".join("?" * len(chunk))
                row = self._db.execute(
                    f"SELECT 1 FROM outbox WHERE target = ? AND fingerprint IN ({marks}) LIMIT 1",
                    (target, *chunk),
                ).fetchone()
                if row:
                    return True
        return False

    # ---------------------------------------------------------------------------- outbox

    def pending(self, target: str) -> list[Pending]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, fingerprint, kind, alert, created_at, attempts, next_at FROM outbox "
                "WHERE target = ? ORDER BY id",
                (target,),
            ).fetchall()
        return [Pending(r[0], r[1], r[2], orjson.loads(r[3]), r[4], r[5], r[6]) for r in rows]

    def pending_count(self, target: str) -> int:
        with self._lock:
            return int(
                self._db.execute(
                    "SELECT COUNT(*) FROM outbox WHERE target = ?", (target,)
                ).fetchone()[0]
            )

    def due_targets(self, now: float) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT DISTINCT target FROM outbox WHERE next_at <= ? ORDER BY target", (now,)
            ).fetchall()
        return [r[0] for r in rows]

    def delete(self, ids: Iterable[int]) -> None:
        with self._lock:
            self._db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in ids])

    def defer(self, target: str, next_at: float) -> None:
        """Every pending row of `target` waits until `next_at`; one more attempt counted."""
        with self._lock:
            self._db.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_at = ? WHERE target = ?",
                (next_at, target),
            )

    def expire(self, target: str, before: float) -> list[Pending]:
        """Take out (and give) the rows of `target` created before `before`."""
        old = [p for p in self.pending(target) if p.created_at < before]
        self.delete(p.id for p in old)
        return old

    # ------------------------------------------------------------------------ the window

    def record_send(self, target: str, at: float) -> None:
        with self._lock:
            self._db.execute("INSERT INTO sends VALUES (?, ?)", (target, at))
            self._db.execute(
                "DELETE FROM sends WHERE target = ? AND at <= ?", (target, at - WINDOW_SECONDS)
            )

    def sends_in_window(self, target: str, now: float) -> int:
        with self._lock:
            return int(
                self._db.execute(
                    "SELECT COUNT(*) FROM sends WHERE target = ? AND at > ? AND at <= ?",
                    (target, now - WINDOW_SECONDS, now),
                ).fetchone()[0]
            )

    def block(self, target: str, until: float) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO blocked VALUES (?, ?)", (target, until))

    def blocked_until(self, target: str) -> float:
        with self._lock:
            row = self._db.execute(
                "SELECT until FROM blocked WHERE target = ?", (target,)
            ).fetchone()
        return float(row[0]) if row else 0.0

    def prune(self, before: float) -> None:
        """Forget announcements older than `before` (an alert seen again is then new)."""
        with self._lock:
            self._db.execute("DELETE FROM announced WHERE announced_at < ?", (before,))


def _kind(
    row: tuple[str, str, float] | None, status: str, starts: str, now: float, repeat_s: float
) -> str | None:
    """What to announce for an alert given the last announcement (None: nothing)."""
    if row is None or (row[0], row[1]) != (status, starts):
        return status
    if status == "firing" and repeat_s > 0 and now - row[2] >= repeat_s:
        return "repeat"
    return None
