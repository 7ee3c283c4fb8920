"""`sidecar backtest` as a trader runs it: files in, a report and a summary out, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from backtesting.test import EURUSD

from sidecar.cli import main


def pull_file(path: Path, bars: int = 1500) -> Path:
    """The layout `sidecar pull` writes: time,open,high,low,close,volume (UTC seconds)."""
    frame = EURUSD.iloc[:bars]
    lines = ["time,open,high,low,close,volume"]
    for t, row in zip(frame.index, frame.itertuples(index=False), strict=True):
        lines.append(
            f"{int(t.timestamp())},{row.Open},{row.High},{row.Low},{row.Close},{row.Volume}"
        )
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def mt5_export(path: Path, bars: int = 1500, shift: int = 0) -> Path:
    """MetaTrader 5's Export Bars: tab-separated, server time, spread in points, UTF-16."""
    frame = EURUSD.iloc[shift : shift + bars]
    lines = ["<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>"]
    for t, row in zip(frame.index, frame.itertuples(index=False), strict=True):
        lines.append(
            f"{t:%Y.%m.%d}\t{t:%H:%M:%S}\t{row.Open}\t{row.High}\t{row.Low}\t{row.Close}"
            f"\t{row.Volume}\t0\t12"
        )
    path.write_text("\r\n".join(lines) + "\r\n", encoding="utf-16")
    return path


def test_a_pull_file_backtest_writes_the_report_and_the_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = pull_file(tmp_path / "EURUSD_1h.csv")
    report, summary = tmp_path / "out.html", tmp_path / "out.json"
    code = main(
        [
            "backtest",
            "--data",
            str(data),
            "--symbol",
            "EURUSD",
            "--timeframe",
            "H1",
            "--spread",
            "8",
            "--report",
            str(report),
            "--json",
            str(summary),
            "--quiet",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "backtest EURUSD H1:" in out and "trades" in out
    s = json.loads(summary.read_text(encoding="utf-8"))
    assert s["trades"]["count"] > 0
    assert s["period"]["timeframe"] == "H1"
    html = report.read_text(encoding="utf-8")
    assert html.startswith("<!DOCTYPE html>") and "http://" not in html.split("<body", 1)[0]


def test_an_mt5_export_and_a_run_file_trade_two_symbols_on_one_account(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    eur = mt5_export(tmp_path / "EURUSD_H1.csv")
    gbp = mt5_export(tmp_path / "GBPUSD_H1.csv", shift=400)
    run = tmp_path / "run.toml"
    run.write_text(
        '[account]\nbalance = 25000\nleverage = 200\nmode = "netting"\n'
        "server_offset_hours = 2\n\n[ea]\nmax_positions = 2\n\n"
        f'[[market]]\ndata = "{eur.as_posix()}"\nsymbol = "EURUSD"\n\n'
        f'[[market]]\ndata = "{gbp.as_posix()}"\nsymbol = "GBPUSD"\n',
        encoding="utf-8",
    )
    summary = tmp_path / "s.json"
    code = main(["backtest", "--run", str(run), "--json", str(summary), "--quiet"])
    assert code == 0, capsys.readouterr()
    s = json.loads(summary.read_text(encoding="utf-8"))
    assert s["period"]["symbols"] == ["EURUSD", "GBPUSD"]
    assert s["account"]["mode"] == "netting" and s["account"]["balance"] == 25000
    assert set(s["trades"]["by_symbol"]) == {"EURUSD", "GBPUSD"}


def test_bad_input_is_reported_at_once_with_file_line_and_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = pull_file(tmp_path / "EURUSD.csv", bars=400)
    lines = data.read_text(encoding="utf-8").splitlines()
    lines[17] = lines[17].replace(",", ",-", 1)  # a negative open on line 18
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code = main(
        [
            "backtest",
            "--data",
            str(data),
            "--symbol",
            "EURUSD",
            "--data",
            str(data),
            "--symbol",
            "NOSUCH",
            "--balance",
            "-5",
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "account.balance: expected a number > 0, got -5.0" in err
    code = main(
        [
            "backtest",
            "--data",
            str(data),
            "--symbol",
            "EURUSD",
            "--data",
            str(data),
            "--symbol",
            "NOSUCH",
            "--quiet",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "EURUSD.csv:18:" in err  # the file and the line of the bad price
    assert "NOSUCH" in err and "--symbol-spec" in err  # how to describe an unknown symbol


def test_usage_errors_exit_2_and_the_process_says_why(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sidecar",
            "backtest",
            "--data",
            str(tmp_path / "missing.csv"),
            "--symbol",
            "EURUSD",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert "missing.csv" in done.stderr


def test_bars_without_a_spread_and_no_spread_set_are_flagged(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file without a spread column trades at bid = ask unless told otherwise: the run says so
    on stderr and in the summary's notes, so a free spread never passes unnoticed."""
    data = pull_file(tmp_path / "EURUSD_1h.csv", bars=800)
    summary = tmp_path / "out.json"
    args = ["backtest", "--data", str(data), "--symbol", "EURUSD", "--json", str(summary)]
    assert main([*args, "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "EURUSD: the bars carry no spread and none was set" in err
    assert any("no spread" in n for n in json.loads(summary.read_text())["notes"])
    assert main([*args, "--quiet", "--spread", "8"]) == 0
    assert "no spread" not in capsys.readouterr().err
    assert not any("no spread" in n for n in json.loads(summary.read_text())["notes"])
    exported = mt5_export(tmp_path / "EURUSD_H1.csv", bars=800)  # MT5's own spread column
    assert main(["backtest", "--data", str(exported), "--symbol", "EURUSD", "--quiet"]) == 0
    assert "no spread" not in capsys.readouterr().err
