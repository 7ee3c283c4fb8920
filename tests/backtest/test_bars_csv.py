"""The bias-check's CSV reader: the `sidecar pull` format, ISO times, empty volumes, bad rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from sidecar.backtest.bars_csv import read_bars_csv


def test_reads_pulled_rows_with_an_empty_volume_and_iso_times(tmp_path: Path) -> None:
    path = tmp_path / "EURUSD.FOREX_1h.csv"
    path.write_text(
        "time,open,high,low,close,volume\n"
        "1735689600,1.11,1.13,1.10,1.12,\n"  # EODHD sent a null volume
        "2025-01-01T01:00:00,1.10,1.12,1.09,1.11,250\n"
    )
    assert read_bars_csv(path) == [
        [1735689600.0, 1.11, 1.13, 1.10, 1.12, 0.0, 0.0],
        [1735693200.0, 1.10, 1.12, 1.09, 1.11, 250.0, 0.0],
    ]


def test_a_bad_row_is_named_by_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("time,open,high,low,close,volume\n1735696800,1.1,x,1.0,1.05,1\n")
    with pytest.raises(ValueError, match=r"bad.csv:2: high: expected a number, got 'x'"):
        read_bars_csv(path)


def test_rows_out_of_order_are_an_error_not_silently_sorted(tmp_path: Path) -> None:
    path = tmp_path / "unsorted.csv"
    path.write_text(
        "time,open,high,low,close,volume\n"
        "1735696800,1.10,1.12,1.09,1.11,1\n"
        "1735693200,1.11,1.13,1.10,1.12,1\n"
    )
    with pytest.raises(ValueError, match=r"unsorted.csv:3: time 2025-01-01 01:00 is not after"):
        read_bars_csv(path)
