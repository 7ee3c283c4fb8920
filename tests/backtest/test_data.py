"""Loading bar history for the backtester: MT5 exports, `sidecar pull` files, generic CSVs and
backtesting.py frames become server-time protocol rows, and every bad line is named."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sidecar.backtest.data import (
    TIMEFRAME_SECONDS,
    DataError,
    infer_timeframe,
    load_backtesting_frame,
    load_series,
)

MT5_HEADER = "<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>"
MT5_DAILY_HEADER = "<DATE>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>"
PULL_HEADER = "time,open,high,low,close,volume"


def ts(text: str) -> float:
    """Unix seconds of a naive 'YYYY-MM-DD HH:MM' read as UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def write(path: Path, lines: list[str], encoding: str = "utf-8") -> Path:
    path.write_bytes(("\n".join(lines) + "\n").encode(encoding) if lines else b"")
    return path


# ---------------------------------------------------------------- MT5 exports


def test_mt5_h1_export_is_server_time_taken_as_it_is(tmp_path: Path) -> None:
    path = write(
        tmp_path / "EURUSD_H1.csv",
        [
            MT5_HEADER,
            "2024.01.02\t00:00:00\t1.10400\t1.10500\t1.10300\t1.10450\t1200\t0\t7",
            "2024.01.02\t01:00:00\t1.10450\t1.10600\t1.10410\t1.10580\t950\t0\t6",
            "2024.01.02\t03:00:00\t1.10580\t1.10590\t1.10200\t1.10250\t1800\t0\t9",  # gap: fine
        ],
    )
    series = load_series(path, symbol="EURUSD", server_offset_hours=2.0)
    assert series.symbol == "EURUSD" and series.timeframe == "H1" and series.source == str(path)
    assert series.rows == [
        [ts("2024-01-02 00:00"), 1.104, 1.105, 1.103, 1.1045, 1200.0, 7.0],
        [ts("2024-01-02 01:00"), 1.1045, 1.106, 1.1041, 1.1058, 950.0, 6.0],
        [ts("2024-01-02 03:00"), 1.1058, 1.1059, 1.102, 1.1025, 1800.0, 9.0],
    ]
    # The same file read as UTC moves by the server offset.
    shifted = load_series(path, symbol="EURUSD", server_offset_hours=2.0, file_clock="utc")
    assert [r[0] for r in shifted.rows] == [r[0] + 7200 for r in series.rows]


def test_mt5_export_in_utf16_with_bom_and_short_times(tmp_path: Path) -> None:
    lines = [
        MT5_HEADER,
        "2024.03.01\t10:00\t2050.10\t2051.00\t2049.50\t2050.80\t300\t0\t25",
        "2024.03.01\t10:15\t2050.80\t2052.40\t2050.70\t2052.00\t410\t0\t22",
    ]
    path = tmp_path / "XAUUSD_M15.csv"
    path.write_bytes(
        b"\xff\xfe" + "\r\n".join(lines).encode("utf-16-le") + "\r\n".encode("utf-16-le")
    )
    series = load_series(path, symbol="XAUUSD", timeframe="M15")
    assert series.timeframe == "M15"
    assert series.rows[1] == [ts("2024-03-01 10:15"), 2050.8, 2052.4, 2050.7, 2052.0, 410.0, 22.0]


def test_mt5_export_in_utf16_without_bom(tmp_path: Path) -> None:
    lines = [
        MT5_HEADER,
        "2024.03.01\t10:00\t1.0\t1.2\t0.9\t1.1\t1\t0\t0",
        "2024.03.01\t10:05\t1.1\t1.2\t1.0\t1.1\t1\t0\t0",
    ]
    path = write(tmp_path / "X.csv", lines, encoding="utf-16-le")
    assert load_series(path, symbol="X").timeframe == "M5"


def test_mt5_daily_export_without_time_column_keeps_dates(tmp_path: Path) -> None:
    path = write(
        tmp_path / "EURUSD_D1.csv",
        [
            "\ufeff" + MT5_DAILY_HEADER,  # a UTF-8 BOM is fine too
            "2024.01.04\t1.09200\t1.09600\t1.08900\t1.09450\t61000\t0\t5",
            "2024.01.05\t1.09450\t1.09980\t1.08770\t1.09400\t70000\t0\t6",
            "2024.01.08\t1.09400\t1.09650\t1.09160\t1.09500\t58000\t0\t5",  # after a weekend
        ],
    )
    series = load_series(path, symbol="EURUSD", timeframe="D1", server_offset_hours=3)
    assert series.timeframe == "D1"
    assert [r[0] for r in series.rows] == [ts("2024-01-04"), ts("2024-01-05"), ts("2024-01-08")]
    assert series.rows[0][5:] == [61000.0, 5.0]


# ---------------------------------------------------------------- sidecar pull files


def test_pull_file_is_utc_and_moved_to_server_time(tmp_path: Path) -> None:
    path = write(
        tmp_path / "EURUSD.FOREX_1h.csv",
        [
            PULL_HEADER,
            f"{int(ts('2025-01-02 08:00'))},1.0350,1.0370,1.0340,1.0360,",  # null volume
            f"{int(ts('2025-01-02 09:00'))},1.0360,1.0380,1.0350,1.0355,812",
        ],
    )
    series = load_series(path, symbol="EURUSD", server_offset_hours=2)
    assert series.timeframe == "H1"
    assert series.rows == [
        [ts("2025-01-02 10:00"), 1.035, 1.037, 1.034, 1.036, 0.0, 0.0],
        [ts("2025-01-02 11:00"), 1.036, 1.038, 1.035, 1.0355, 812.0, 0.0],
    ]
    same = load_series(path, symbol="EURUSD", server_offset_hours=2, file_clock="server")
    assert same.rows[0][0] == ts("2025-01-02 08:00")


def test_pull_daily_bars_stay_on_their_date(tmp_path: Path) -> None:
    days = ["2025-01-02", "2025-01-03", "2025-01-06"]
    lines = [PULL_HEADER] + [f"{int(ts(d))},1.0,1.1,0.9,1.05,10" for d in days]
    path = write(tmp_path / "EURUSD.FOREX_d.csv", lines)
    for offset in (-5.0, 0.0, 2.0):
        series = load_series(path, symbol="EURUSD", server_offset_hours=offset)
        assert series.timeframe == "D1"
        assert [r[0] for r in series.rows] == [ts(d) for d in days]


def test_pull_file_with_iso_times(tmp_path: Path) -> None:
    path = write(
        tmp_path / "p.csv",
        [PULL_HEADER, "2025-01-02T08:00:00,1,1.1,0.9,1,1", "2025-01-02 08:05,1,1.1,0.9,1,1"],
    )
    series = load_series(path, symbol="X", fmt="pull")
    assert series.timeframe == "M5" and series.rows[1][0] == ts("2025-01-02 08:05")


# ---------------------------------------------------------------- generic CSVs


def test_generic_semicolon_file_with_date_and_time_columns(tmp_path: Path) -> None:
    path = write(
        tmp_path / "ger40.csv",
        [
            "Date;Time;Open;High;Low;Close;Tick_Volume;Spread;Real_Volume",
            "2024/05/02;09:00;18000.5;18010.0;17990.0;18005.0;1500;12;0",
            "2024/05/02;09:30;18005.0;18020.0;18001.0;18015.5;1300;10;0",
        ],
    )
    series = load_series(path, symbol="GER40", server_offset_hours=0)
    assert series.timeframe == "M30"
    assert series.rows[1] == [ts("2024-05-02 09:30"), 18005.0, 18020.0, 18001.0, 18015.5, 1300, 10]


def test_generic_iso_timestamps_with_offsets_are_absolute(tmp_path: Path) -> None:
    path = write(
        tmp_path / "btc.csv",
        [
            "TIMESTAMP,OPEN,HIGH,LOW,CLOSE,VOLUME",
            "2024-06-01T00:00:00Z,67000,67100,66900,67050,5",
            "2024-06-01T03:00:00+02:00,67050,67200,67000,67150,7",  # = 01:00 UTC
        ],
    )
    for clock in ("utc", "server"):
        series = load_series(path, symbol="BTCUSD", server_offset_hours=3, file_clock=clock)
        assert series.timeframe == "H1"
        assert [r[0] for r in series.rows] == [ts("2024-06-01 03:00"), ts("2024-06-01 04:00")]


def test_generic_tab_file_with_datetime_column_and_no_volume(tmp_path: Path) -> None:
    path = write(
        tmp_path / "w.tsv",
        [
            "datetime\topen\thigh\tlow\tclose",
            "2024-01-07 00:00\t1.0\t1.2\t0.9\t1.1",
            "2024-01-14 00:00\t1.1\t1.3\t1.0\t1.2",
            "2024-01-28 00:00\t1.2\t1.3\t1.1\t1.25",
        ],
    )
    series = load_series(path, symbol="X", file_clock="server")
    assert series.timeframe == "W1"
    assert series.rows[0] == [ts("2024-01-07"), 1.0, 1.2, 0.9, 1.1, 0.0, 0.0]


def test_blank_lines_are_skipped_and_line_numbers_stay_true(tmp_path: Path) -> None:
    path = write(
        tmp_path / "gaps.csv",
        [
            "",
            PULL_HEADER,
            "1704067200,1,1.1,0.9,1,1",
            "",
            "   ",
            "1704070800,1,1.1,0.9,1,1",
            "1704074400,1,0.95,0.9,1,1",
        ],
    )
    with pytest.raises(DataError, match=r"gaps.csv:7: high 0.95 is below max\(open, close\) 1.0$"):
        load_series(path, symbol="X")


# ---------------------------------------------------------------- malformed files

H1 = [
    "1704182400,1.10,1.12,1.09,1.11,100",  # line 2: 2024-01-02 08:00
    "1704186000,1.11,1.13,1.10,1.12,100",  # line 3: 09:00
    "1704189600,1.12,1.14,1.11,1.13,100",  # line 4: 10:00
    "1704193200,1.13,1.15,1.12,1.14,100",  # line 5: 11:00
]


def bad_line(line: str, at: int = 3) -> list[str]:
    """The H1 bars with file line `at` replaced."""
    rows = list(H1)
    rows[at - 2] = line
    return rows


MALFORMED = {
    "not after previous": (
        [*H1[:2], "1704193200,1.12,1.14,1.11,1.13,100", "1704189600,1.13,1.15,1.12,1.14,100"],
        r"5: time 2024-01-02 10:00 is not after the previous bar \(2024-01-02 11:00\)$",
    ),
    "duplicate time": (
        bad_line("1704182400,1.11,1.13,1.10,1.12,100"),
        r"3: time 2024-01-02 08:00 is not after the previous bar \(2024-01-02 08:00\)",
    ),
    "high below close": (
        bad_line("1704186000,1.11,1.115,1.10,1.12,100"),
        r"3: high 1.115 is below max\(open, close\) 1.12",
    ),
    "low above open": (
        bad_line("1704186000,1.11,1.13,1.111,1.12,100"),
        r"3: low 1.111 is above min\(open, close\) 1.11",
    ),
    "high below low": (
        bad_line("1704186000,1.11,1.10,1.13,1.12,100"),
        r"3: high 1.1 is below low 1.13",
    ),
    "nan price": (bad_line("1704186000,1.11,nan,1.10,1.12,100"), r"3: high: expected a finite"),
    "inf price": (bad_line("1704186000,1.11,inf,1.10,1.12,100"), r"3: high: expected a finite"),
    "empty price": (
        bad_line("1704186000,,1.13,1.10,1.12,100"),
        r"3: open: expected a number, got ''",
    ),
    "zero price": (bad_line("1704186000,0,1.13,0,1.12,100"), r"3: open: expected > 0, got 0.0"),
    "negative price": (
        bad_line("1704186000,-1.11,1.13,-1.2,1.12,100"),
        r"3: open: expected > 0, got -1.11",
    ),
    "negative volume": (
        bad_line("1704186000,1.11,1.13,1.10,1.12,-5"),
        r"3: volume: expected a number >= 0, got -5.0",
    ),
    "unparsable number": (
        bad_line("1704186000,1.11,1.13,1.1O,1.12,100"),
        r"3: low: expected a number, got '1.1O'",
    ),
    "unparsable date": (
        bad_line("2024-01-02 9h,1.11,1.13,1.10,1.12,100"),
        r"3: time: expected Unix seconds or YYYY-MM-DD.*, got '2024-01-02 9h'",
    ),
    "fractional unix time": (
        bad_line("1704186000.5,1.11,1.13,1.10,1.12,100"),
        r"3: time: expected whole Unix seconds",
    ),
    "too many columns": (
        bad_line("1704186000,1.11,1.13,1.10,1.12,100,7"),
        r"3: expected 6 columns like the header \(time, open, high, low, close, volume\), got 7",
    ),
    "too few columns": (bad_line("1704186000,1.11,1.13,1.10"), r"3: expected 6 columns .* got 4"),
    "gap shorter than the timeframe": (
        [*H1[:3], "1704191400,1.13,1.15,1.12,1.14,100", H1[3], "1704196800,1,1.1,0.9,1,1"],
        r"5: time 2024-01-02 10:30 is only 30 min after the previous bar \(2024-01-02 10:00\); "
        r"H1 bars are 1 h apart \(and 1 more bad line\)",
    ),
    "first of several problems": (
        [H1[0], "1704186000,1.11,1.13,1.10,x,100", "1704189600,1.12,1.14,1.11,1.13,-1"],
        r"3: close: expected a number, got 'x'$",
    ),
    "counts the other bad lines": (
        [H1[0], "1704186000,1.11,1.0,1.10,1.12,1", "1704189600,1.12,1.14,1.11,1.13,-1", H1[3]],
        r"3: high 1.0 is below low 1.1 \(and 1 more bad line\)$",
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_every_malformed_line_is_named(tmp_path: Path, case: str) -> None:
    rows, message = MALFORMED[case]
    path = write(tmp_path / "EURUSD_H1.csv", [PULL_HEADER, *rows])
    with pytest.raises(DataError, match=rf"^{path}:{message}"):
        load_series(path, symbol="EURUSD")


def test_the_message_reads_as_documented(tmp_path: Path) -> None:
    rows, _ = MALFORMED["not after previous"]
    path = write(tmp_path / "EURUSD_H1.csv", [PULL_HEADER, *rows])
    with pytest.raises(ValueError) as caught:
        load_series(path, symbol="EURUSD")
    assert str(caught.value) == (
        f"{path}:5: time 2024-01-02 10:00 is not after the previous bar (2024-01-02 11:00)"
    )


def test_mt5_bad_lines_are_named_too(tmp_path: Path) -> None:
    good = "2024.01.02\t00:00:00\t1.1\t1.2\t1.0\t1.15\t10\t0\t5"
    cases = {
        "2024.13.02\t01:00:00\t1.1\t1.2\t1.0\t1.15\t10\t0\t5": r"3: date: expected .*2024.13.02",
        "2024.01.02\t25:00:00\t1.1\t1.2\t1.0\t1.15\t10\t0\t5": r"3: time: expected HH:MM\[:SS\]",
        "2024.01.02\t01:00:00\t1.1\t1.2\t1.0\t1.15\t10\t0\t-1": r"3: spread: expected .* -1.0",
        "2024.01.02\t01:00:00\t1.1\t1.2\t1.0\t1.15\t10\t0": r"3: expected 9 columns .*, got 8",
    }
    for line, message in cases.items():
        path = write(tmp_path / "mt5.csv", [MT5_HEADER, good, line])
        with pytest.raises(DataError, match=rf"^{path}:{message}"):
            load_series(path, symbol="EURUSD")


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([], r":1: empty file"),
        (["", "  "], r":1: empty file"),
        ([PULL_HEADER], r":1: no bars after the header"),
        (["date,open,high,low,volume", "2024-01-01,1,1,1,1"], r":1: header: no 'close' column"),
        (["open,high,low,close", "1,1,1,1"], r":1: header: no time column"),
        (["time,open,open,high,low,close"], r":1: header: column 'open' appears twice"),
    ],
)
def test_empty_files_and_bad_headers(tmp_path: Path, lines: list[str], message: str) -> None:
    path = write(tmp_path / "f.csv", lines)
    with pytest.raises(DataError, match=rf"^{path}{message}"):
        load_series(path, symbol="X")


def test_a_missing_file_and_an_undecodable_one(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope.csv: cannot read"):
        load_series(tmp_path / "nope.csv", symbol="X")
    path = tmp_path / "latin1.csv"
    path.write_bytes(PULL_HEADER.encode() + b"\n1704182400,1,1,1,1,\xe9\n")
    with pytest.raises(DataError, match=r"latin1.csv:2: not UTF-8 or UTF-16 text"):
        load_series(path, symbol="X")


def test_a_forced_format_checks_the_header(tmp_path: Path) -> None:
    path = write(tmp_path / "g.csv", ["Date,Open,High,Low,Close", "2024-01-01,1,1,1,1"])
    with pytest.raises(DataError, match=r"g.csv:1: header: expected the mt5 header"):
        load_series(path, symbol="X", fmt="mt5")
    with pytest.raises(DataError, match=r"fmt: expected"):
        load_series(path, symbol="X", fmt="xlsx")  # type: ignore[arg-type]
    with pytest.raises(DataError, match=r"file_clock: expected"):
        load_series(path, symbol="X", file_clock="gmt")  # type: ignore[arg-type]


# ---------------------------------------------------------------- timeframes


def bars_at(times: list[int]) -> list[str]:
    return [PULL_HEADER] + [f"{t},1.0,1.1,0.9,1.05,1" for t in times]


@pytest.mark.parametrize("tf", ["M1", "M5", "M15", "M30", "H1", "H4", "D1", "W1"])
def test_timeframe_is_inferred_from_the_most_common_gap(tmp_path: Path, tf: str) -> None:
    step = TIMEFRAME_SECONDS[tf]
    start = 1704067200 + 86400 * 6  # Sunday 2024-01-07 00:00 UTC
    times = [start + i * step for i in range(10)]
    times += [times[-1] + 3 * step + i * step for i in range(1, 6)]  # a long gap is fine
    path = write(tmp_path / f"{tf}.csv", bars_at(times))
    assert load_series(path, symbol="X", timeframe=tf).timeframe == tf
    assert load_series(path, symbol="X").timeframe == tf


def test_monthly_bars_of_uneven_length(tmp_path: Path) -> None:
    months = [f"2024-{m:02d}-01" for m in range(1, 13)]
    path = write(tmp_path / "mn.csv", bars_at([int(ts(m)) for m in months]))
    assert load_series(path, symbol="X").timeframe == "MN1"
    assert infer_timeframe([ts(m) for m in months]) == "MN1"


def test_a_timeframe_mismatch_says_what_was_inferred(tmp_path: Path) -> None:
    path = write(tmp_path / "EURUSD_H1.csv", [PULL_HEADER, *H1])
    with pytest.raises(
        DataError,
        match=r"EURUSD_H1.csv: timeframe M15 was given but the bars are H1: the most common "
        r"gap between bars is 1 h \(3 of 3 gaps\)",
    ):
        load_series(path, symbol="EURUSD", timeframe="M15")
    with pytest.raises(DataError, match=r"timeframe: expected one of M1, .*, got 'H7'"):
        load_series(path, symbol="EURUSD", timeframe="H7")


def test_a_gap_that_is_no_timeframe(tmp_path: Path) -> None:
    path = write(tmp_path / "odd.csv", bars_at([1704067200 + i * 420 for i in range(5)]))
    with pytest.raises(DataError, match=r"odd.csv: cannot infer the timeframe: .* 7 min"):
        load_series(path, symbol="X")


def test_a_single_bar_needs_the_timeframe(tmp_path: Path) -> None:
    path = write(tmp_path / "one.csv", bars_at([1704067200]))
    with pytest.raises(DataError, match=r"one.csv: cannot infer the timeframe from a single bar"):
        load_series(path, symbol="X")
    assert load_series(path, symbol="X", timeframe="H1").rows[0][0] == 1704067200.0


# ---------------------------------------------------------------- backtesting.py frames


def test_backtesting_py_frames_load() -> None:
    test_data = pytest.importorskip("backtesting.test")
    eurusd = load_backtesting_frame(test_data.EURUSD, "EURUSD")
    assert eurusd.timeframe == "H1" and len(eurusd.rows) == len(test_data.EURUSD)
    first = test_data.EURUSD.iloc[0]
    assert eurusd.rows[0] == [
        test_data.EURUSD.index[0].replace(tzinfo=UTC).timestamp(),
        first.Open,
        first.High,
        first.Low,
        first.Close,
        first.Volume,
        0.0,
    ]
    goog = load_backtesting_frame(test_data.GOOG, "GOOG", timeframe="D1")
    assert goog.timeframe == "D1" and len(goog.rows) == len(test_data.GOOG)
    assert goog.source == "GOOG DataFrame"


def test_frame_errors_name_the_row_and_its_time() -> None:
    index = pd.date_range("2024-01-02 08:00", periods=4, freq="h")
    frame = pd.DataFrame(
        {
            "Open": [1.1, 1.2, 1.3, 1.4],
            "High": [1.2, 1.3, 1.25, 1.5],
            "Low": [1.0, 1.1, 1.2, 1.3],
            "Close": [1.15, 1.25, 1.3, 1.45],
        },
        index=index,
    )
    with pytest.raises(
        DataError,
        match=r"^EURUSD DataFrame: row 2 \(2024-01-02 10:00:00\): high 1.25 is below max",
    ):
        load_backtesting_frame(frame, "EURUSD")
    frame.loc[index[2], "High"] = np.nan
    with pytest.raises(DataError, match=r"row 2 \(2024-01-02 10:00:00\): high: expected a num"):
        load_backtesting_frame(frame, "EURUSD")
    with pytest.raises(DataError, match=r"expected a DatetimeIndex, got RangeIndex"):
        load_backtesting_frame(frame.reset_index(drop=True), "EURUSD")
    with pytest.raises(DataError, match=r"no 'close' column"):
        load_backtesting_frame(frame.drop(columns="Close"), "EURUSD")


def test_frame_clocks() -> None:
    index = pd.date_range("2024-01-02 08:00", periods=3, freq="h")
    frame = pd.DataFrame({"open": 1.0, "high": 1.1, "low": 0.9, "close": 1.0}, index=index)
    server = load_backtesting_frame(frame, "X", server_offset_hours=2)
    assert server.rows[0][0] == ts("2024-01-02 08:00")
    utc = load_backtesting_frame(frame, "X", server_offset_hours=2, file_clock="utc")
    assert utc.rows[0][0] == ts("2024-01-02 10:00")
    aware = frame.tz_localize("Europe/Berlin")  # 08:00 CET = 07:00 UTC
    assert load_backtesting_frame(aware, "X", server_offset_hours=2).rows[0][0] == ts(
        "2024-01-02 09:00"
    )


# ---------------------------------------------------------------- size


def test_a_200k_line_file_loads(tmp_path: Path) -> None:
    n = 200_000
    times = 1704067200 + np.arange(n, dtype=np.int64) * 60
    stamps = pd.to_datetime(times, unit="s")
    close = 1.1 + 0.001 * np.sin(np.arange(n) / 50)
    frame = pd.DataFrame(
        {
            "<DATE>": stamps.strftime("%Y.%m.%d"),
            "<TIME>": stamps.strftime("%H:%M:%S"),
            "<OPEN>": np.round(close, 5),
            "<HIGH>": np.round(close + 0.0002, 5),
            "<LOW>": np.round(close - 0.0002, 5),
            "<CLOSE>": np.round(close, 5),
            "<TICKVOL>": 10,
            "<VOL>": 0,
            "<SPREAD>": 3,
        }
    )
    path = tmp_path / "EURUSD_M1.csv"
    frame.to_csv(path, sep="\t", index=False)
    series = load_series(path, symbol="EURUSD", timeframe="M1")
    assert len(series.rows) == n
    assert series.rows[-1][0] == float(times[-1]) and series.rows[-1][6] == 3.0
