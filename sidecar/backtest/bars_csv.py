"""Read closed bars from a CSV file: `time,open,high,low,close,volume` (header optional).

`time` is Unix seconds or an ISO 8601 date-time (UTC when it carries no offset). Rows become
protocol bar rows `[time, open, high, low, close, tick_volume, spread]` with spread 0.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path

COLUMNS = ("time", "open", "high", "low", "close", "volume")


def _time(text: str) -> int:
    try:
        return int(float(text))
    except ValueError:
        pass
    stamp = datetime.fromisoformat(text.strip())
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return int(stamp.timestamp())


def read_bars_csv(path: str | Path) -> list[list[float]]:
    rows: list[list[float]] = []
    with open(path, newline="", encoding="utf-8") as f:
        for lineno, rec in enumerate(csv.reader(f), start=1):
            if not rec or (lineno == 1 and rec[0].strip().lower() == "time"):
                continue
            if len(rec) < 5:
                raise ValueError(f"{path}:{lineno}: expected {','.join(COLUMNS)}, got {rec!r}")
            try:
                # An empty volume (EODHD sends null for some bars) reads as 0.
                values = [
                    0.0 if i == 4 and not x.strip() else float(x) for i, x in enumerate(rec[1:6])
                ]
                values += [0.0] * (6 - len(rec))
                rows.append([float(_time(rec[0])), *values[:5], 0.0])
            except ValueError:
                raise ValueError(
                    f"{path}:{lineno}: expected numbers in {','.join(COLUMNS)}, got {rec!r}"
                ) from None
    rows.sort(key=lambda r: r[0])
    return rows
