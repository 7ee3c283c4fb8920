"""The stand-in EODHD server speaks the documented formats (checked with raw HTTP)."""

from __future__ import annotations

import subprocess
import sys
import time

import requests

from sidecar.testing.fake_eodhd import FREE_PLAN_WARNING, FakeEodhd, economic_events


def _get(fake: FakeEodhd, path: str, **params: object) -> requests.Response:
    return requests.get(f"{fake.base_url}/{path}", params=params, timeout=5)


def test_auth_and_error_bodies_match_the_real_api(fake: FakeEodhd) -> None:
    r = _get(fake, "eod/EURUSD.FOREX", fmt="json")
    assert r.status_code == 401 and r.text == "Unauthenticated"
    assert r.headers["Content-Type"] == "text/html; charset=UTF-8"
    assert "X-Ratelimit-Limit" not in r.headers
    r = _get(fake, "eod/EURUSD.FOREX", api_token="wrong", fmt="json")
    assert r.status_code == 401
    fake.fail("/api/eod", 403)
    r = _get(fake, "eod/EURUSD.FOREX", api_token=fake.token, fmt="json")
    assert r.status_code == 403 and r.text.startswith("Forbidden")
    r = _get(fake, "eod/EURUSD.FOREX", api_token=fake.token, fmt="json")
    assert r.status_code == 200 and r.headers["X-Ratelimit-Limit"] == "1000"
    r = _get(fake, "intraday/AAPL.US", api_token=fake.token, fmt="json", interval="1m",
             **{"from": 0, "to": 121 * 86400})  # fmt: skip
    assert r.status_code == 422
    assert r.json() == {"errors": {"to": ["Max period length is 120 days"],
                                   "from": ["Max period length is 120 days"]}}  # fmt: skip
    assert fake.requests[0].params == {"fmt": "json"}  # recorded without the token


def test_csv_without_fmt_json_and_demo_key(fake: FakeEodhd) -> None:
    r = _get(fake, "eod/EURUSD.FOREX", api_token=fake.token, **{"from": "2025-06-02",
             "to": "2025-06-02"})  # fmt: skip
    assert r.headers["Content-Type"].startswith("text/csv")
    assert r.text.splitlines()[0] == "Date,Open,High,Low,Close,Adjusted_close,Volume"
    assert _get(fake, "eod/AAPL.US", api_token="demo", fmt="json").status_code == 200
    assert _get(fake, "eod/NVDA.US", api_token="demo", fmt="json").status_code == 401
    assert _get(fake, "economic-events", api_token="demo", fmt="json").status_code == 403


def test_fault_scheduling_and_warning_placement(fake: FakeEodhd) -> None:
    fake.fail("/api/news", 503, after=1, times=2)
    codes = [_get(fake, "news", api_token=fake.token, fmt="json", s="AAPL.US").status_code
             for _ in range(4)]  # fmt: skip
    assert codes == [200, 503, 503, 200]
    fake.warning("/api/eod", placement="field", times=1)
    rows = _get(fake, "eod/AAPL.US", api_token=fake.token, fmt="json", **{"from": "2025-06-02",
                "to": "2025-06-03"}).json()  # fmt: skip
    assert len(rows) == 2 and rows[-1]["warning"] == FREE_PLAN_WARNING and "close" in rows[-1]
    fake.malformed("/api/sentiments")
    r = _get(fake, "sentiments", api_token=fake.token, fmt="json", s="AAPL.US")
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json"
    try:
        r.json()
        parsed = True
    except ValueError:
        parsed = False
    assert not parsed


def test_per_minute_limit_and_daily_budget() -> None:
    with FakeEodhd(per_minute_limit=3, daily_limit=100) as fake:
        codes = [_get(fake, "eod/AAPL.US", api_token=fake.token, fmt="json").status_code
                 for _ in range(4)]  # fmt: skip
        assert codes == [200, 200, 200, 429]
        assert fake.requests[-1].status == 429
    with FakeEodhd(daily_limit=7) as fake:
        codes = [_get(fake, "news", api_token=fake.token, fmt="json", s="AAPL.US").status_code
                 for _ in range(2)]  # fmt: skip
        assert codes == [200, 402] and fake.calls_used == 5


def test_events_fixture_is_deterministic_and_realistic() -> None:
    from datetime import date

    a = economic_events(date(2024, 12, 1), date(2024, 12, 31))
    assert a == economic_events(date(2024, 12, 1), date(2024, 12, 31))
    nfp = [e for e in a if e["type"] == "Non Farm Payrolls"]
    assert [e["date"] for e in nfp] == ["2024-12-06 12:30:00"]  # first Friday
    assert {"US", "EU", "UK", "JP", "DE"} <= {e["country"] for e in a}


def test_runs_as_a_module_for_demos() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sidecar.testing.fake_eodhd", "--port", "0", "--token", "demo-t"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()  # type: ignore[union-attr]
        assert line.startswith("fake EODHD at http://127.0.0.1:")
        base = line.split()[3]
        r = requests.get(f"{base}/eod/EURUSD.FOREX", params={"api_token": "demo-t", "fmt":
                         "json", "from": "2025-01-06", "to": "2025-01-06"}, timeout=5)  # fmt: skip
        assert r.status_code == 200 and r.json()[0]["date"] == "2025-01-06"
    finally:
        proc.terminate()
        deadline = time.monotonic() + 10
        while proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if proc.poll() is None:
            proc.kill()
