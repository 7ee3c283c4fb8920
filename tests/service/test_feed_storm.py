"""A storm of 429s and slow replies from EODHD: every tick still gets its verdict, and the
sidecar never sends more requests than its budget allows."""

from __future__ import annotations

import json
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from sidecar.testing import messages
from sidecar.testing.fake_eodhd import FakeEodhd
from sidecar.testing.server import SidecarProcess

PER_MINUTE = 12
DAILY = 200


def storm(fake: FakeEodhd, rounds: int = 500) -> None:
    """Every path: two 429s (Retry-After 1 s), then two replies slower than the read timeout."""
    for _ in range(rounds):
        fake.fail("/api", 429, times=2, retry_after=1)
        fake.slow("/api", 3.0, times=2)


def test_storm_does_not_stop_verdicts_nor_exceed_the_budget(tmp_path: Path) -> None:
    now = int(time.time())
    with FakeEodhd(now=datetime.fromtimestamp(now, UTC), events=[], news=[], sentiments={}) as fake:
        storm(fake)
        cfg = tmp_path / "storm.toml"
        cfg.write_text(
            "[feeds]\n"
            "calendar_interval_seconds = 1.0\nnews_interval_seconds = 1.0\n"
            "sentiments_interval_seconds = 1.0\nrequest_timeout_seconds = 0.5\n"
            f"max_retries = 3\nbudget_per_minute = {PER_MINUTE}\nbudget_daily_calls = {DAILY}\n"
            'stale_policy = "block"\n'
        )
        env = {"EODHD_API_TOKEN": fake.token, "EODHD_BASE_URL": fake.base_url}
        with SidecarProcess(tmp_path / "storm.sqlite", config=cfg, env=env) as proc:
            z = proc.zmq(timeout_ms=5000)
            assert z.send(messages.hello(login=3, server=now))["ok"]
            replies = []
            deadline = time.monotonic() + 8.0  # stream through several refresh rounds
            i = 0
            while time.monotonic() < deadline or i < 500:
                i += 1
                replies.append(
                    z.send(messages.tick(server=now + i, bid=1.1, login=3, msg_id=f"t-{i}"))
                )
            z.close()
            with urllib.request.urlopen(f"http://127.0.0.1:{proc.http_port}/v1/state") as r:
                budget = json.loads(r.read())["news"]["budget"]
            with urllib.request.urlopen(f"http://127.0.0.1:{proc.http_port}/metrics") as r:
                metrics = r.read().decode()
        requests = fake.requests
    assert [r["id"] for r in replies] == [f"t-{k}" for k in range(1, i + 1)]
    assert all(r["type"] == "verdict" for r in replies)
    # The feed really stormed and the budget really had to refuse.
    assert any(r.status == 429 for r in requests)
    assert sum(budget["refused"].values()) > 0
    assert 'status="budget_refused"' in metrics and 'status="429"' in metrics
    # Never more than the per-minute limit in any 60 s window, as the fake server saw them.
    times = sorted(r.at for r in requests)
    assert times
    for k, t0 in enumerate(times):
        in_window = sum(1 for t in times[k:] if t - t0 < 60.0)
        assert in_window <= PER_MINUTE, (k, in_window)
    assert budget["used_today"] <= DAILY
    assert budget["requests_last_minute"] <= PER_MINUTE
