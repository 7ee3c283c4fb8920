"""Read closed bars from a CSV file as protocol rows (kept for `sidecar bias-check --csv`).

A thin wrapper over `sidecar.backtest.data.load_series`: every layout it reads (`sidecar pull`
files, MT5 exports, generic OHLC CSVs), validated the same way, with no clock shift (pull files
stay UTC, MT5 exports stay server time). Errors are `DataError` (a ValueError) naming the line.
"""

from __future__ import annotations

from pathlib import Path

from sidecar.backtest.data import load_series


def read_bars_csv(path: str | Path) -> list[list[float]]:
    """`[time, open, high, low, close, tick_volume, spread]` rows, oldest first."""
    return load_series(path, symbol=Path(path).stem).rows
