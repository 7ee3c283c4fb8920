"""News feeds end to end: a real `sidecar serve` polling a stand-in EODHD server on loopback.

The engine judges by the tick's time; the pollers ask for "yesterday → +7 days" by the wall
clock, so event and news times are set relative to the real now and the ticks sent around them.
"""

from __future__ import annotations

import json
import re
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sidecar.testing import messages
from sidecar.testing.fake_eodhd import FakeEodhd
from sidecar.testing.server import SidecarProcess
from sidecar.testing.waiting import wait_for

NOW = int(time.time()) // 60 * 60
T = NOW + 3 * 3600  # the release: a few hours ahead, inside the polled window
GBPJPY_SPEC = {**messages.USDJPY_SPEC, "name": "GBPJPY", "base": "GBP", "quote": "JPY"}
NFP_RE = re.compile(r'^NEWS_BLACKOUT currency=USD event="Non ?[Ff]arm Payrolls" ')


def _eodhd_date(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _article(ticker: str, t: int, polarity: float | None, n: int) -> dict[str, Any]:
    item: dict[str, Any] = {
        "date": datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00"),
        "title": f"{ticker} headline {n}",
        "content": "text",
        "link": f"https://news.example.com/{ticker}/{n}",
        "symbols": [ticker],
        "tags": [],
    }
    if polarity is not None:
        item["sentiment"] = {"polarity": polarity, "neg": 0.1, "neu": 0.8, "pos": 0.1}
    return item


def _config(tmp: Path, fake: FakeEodhd, name: str, **feeds: Any) -> Path:
    lines = ["[feeds]", f'eodhd_base_url = "{fake.base_url}"']
    for key, value in feeds.items():
        lines.append(f"{key} = {json.dumps(value)}")
    path = tmp / f"{name}.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _start(tmp: Path, fake: FakeEodhd, name: str, **feeds: Any) -> SidecarProcess:
    cfg = _config(tmp, fake, name, **feeds)
    env = {"EODHD_API_TOKEN": fake.token, "EODHD_BASE_URL": fake.base_url}
    return SidecarProcess(tmp / f"{name}.sqlite", config=cfg, env=env).start()


def _get(proc: SidecarProcess, path: str) -> Any:
    with urllib.request.urlopen(f"http://127.0.0.1:{proc.http_port}{path}", timeout=5) as r:
        body = r.read().decode()
    return body if path == "/metrics" else json.loads(body)


# --- blackout ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def blackout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SidecarProcess]:
    tmp = tmp_path_factory.mktemp("blackout")
    events = [
        {
            "type": "Non Farm Payrolls",
            "comparison": None,
            "period": "Oct",
            "country": "US",
            "date": _eodhd_date(T),
            "actual": None,
            "previous": 150.0,
            "estimate": 180.0,
            "change": None,
            "change_percentage": None,
        },
        {  # low impact: never a blackout
            "type": "Baker Hughes Oil Rig Count",
            "comparison": None,
            "period": None,
            "country": "US",
            "date": _eodhd_date(T + 7200),
            "actual": None,
            "previous": 480.0,
            "estimate": 481.0,
            "change": None,
            "change_percentage": None,
        },
    ]
    with FakeEodhd(
        now=datetime.fromtimestamp(NOW, UTC), events=events, news=[], sentiments={}
    ) as fake:
        proc = _start(tmp, fake, "blackout", close_before_event_minutes=10.0)
        try:
            # The EA's terminal calendar has the same release under its own name and id.
            ack = proc.http().send(
                {
                    "v": 1,
                    "type": "calendar",
                    "id": "c-1",
                    "login": 1,
                    "source": "mt5",
                    "events": [
                        {
                            "id": "840030016",
                            "time_gmt": T,
                            "currency": "USD",
                            "importance": "high",
                            "name": "Nonfarm Payrolls",
                            "actual": None,
                            "forecast": 180.0,
                            "previous": 150.0,
                        }
                    ],
                }
            )
            assert ack["ok"] is True

            def merged() -> bool:
                evs = _get(proc, "/v1/state")["news"]["high_impact"]
                return any(sorted(e["sources"]) == ["eodhd", "mt5"] for e in evs)

            wait_for("the EODHD and MT5 events to be merged", merged)
            yield proc
        finally:
            proc.stop()


def _verdict(proc: SidecarProcess, login: int, spec: dict[str, Any], t: int, bid: float) -> dict:
    z = proc.zmq()
    try:
        ack = z.send(messages.hello(login=login, spec=spec, server=t))
        assert ack["ok"] is True
        return z.send(messages.tick(server=t, bid=bid, ask=bid, login=login, symbol=spec["name"]))
    finally:
        z.close()


def test_eurusd_inside_the_window_is_refused_with_the_event(blackout: SidecarProcess) -> None:
    v = _verdict(blackout, 101, messages.EURUSD_SPEC, T - 20 * 60, 1.1)
    assert v["action"] == "hold"
    news = [r for r in v["reasons"] if r.startswith("NEWS_BLACKOUT")]
    # One reason although both sources carry the event: merged, not counted twice.
    assert len(news) == 1, v["reasons"]
    assert NFP_RE.match(news[0]), news[0]
    assert v["reasons"][0] == news[0]  # the veto comes first
    until = datetime.fromtimestamp(T + 3600, UTC).strftime("%Y-%m-%dT%H:%MZ")
    assert f"until={until}" in news[0] and "sources=mt5,eodhd" in news[0]
    cap = [r for r in v["reasons"] if r.startswith("LEVERAGE_CAP")]
    assert cap and "regime=defensive" in cap[0] and "news" in cap[0]
    assert v["leverage_cap"] == 100


def test_eurusd_after_the_window_is_not_refused(blackout: SidecarProcess) -> None:
    v = _verdict(blackout, 102, messages.EURUSD_SPEC, T + 61 * 60, 1.1)
    assert not [r for r in v["reasons"] if r.startswith("NEWS_")], v["reasons"]
    assert v["leverage_cap"] == 300


def test_window_bounds_are_inclusive(blackout: SidecarProcess) -> None:
    at_start = _verdict(blackout, 103, messages.EURUSD_SPEC, T - 30 * 60, 1.1)
    assert NFP_RE.match(at_start["reasons"][0])
    before = _verdict(blackout, 104, messages.EURUSD_SPEC, T - 30 * 60 - 1, 1.1)
    assert not any(r.startswith("NEWS_") for r in before["reasons"])
    at_end = _verdict(blackout, 105, messages.EURUSD_SPEC, T + 60 * 60, 1.1)
    assert NFP_RE.match(at_end["reasons"][0])


def test_positions_are_closed_shortly_before_the_event(blackout: SidecarProcess) -> None:
    z = blackout.zmq()
    try:
        assert z.send(messages.hello(login=107, server=T - 20 * 60))["ok"] is True
        held = [messages.position(7, "EURUSD", volume=0.2)]
        early = z.send(messages.tick(server=T - 20 * 60, bid=1.1, login=107, positions=held))
        assert early["action"] == "hold" and early["close"] == []  # blackout, not yet closing
        late = z.send(messages.tick(server=T - 5 * 60, bid=1.1, login=107, positions=held))
        assert late["action"] == "close"
        assert late["close"] == [{"ticket": 7, "volume": 0.2}]
        assert any(r.startswith("NEWS_CLOSE currency=USD") for r in late["reasons"])
    finally:
        z.close()


def test_gbpjpy_is_not_affected(blackout: SidecarProcess) -> None:
    v = _verdict(blackout, 106, GBPJPY_SPEC, T - 20 * 60, 190.0)
    assert not any(r.startswith("NEWS_") for r in v["reasons"]), v["reasons"]
    assert v["leverage_cap"] == 300


def test_state_and_health_show_the_feeds(blackout: SidecarProcess) -> None:
    news = _get(blackout, "/v1/state")["news"]
    nfp = [e for e in news["high_impact"] if e["time_gmt"] == T]
    assert len(nfp) == 1 and nfp[0]["currency"] == "USD"
    assert not any("Rig Count" in e["event"] for e in news["high_impact"])
    health = _get(blackout, "/health")
    assert health["news"]["enabled"] is True
    cal = health["feeds"]["eodhd_calendar"]
    assert cal["age_s"] is not None and cal["age_s"] >= 0 and cal["stale"] is False
    assert health["feeds"]["mt5_calendar"]["age_s"] is not None
    metrics = _get(blackout, "/metrics")
    assert 'sidecar_feed_age_seconds{source="eodhd_calendar"}' in metrics
    assert re.search(
        r'sidecar_eodhd_calls_total\{endpoint="economic-events",status="200"\} [1-9]', metrics
    )
    assert "sidecar_eodhd_budget_remaining" in metrics


# --- sentiment -----------------------------------------------------------------------------


def _crossing_bars(t_now: int, start: float, step: float, jump: float) -> list[list[float]]:
    """150 hourly bars drifting down, the newest one jumping up: sma_cross sees a buy."""
    last_open = t_now // 3600 * 3600 - 3600
    rows = []
    close = start
    for i in range(150):
        t = last_open - (149 - i) * 3600
        o = close
        close = o + jump if i == 149 else o - step
        rows.append([t, o, max(o, close) + step / 2, min(o, close) - step / 2, close, 100, 0])
    return rows


def test_negative_usd_news_blocks_long_usdjpy_and_lets_long_eurusd_through(
    tmp_path: Path,
) -> None:
    news = [
        _article("USDJPY.FOREX", NOW - 3600, -0.8, 1),
        _article("USDJPY.FOREX", NOW - 7200, -0.75, 2),
        _article("EURUSD.FOREX", NOW - 5400, 0.7, 3),  # EUR up against USD
    ]
    with FakeEodhd(
        now=datetime.fromtimestamp(NOW, UTC), events=[], news=news, sentiments={}
    ) as fake:
        proc = _start(tmp_path, fake, "sentiment", news_tickers=["EURUSD.FOREX", "USDJPY.FOREX"])
        try:
            usd = wait_for(
                "USD sentiment",
                lambda: _get(proc, "/v1/state")["news"]["sentiment"].get("USD"),
            )
            assert usd["score"] < -0.5
            z = proc.zmq()
            t = NOW + 60
            jpy_bars = _crossing_bars(t, 152.0, 0.01, 3.0)
            assert z.send(
                messages.hello(login=7, spec=messages.USDJPY_SPEC, bars=jpy_bars, server=t)
            )["ok"]
            v = z.send(messages.tick(server=t, bid=150.6, ask=150.61, login=7, symbol="USDJPY"))
            assert v["action"] == "hold", v
            assert v["reasons"][0].startswith("NEWS_SENTIMENT currency=USD score=-0.")
            assert v["reasons"][0].endswith(" side=buy")
            assert any(r.startswith("SIGNAL_SMA_CROSS side=buy") for r in v["reasons"])

            eur_bars = _crossing_bars(t, 1.1, 0.0001, 0.03)
            assert z.send(
                messages.hello(login=7, spec=messages.EURUSD_SPEC, bars=eur_bars, server=t)
            )["ok"]
            v = z.send(messages.tick(server=t, bid=1.1155, ask=1.1156, login=7))
            assert v["action"] == "open", v
            assert v["open"]["side"] == "buy"
            assert not any(r.startswith("NEWS_") for r in v["reasons"]), v["reasons"]
            z.close()
        finally:
            proc.stop()


# --- staleness and no source ---------------------------------------------------------------


def test_stale_calendar_with_policy_block_refuses_entries(tmp_path: Path) -> None:
    with FakeEodhd(now=datetime.fromtimestamp(NOW, UTC), events=[], news=[], sentiments={}) as fake:
        fake.fail("/api/economic-events", 503, times=None)
        proc = _start(
            tmp_path,
            fake,
            "stale",
            calendar_interval_seconds=1.0,
            news_tickers=[],
            max_retries=0,
            stale_policy="block",
        )
        try:
            z = proc.zmq()
            assert z.send(messages.hello(login=9, server=NOW))["ok"]
            n = 0

            def stale_verdict() -> dict | None:
                nonlocal n
                n += 1
                v = z.send(messages.tick(server=NOW + n, bid=1.1, login=9, msg_id=f"t-{n}"))
                return v if v["reasons"][0].startswith("NEWS_STALE") else None

            v = wait_for("a NEWS_STALE verdict", stale_verdict)
            assert re.match(
                r"^NEWS_STALE source=eodhd_calendar age_s=\d+ max_s=2$", v["reasons"][0]
            )
            assert v["action"] == "hold"
            assert any("regime=defensive" in r and "news_stale" in r for r in v["reasons"])
            z.close()
            health = _get(proc, "/health")
            cal = health["feeds"]["eodhd_calendar"]
            assert cal["stale"] is True and cal["errors"] >= 1 and "503" in cal["last_error"]
            assert health["status"] == "degraded"
            age = _get(proc, "/v1/state")["news"]["sources"]["eodhd_calendar"]["age_s"]
            assert age >= 2.0  # rounded to 0.1 s in the report; the verdict proved > 2 s
            metrics = _get(proc, "/metrics")
            m = re.search(
                r'sidecar_feed_age_seconds\{source="eodhd_calendar"\} ([0-9.e+]+)', metrics
            )
            assert m and float(m.group(1)) > 0
        finally:
            proc.stop()


def test_stale_calendar_with_policy_ignore_lets_entries_through(tmp_path: Path) -> None:
    with FakeEodhd(now=datetime.fromtimestamp(NOW, UTC), events=[], news=[], sentiments={}) as fake:
        fake.fail("/api/economic-events", 503, times=None)
        proc = _start(
            tmp_path,
            fake,
            "ignore",
            calendar_interval_seconds=1.0,
            news_tickers=[],
            max_retries=0,
            stale_policy="ignore",
        )
        try:
            wait_for(
                "the calendar to go stale",
                lambda: _get(proc, "/health")["feeds"]["eodhd_calendar"].get("errors", 0) >= 3,
            )
            wait_for(
                "age > 2 x interval",
                lambda: _get(proc, "/v1/state")["news"]["sources"]["eodhd_calendar"]["age_s"] > 2.5,
            )
            z = proc.zmq()
            assert z.send(messages.hello(login=9, server=NOW))["ok"]
            v = z.send(messages.tick(server=NOW + 1, bid=1.1, login=9))
            assert not any(r.startswith("NEWS_") for r in v["reasons"]), v["reasons"]
            assert v["leverage_cap"] == 300
            z.close()
        finally:
            proc.stop()


def test_without_any_source_the_gate_is_off_and_health_is_ok(tmp_path: Path) -> None:
    env = {"EODHD_API_TOKEN": ""}
    proc = SidecarProcess(tmp_path / "none.sqlite", env=env).start()
    try:
        health = _get(proc, "/health")
        # An optional source that is not configured is `disabled`, not a degradation.
        assert health["status"] == "ok" and health["problems"] == []
        assert health["sources"]["eodhd"]["status"] == "disabled"
        assert health["news"]["enabled"] is False and "EODHD_API_TOKEN" in health["news"]["reason"]
        lines = [ln for ln in proc.log().splitlines() if '"event":"news.disabled"' in ln]
        assert len(lines) == 1 and '"level":"warning"' in lines[0]
        z = proc.zmq()
        assert z.send(messages.hello(login=5, server=NOW))["ok"]
        v = z.send(messages.tick(server=NOW + 1, bid=1.1, login=5))
        assert not any(r.startswith("NEWS_") for r in v["reasons"])
        # The EA's calendar push is a source: the gate comes on with it.
        ack = z.send(
            {
                "v": 1,
                "type": "calendar",
                "id": "c-1",
                "login": 5,
                "source": "mt5",
                "events": [
                    {
                        "id": "1",
                        "time_gmt": NOW + 600,
                        "currency": "EUR",
                        "importance": "high",
                        "name": "ECB Interest Rate Decision",
                        "actual": None,
                        "forecast": 4.0,
                        "previous": 4.25,
                    }
                ],
            }
        )
        assert ack["ok"] is True
        assert _get(proc, "/health")["news"]["enabled"] is True

        def blocked() -> dict | None:
            v = z.send(messages.tick(server=NOW + 2, bid=1.1, login=5, msg_id="t-b"))
            return v if v["reasons"][0].startswith("NEWS_BLACKOUT currency=EUR") else None

        v = wait_for("the MT5 event to block EURUSD", blocked)
        assert 'event="ECB Interest Rate Decision"' in v["reasons"][0]
        z.close()
    finally:
        proc.stop()
