"""The metrics catalogue (docs/monitoring.md): every metric is exported by a real sidecar after
a short session, with its type and labels, documented, and its label sets stay bounded when
untrusted input brings 10,000 distinct symbols, reason texts, currencies, logins or statuses."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sidecar.config import load_config
from sidecar.engine.state import AccountState
from sidecar.feeds.eodhd import CallEvent
from sidecar.service.feeds import FeedService
from sidecar.service.handler import Sidecar
from sidecar.service.metrics import (
    MAX_ENDPOINTS,
    MAX_HEARTBEAT_SERIES,
    MAX_LOGINS,
    MAX_REASON_CODES,
    MAX_STATUSES,
    Metrics,
)
from sidecar.service.runner import build
from sidecar.testing import messages as M

ROOT = Path(__file__).resolve().parents[2]
T0 = 1734486000
LOGIN = 12345678

# name -> (type, labels): the catalogue (docs/monitoring.md has the units and meanings).
CATALOGUE: dict[str, tuple[str, tuple[str, ...]]] = {
    "sidecar_verdict_latency_seconds": ("histogram", ("transport",)),
    "sidecar_verdicts_total": ("counter", ("action",)),
    "sidecar_verdict_reasons_total": ("counter", ("reason",)),
    "sidecar_refusals_total": ("counter", ("reason",)),
    "sidecar_invalid_requests_total": ("counter", ("code", "transport")),
    "sidecar_requests_total": ("counter", ("transport", "type")),
    "sidecar_trades_total": ("counter", ("entry", "login")),
    "sidecar_equity": ("gauge", ("login",)),
    "sidecar_balance": ("gauge", ("login",)),
    "sidecar_daily_pnl": ("gauge", ("login",)),
    "sidecar_daily_loss_limit": ("gauge", ("login",)),
    "sidecar_daily_loss_locked": ("gauge", ("login",)),
    "sidecar_drawdown_ratio": ("gauge", ("login",)),
    "sidecar_drawdown_limit_ratio": ("gauge", ("level", "login")),
    "sidecar_mode": ("gauge", ("login", "mode")),
    "sidecar_open_positions": ("gauge", ("login",)),
    "sidecar_effective_leverage_ratio": ("gauge", ("login",)),
    "sidecar_leverage_cap_ratio": ("gauge", ("login",)),
    "sidecar_ea_heartbeat_timestamp_seconds": ("gauge", ("login", "symbol")),
    "sidecar_eodhd_calls_total": ("counter", ("endpoint", "status")),
    "sidecar_eodhd_budget_remaining": ("gauge", ()),
    "sidecar_eodhd_budget_daily": ("gauge", ()),
    "sidecar_feed_age_seconds": ("gauge", ("source",)),
    "sidecar_feed_interval_seconds": ("gauge", ("source",)),
    "sidecar_news_blackouts_active": ("gauge", ("currency",)),
    "sidecar_news_upcoming": ("gauge", ("currency",)),
    "sidecar_news_next_high_impact_timestamp_seconds": ("gauge", ("currency",)),
    "sidecar_journal_backlog": ("gauge", ()),
    "sidecar_journal_write_failing": ("gauge", ()),
    "sidecar_store_write_failing": ("gauge", ()),
    "sidecar_alert_deliveries_total": ("counter", ("result", "target")),
    "sidecar_alert_queue": ("gauge", ("target",)),
    "sidecar_start_time_seconds": ("gauge", ()),
    "sidecar_build_info": ("gauge", ("protocol", "version")),
}
# Registered by the alert relay (sidecar/service/alerts.py), only with a target configured.
RELAY = {"sidecar_alert_deliveries_total", "sidecar_alert_queue"}
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$")


def samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    out = []
    for line in text.splitlines():
        m = SAMPLE.match(line)
        if m and not line.startswith("#"):
            labels = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
            out.append((m.group(1), labels, float(m.group(3))))
    return out


def series(text: str, name: str) -> list[dict[str, str]]:
    return [labels for n, labels, _ in samples(text) if n == name]


def send(sidecar: Sidecar, msg: dict | bytes, transport: str = "zmq") -> dict:
    raw = msg if isinstance(msg, bytes) else json.dumps(msg).encode()
    out, _ = sidecar.handle(raw, transport)
    sidecar.after_reply()
    return json.loads(out)


@pytest.fixture
def sidecar(tmp_path: Path) -> Iterator[Sidecar]:
    config = load_config(None, env={}, overrides={"server": {"db": str(tmp_path / "s.db")}})
    sc = build(config)
    try:
        yield sc
    finally:
        sc.close()


def _session(sc: Sidecar) -> FeedService:
    """hello, ticks on both transports, deals, a loss to the daily-loss lock, a heartbeat, a
    calendar push (a JPY event in ten minutes) and an invalid request."""
    feeds = FeedService(sc)  # not started: its metrics refresh is called directly
    assert send(sc, M.hello(login=LOGIN, server=T0))["ok"]
    held = [M.position(1, volume=0.1)]
    for i, transport in enumerate(("zmq", "http")):
        tick = M.tick(T0 + 60 + i, 1.1, 1.1001, login=LOGIN, positions=held, msg_id=f"t-{i}")
        assert send(sc, tick, transport)["type"] == "verdict"
    assert send(sc, M.trade(11, login=LOGIN, entry="in", time=T0 + 70, position=1))["ok"]
    out = M.trade(12, login=LOGIN, entry="out", profit=-400.0, time=T0 + 71, position=1)
    assert send(sc, out)["ok"]
    v = send(sc, M.tick(T0 + 80, 1.1, 1.1001, login=LOGIN, equity=9600.0, msg_id="t-9"))
    assert v["reasons"][0].startswith("RISK_DAILY_LOSS"), v
    beat = {"v": 1, "type": "heartbeat", "id": "hb", "login": LOGIN, "symbol": "EURUSD"}
    assert send(sc, {**beat, "time": {"server": T0 + 90, "gmt": T0 + 90}})["ok"]
    event = {
        "id": "jp-1",
        "time_gmt": int(time.time()) + 600,
        "currency": "JPY",
        "importance": "high",
        "name": "BoJ Interest Rate Decision",
        "actual": None,
        "forecast": 0.5,
        "previous": 0.5,
    }
    calendar = {"v": 1, "type": "calendar", "id": "c", "login": LOGIN, "source": "mt5"}
    assert send(sc, {**calendar, "events": [event]}, "http")["ok"]
    assert send(sc, b"{not json")["error"]["code"] == "BAD_JSON"
    feeds._rebuild_events()
    feeds.refresh_metrics()
    feeds._on_call(_call_event("economic-events", "200"))
    return feeds


def _call_event(endpoint: str, status: str) -> CallEvent:
    return CallEvent(endpoint=endpoint, status=status, cost=1, latency_ms=1.0, attempt=1)


def test_a_session_exports_the_whole_catalogue(sidecar: Sidecar) -> None:
    _session(sidecar)
    text = sidecar.metrics.render().decode()
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    for name, (kind, labels) in CATALOGUE.items():
        if name in RELAY:
            continue
        assert types.get(name) == kind, (name, types.get(name))
        sample_name = f"{name}_count" if kind == "histogram" else name
        got = series(text, sample_name)
        assert got, f"{name}: no samples"
        assert {tuple(sorted(s)) for s in got} == {labels}, (name, got)
    exported = {n for n in types if n.startswith("sidecar_")}
    assert exported <= set(CATALOGUE), exported - set(CATALOGUE)  # nothing undocumented


def test_session_values(sidecar: Sidecar) -> None:
    _session(sidecar)
    text = sidecar.metrics.render().decode()
    values = {(n, tuple(sorted(lab.items()))): v for n, lab, v in samples(text)}

    def one(name: str, **labels: str) -> float:
        return values[(name, tuple(sorted(labels.items())))]

    lg = str(LOGIN)
    assert one("sidecar_daily_loss_locked", login=lg) == 1.0
    assert one("sidecar_equity", login=lg) == 9600.0
    assert one("sidecar_daily_loss_limit", login=lg) == pytest.approx(300.0)  # 3 % of 10,000
    assert one("sidecar_daily_pnl", login=lg) == pytest.approx(-400.0)
    assert one("sidecar_drawdown_ratio", login=lg) == pytest.approx(0.04)
    assert one("sidecar_drawdown_limit_ratio", login=lg, level="halted") == pytest.approx(0.15)
    assert one("sidecar_mode", login=lg, mode="active") == 1.0
    assert one("sidecar_open_positions", login=lg) == 0.0
    assert one("sidecar_refusals_total", reason="RISK_DAILY_LOSS") == 1.0
    assert one("sidecar_invalid_requests_total", code="BAD_JSON", transport="zmq") == 1.0
    assert one("sidecar_trades_total", login=lg, entry="out") == 1.0
    assert one("sidecar_news_blackouts_active", currency="JPY") == 1.0
    next_at = one("sidecar_news_next_high_impact_timestamp_seconds", currency="JPY")
    assert 0 < next_at - time.time() <= 600
    assert one("sidecar_feed_interval_seconds", source="mt5_calendar") == 900.0
    beat = one("sidecar_ea_heartbeat_timestamp_seconds", login=lg, symbol="EURUSD")
    assert abs(beat - time.time()) < 3600  # wall clock, not the EA's clock
    assert one("sidecar_verdict_latency_seconds_count", transport="http") == 1.0
    assert one("sidecar_eodhd_calls_total", endpoint="economic-events", status="200") == 1.0


def test_the_catalogue_is_documented() -> None:
    doc = (ROOT / "docs" / "monitoring.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `(sidecar_[a-z_]+)` \| ([a-z]+) \|", doc, re.M))
    assert set(rows) == set(CATALOGUE), set(rows) ^ set(CATALOGUE)
    for name, (kind, _labels) in CATALOGUE.items():
        assert rows[name] == kind, name


def test_promtool_accepts_the_exposition(sidecar: Sidecar, tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool not found: apt-get install -y prometheus (scripts/test.sh does)")
    _session(sidecar)
    out = subprocess.run(
        [promtool, "check", "metrics"],
        input=sidecar.metrics.render(),
        capture_output=True,
        timeout=30,
    )
    # promtool lints names (units, _total, ...): no complaint at all.
    assert out.returncode == 0 and not out.stdout.strip() and not out.stderr.strip(), (
        out.stdout.decode() + out.stderr.decode()
    )


# --- bounded label sets ---------------------------------------------------------------------


def test_10000_symbols_keep_the_heartbeat_series_bounded(sidecar: Sidecar) -> None:
    for i in range(10_000):
        msg = {"v": 1, "type": "heartbeat", "id": f"h{i}", "login": LOGIN, "symbol": f"S{i:05d}"}
        assert send(sidecar, {**msg, "time": {"server": T0, "gmt": T0}})["ok"]
    got = series(sidecar.metrics.render().decode(), "sidecar_ea_heartbeat_timestamp_seconds")
    assert len(got) <= MAX_HEARTBEAT_SERIES + 1
    assert {"login": str(LOGIN), "symbol": "other"} in got
    assert {"login": str(LOGIN), "symbol": "S09999"} in got  # the newest are kept by name


def test_10000_reason_texts_keep_the_reason_series_bounded() -> None:
    m = Metrics()
    for i in range(10_000):
        # distinct codes, free text and numbers: the label is the code, capped
        m.count_verdict(("hold", f"CODE_{i} detail={i}", f"free text {i}", "RISK_COOLDOWN n=1"))
    text = m.render().decode()
    reasons = series(text, "sidecar_verdict_reasons_total")
    assert len(reasons) <= MAX_REASON_CODES + 1
    total = sum(v for n, _, v in samples(text) if n == "sidecar_verdict_reasons_total")
    assert total == 30_000  # nothing lost: the rest counts as `other`
    assert series(text, "sidecar_refusals_total") == [{"reason": "RISK_COOLDOWN"}]


def test_10000_logins_currencies_endpoints_and_statuses_stay_bounded() -> None:
    m = Metrics()
    for i in range(10_000):
        m.account(i, AccountState(login=i, equity=1000.0, balance=1000.0, last_gmt=i))
        m.count_trade(i, "out")
        m.count_eodhd(f"endpoint-{i}", str(i))
        m.count_invalid(f"CODE_{i}", "zmq")
    m.set_news({f"C{i:04d}": 1.0 for i in range(10_000)}, {}, {f"X{i}": 1.0 for i in range(99)})
    text = m.render().decode()
    assert len(series(text, "sidecar_equity")) == MAX_LOGINS
    assert {"login": "9999"} in series(text, "sidecar_equity")  # the most recently seen
    assert len(series(text, "sidecar_trades_total")) <= MAX_LOGINS + 1
    eodhd = series(text, "sidecar_eodhd_calls_total")
    assert len({s["endpoint"] for s in eodhd}) <= MAX_ENDPOINTS + 1
    assert len({s["status"] for s in eodhd}) <= MAX_STATUSES + 1
    assert len(series(text, "sidecar_invalid_requests_total")) <= 2 * 9 + 1
    assert len(series(text, "sidecar_news_blackouts_active")) == 1  # not currency codes
    assert series(text, "sidecar_news_next_high_impact_timestamp_seconds") == [
        {"currency": "other"}
    ]
    assert len(text) < 200_000
