"""Where a sweep's results go as they arrive: one SQLite file, keyed by the hash of a run.

A run's key is the SHA-256 of everything that decides its result (the data, the configuration,
the account, the EA limits, the period and the sidecar's code version; see `sweep.run_key`), so
a result is reused only when the run would give it again: an interrupted sweep resumes where it
stopped, a repeated one costs nothing, and a change of code or data recomputes.

Only the process that drives the sweep writes (results come back to it from the workers), one
transaction per result; WAL mode lets a reader (a test, another sweep's progress) look in.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    key TEXT PRIMARY KEY,
    summary TEXT NOT NULL,      -- metrics.summarize() as JSON
    curve TEXT NOT NULL,        -- [initial equity, [[utc, equity], ...]] end of each UTC day
    seconds REAL NOT NULL,      -- how long the backtest took (never in results.csv)
    stored_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS failures (
    key TEXT PRIMARY KEY,
    error TEXT NOT NULL,
    failed_at REAL NOT NULL
);
"""


class ResultStore:
    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        self.db.commit()

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def have(self, keys: Iterable[str]) -> set[str]:
        """The keys among `keys` that have a stored result."""
        keys = list(keys)
        found: set[str] = set()
        for i in range(0, len(keys), 500):
            chunk = keys[i : i + 500]
            marks = ",".join("?" * len(chunk))
            found.update(
                r[0] for r in self.db.execute(f"SELECT key FROM runs WHERE key IN ({marks})", chunk)
            )
        return found

    def put(self, key: str, result: dict[str, Any]) -> None:
        """Store one run's result (what `sweep.run_backtest` returned) at once."""
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO runs (key, summary, curve, seconds, stored_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (
                    key,
                    json.dumps(result["summary"], allow_nan=False),
                    json.dumps([result["initial"], result["curve"]], allow_nan=False),
                    float(result.get("seconds", 0.0)),
                    time.time(),
                ),
            )
            self.db.execute("DELETE FROM failures WHERE key = ?", (key,))

    def fail(self, key: str, error: str) -> None:
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO failures (key, error, failed_at) VALUES (?, ?, ?)",
                (key, error, time.time()),
            )

    def summary(self, key: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT summary FROM runs WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def curve(self, key: str) -> tuple[float, list[tuple[int, float]]] | None:
        row = self.db.execute("SELECT curve FROM runs WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        initial, points = json.loads(row[0])
        return float(initial), [(int(t), float(e)) for t, e in points]

    def count(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM runs").fetchone()[0])


__all__ = ["ResultStore"]
