"""pull_bars / pull_calendar against the real fake server, including resume after interruption."""

from __future__ import annotations

import io
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from sidecar.feeds.eodhd import EodhdClient, EodhdServerError
from sidecar.feeds.pull import CSV_HEADER, csv_path, normalize_event, pull_bars, pull_calendar
from sidecar.testing.fake_eodhd import FakeEodhd

MakeClient = Callable[..., EodhdClient]
JAN = datetime(2025, 1, 1, tzinfo=UTC)


def _read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path)


def test_pull_intraday_writes_clean_csv(client: EodhdClient, tmp_path: Path) -> None:
    buf = io.StringIO()
    res = pull_bars(client, ["EURUSD.FOREX"], "1h", "2025-06-02", "2025-06-04", tmp_path, buf)
    path = res["EURUSD.FOREX"].path
    assert path == csv_path(tmp_path, "EURUSD.FOREX", "1h")
    assert path.read_text().splitlines()[0] == CSV_HEADER
    df = _read(path)
    assert len(df) == 72 == res["EURUSD.FOREX"].bars_written  # 3 weekdays × 24 h
    assert df["time"].is_monotonic_increasing and df["time"].is_unique
    assert df["time"].iloc[0] == int(datetime(2025, 6, 2, tzinfo=UTC).timestamp())
    assert df["time"].iloc[-1] == int(datetime(2025, 6, 4, 23, tzinfo=UTC).timestamp())
    assert (df["high"] >= df[["open", "close"]].max(axis=1)).all()
    assert "EURUSD.FOREX 1h" in buf.getvalue() and "100.0%" in buf.getvalue()


def test_pull_daily_bars(client: EodhdClient, tmp_path: Path) -> None:
    res = pull_bars(
        client,
        ["AAPL.US", "EURUSD.FOREX"],
        "d",
        "2025-06-02",
        "2025-06-13",
        tmp_path,
        progress=False,
    )
    for sym in ("AAPL.US", "EURUSD.FOREX"):
        df = _read(res[sym].path)
        assert len(df) == 10
        assert df["time"].iloc[0] == int(datetime(2025, 6, 2, tzinfo=UTC).timestamp())
    assert (_read(res["EURUSD.FOREX"].path)["volume"] == 0).all()


def test_resume_after_interruption_has_no_duplicates_and_equals_a_clean_pull(
    make_client: MakeClient, tmp_path: Path, sleeps: list
) -> None:
    with FakeEodhd(intraday_session=(12 * 60, 12 * 60 + 30)) as fake:
        client = make_client(base_url=fake.base_url, max_retries=1)
        start, end = JAN, datetime(2025, 6, 1, tzinfo=UTC)  # 151 days of 1m → 2 chunks
        clean = pull_bars(client, ["AAPL.US"], "1m", start, end, tmp_path / "clean", False)
        fake.reset_requests()
        fake.fail("/api/intraday", 503, after=1, times=None)  # the 2nd chunk keeps failing
        with pytest.raises(EodhdServerError):
            pull_bars(client, ["AAPL.US"], "1m", start, end, tmp_path / "run", False)
        path = csv_path(tmp_path / "run", "AAPL.US", "1m")
        partial = _read(path)
        assert 0 < len(partial) < len(_read(clean["AAPL.US"].path))
        fake.clear_faults()
        fake.reset_requests()
        res = pull_bars(client, ["AAPL.US"], "1m", start, end, tmp_path / "run", False)
        resumed_from = int(fake.requests[0].params["from"])
    assert res["AAPL.US"].resumed_after == partial["time"].iloc[-1]
    assert resumed_from == partial["time"].iloc[-1] + 60  # continued, did not start over
    assert path.read_bytes() == clean["AAPL.US"].path.read_bytes()
    assert res["AAPL.US"].bars_written == len(_read(path)) - len(partial)


def test_partial_last_line_is_repaired(client: EodhdClient, tmp_path: Path) -> None:
    ref = pull_bars(
        client, ["EURUSD.FOREX"], "5m", "2025-06-02", "2025-06-02", tmp_path / "a", False
    )["EURUSD.FOREX"].path
    lines = ref.read_text().splitlines(keepends=True)
    crashed = csv_path(tmp_path / "b", "EURUSD.FOREX", "5m")
    crashed.parent.mkdir()
    crashed.write_text("".join(lines[:100]) + lines[100][:9])  # a crash mid-line
    pull_bars(client, ["EURUSD.FOREX"], "5m", "2025-06-02", "2025-06-02", tmp_path / "b", False)
    assert crashed.read_bytes() == ref.read_bytes()


def test_rerun_of_a_complete_pull_fetches_nothing_new(
    client: EodhdClient, fake: FakeEodhd, tmp_path: Path
) -> None:
    args = (["USDJPY.FOREX"], "1h", "2025-06-02", "2025-06-03", tmp_path, False)
    first = pull_bars(client, *args)["USDJPY.FOREX"]
    before = first.path.read_bytes()
    second = pull_bars(client, *args)["USDJPY.FOREX"]
    assert second.bars_written == 0 and first.path.read_bytes() == before
    assert second.resumed_after == first.last_time


def test_foreign_file_is_not_appended_to(client: EodhdClient, tmp_path: Path) -> None:
    p = csv_path(tmp_path, "EURUSD.FOREX", "1h")
    p.write_text("Date,Open\n2025-01-01,1\n")
    with pytest.raises(ValueError, match="refusing to append"):
        pull_bars(client, ["EURUSD.FOREX"], "1h", "2025-06-02", "2025-06-03", tmp_path, False)
    assert p.read_text() == "Date,Open\n2025-01-01,1\n"


def test_bad_arguments(client: EodhdClient, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="interval"):
        pull_bars(client, ["X"], "15s", "2025-06-02", "2025-06-03", tmp_path)
    with pytest.raises(ValueError, match="after end"):
        pull_bars(client, ["X"], "1h", "2025-06-04", "2025-06-03", tmp_path)
    with pytest.raises(TypeError, match="list of tickers"):
        pull_bars(client, "EURUSD.FOREX", "1h", "2025-06-02", "2025-06-03", tmp_path)


def test_pull_calendar_normalises_and_classifies(client: EodhdClient, fake: FakeEodhd) -> None:
    events = pull_calendar(client, "2025-06-01", "2025-06-30")
    assert [e["time"] for e in events] == sorted(e["time"] for e in events)
    nfp = next(e for e in events if e["name"] == "Non Farm Payrolls")
    assert nfp["time"] == int(datetime(2025, 6, 6, 12, 30, tzinfo=UTC).timestamp())
    assert nfp["currency"] == "USD" and nfp["importance"] == "high" and nfp["source"] == "eodhd"
    assert isinstance(nfp["actual"], float) and isinstance(nfp["estimate"], float)
    ecb = next(e for e in events if e["name"] == "ECB Interest Rate Decision")
    assert ecb["currency"] == "EUR" and ecb["importance"] == "high"
    rigs = next(e for e in events if e["name"] == "Baker Hughes Oil Rig Count")
    assert rigs["importance"] == "low"
    assert {e["currency"] for e in events} >= {"USD", "EUR", "GBP", "JPY"}
    assert len({e["id"] for e in events}) == len(events)
    uk = pull_calendar(client, "2025-06-01", "2025-06-30", countries=["UK"])
    assert uk and {e["currency"] for e in uk} == {"GBP"}
    assert fake.requests[-1].params["country"] == "UK"


def test_normalize_event_tolerates_strings_and_nulls() -> None:
    ev = normalize_event(
        {
            "type": "CPI",
            "comparison": "yoy",
            "period": "",
            "country": "us",
            "date": "2025-06-12 12:30:00",
            "actual": "NA",
            "previous": "3.4",
            "estimate": "",
        }
    )
    assert ev["country"] == "US" and ev["currency"] == "USD"
    assert ev["actual"] is None and ev["previous"] == 3.4 and ev["estimate"] is None
    assert ev["period"] is None and ev["importance"] == "high"
