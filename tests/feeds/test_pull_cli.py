"""`sidecar pull` and `sidecar pull-calendar` as commands against the stand-in EODHD server."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from sidecar.backtest.bars_csv import read_bars_csv
from sidecar.engine.news import blackout_reasons
from sidecar.store import Store
from sidecar.testing.fake_eodhd import FakeEodhd


def _run(fake: FakeEodhd, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "EODHD_API_TOKEN": fake.token, "EODHD_BASE_URL": fake.base_url}
    return subprocess.run(
        [sys.executable, "-m", "sidecar", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _times(path: Path) -> list[int]:
    lines = path.read_text().splitlines()
    assert lines[0] == "time,open,high,low,close,volume"
    return [int(ln.split(",", 1)[0]) for ln in lines[1:]]


def test_pull_writes_files_and_resumes_after_an_interruption(tmp_path: Path) -> None:
    out, fresh = tmp_path / "out", tmp_path / "fresh"
    # 1m bars over 122 days take two requests (EODHD allows 120 days of 1m per request).
    args = ["--symbols", "EURUSD.FOREX,AAPL.US", "--interval", "1m"]
    args += ["--from", "2025-01-01", "--to", "2025-05-02"]
    with FakeEodhd() as fake:
        fake.fail("/api/intraday/EURUSD.FOREX", 401, after=1)  # the second request dies
        first = _run(fake, "pull", *args, "--out", str(out))
        assert first.returncode == 1, first.stderr
        assert "401" in first.stderr and fake.token not in first.stderr + first.stdout
        assert "%" in first.stderr  # the progress line
        eur = out / "EURUSD.FOREX_1m.csv"
        partial = _times(eur)
        assert partial and not (out / "AAPL.US_1m.csv").exists()

        second = _run(fake, "pull", *args, "--out", str(out), "--quiet")
        assert second.returncode == 0, second.stderr
        assert "EURUSD.FOREX 1m: +" in second.stdout
        assert f"(resumed after {partial[-1]})" in second.stdout

        clean = _run(fake, "pull", *args, "--out", str(fresh), "--quiet")
        assert clean.returncode == 0, clean.stderr
    resumed = _times(eur)
    assert resumed[: len(partial)] == partial
    assert resumed == sorted(set(resumed)) and len(resumed) > len(partial)
    for name in ("EURUSD.FOREX_1m.csv", "AAPL.US_1m.csv"):
        assert (out / name).read_text() == (fresh / name).read_text()
    # The backtester's reader (also behind `sidecar bias-check --csv`) reads the pulled files.
    bars = read_bars_csv(eur)
    assert [int(b[0]) for b in bars] == resumed
    assert all(b[3] <= min(b[1], b[4]) and b[2] >= max(b[1], b[4]) for b in bars)


def test_pull_calendar_stores_events_a_backtest_can_replay(tmp_path: Path) -> None:
    db = tmp_path / "cal.sqlite"
    with FakeEodhd() as fake:
        done = _run(
            fake, "pull-calendar", "--from", "2025-06-01", "--to", "2025-06-30", "--db", str(db)
        )
        again = _run(
            fake, "pull-calendar", "--from", "2025-06-01", "--to", "2025-06-30", "--db", str(db)
        )
    assert done.returncode == 0, done.stderr
    assert again.returncode == 0, again.stderr
    store = Store(db)
    try:
        start = int(datetime(2025, 6, 1, tzinfo=UTC).timestamp())
        rows = store.calendar_events(start, start + 30 * 86400)
    finally:
        store.close()
    assert rows and {r["source"] for r in rows} == {"eodhd"}
    assert len({r["event_id"] for r in rows}) == len(rows)  # the second pull updated in place
    nfp = [r for r in rows if r["name"] == "Non Farm Payrolls"]
    assert len(nfp) == 1 and nfp[0]["importance"] == "high" and nfp[0]["currency"] == "USD"
    t = nfp[0]["time_gmt"]
    assert t == int(datetime(2025, 6, 6, 12, 30, tzinfo=UTC).timestamp())
    # A replay of 2025-06-06 12:10 UTC with the stored events refuses EURUSD entries.
    events = [{**r, "time": r["time_gmt"]} for r in rows]
    blocks, defensive = blackout_reasons(events, ("EUR", "USD"), t - 1200, 1800, 3600)
    assert any('event="Non Farm Payrolls"' in b for b in blocks) and defensive == ("news",)
