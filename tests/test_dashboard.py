"""The Grafana dashboard (configs/grafana/): built from code, valid for file provisioning, every
PromQL expression accepted by promtool, and every panel showing data from a real Prometheus
that scrapes a real `sidecar serve` driven through a short session.

Grafana itself is not in Debian, so the dashboard is checked the way Grafana would load it
(the provisioning format) and its queries are run where Grafana would send them: Prometheus.
Grafana's `$__rate_interval` and the `$login` variable are substituted first (1m, `.*`).
Needs Debian's `prometheus` package (promtool and the server), which `scripts/test.sh` installs:
its absence fails.
"""

from __future__ import annotations

import importlib.util
import json
import math
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from sidecar.testing import messages
from sidecar.testing.fake_eodhd import FakeEodhd
from sidecar.testing.server import SidecarProcess, free_port
from sidecar.testing.waiting import wait_for

ROOT = Path(__file__).resolve().parent.parent
GRAFANA = ROOT / "configs" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "sidecar.json"
PANEL_TYPES = {"row", "stat", "timeseries", "state-timeline", "table"}
LOGIN = 5001


def _load_builder() -> Any:
    spec = importlib.util.spec_from_file_location(
        "build_dashboard", ROOT / "scripts" / "build_dashboard.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text(encoding="utf-8"))


def _targets(dash: dict[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    return [(p, t) for p in dash["panels"] if p["type"] != "row" for t in p["targets"]]


def _promql(expr: str) -> str:
    """What Grafana sends Prometheus, for this test's short session."""
    return expr.replace("$__rate_interval", "1m").replace("$login", ".*")


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not found: apt-get install -y prometheus (scripts/test.sh does)")
    return path


# --- built from code, valid for provisioning -------------------------------------------------


def test_the_committed_json_is_what_the_builder_makes() -> None:
    assert _load_builder().render() == DASHBOARD.read_text(encoding="utf-8"), (
        "configs/grafana/dashboards/sidecar.json is stale: run scripts/build_dashboard.py"
    )


def test_dashboard_json_is_a_provisionable_dashboard() -> None:
    raw = DASHBOARD.read_text(encoding="utf-8")
    dash = json.loads(raw)
    assert "__inputs" not in dash and "${DS_" not in raw  # exported-with-inputs files fail
    assert "dashboard" not in dash  # the bare object, not the API wrapper
    assert dash.get("id") is None
    assert 8 <= len(dash["uid"]) <= 40 and dash["title"]
    assert isinstance(dash["schemaVersion"], int)
    assert dash["time"] == {"from": "now-6h", "to": "now"}
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)) and all(isinstance(i, int) and i > 0 for i in ids)
    for p in dash["panels"]:
        assert p["type"] in PANEL_TYPES, p["type"]
        g = p["gridPos"]
        assert 1 <= g["w"] <= 24 and g["x"] + g["w"] <= 24 and g["h"] >= 1 and g["y"] >= 0
        if p["type"] == "row":
            continue
        assert p["title"] and p["targets"], p
        assert p["datasource"] == {"type": "prometheus", "uid": "prometheus"}
        assert isinstance(p["options"], dict) and isinstance(p["fieldConfig"]["defaults"], dict)
        refs = [t["refId"] for t in p["targets"]]
        assert len(refs) == len(set(refs))
        for t in p["targets"]:
            assert t["expr"].strip() and t["refId"]
    (var,) = dash["templating"]["list"]
    assert var["name"] == "login" and var["datasource"]["uid"] == "prometheus"
    # The panels, by title.
    titles = " | ".join(p["title"] for p in dash["panels"])
    for part in (
        "Breaker mode",
        "Equity",
        "Drawdown against its limits",
        "Daily P/L against its limit",
        "Breaker mode over time",
        "Verdicts by action",
        "Refusals by reason",
        "Verdict latency p50 / p99",
        "EODHD calls",
        "EODHD errors",
        "EODHD budget",
        "Feed ages",
        "Active blackouts",
        "Next high-impact event",
        "EA heartbeat ages",
    ):
        assert part in titles, part


def test_provisioning_files_point_at_the_dashboard_and_datasource() -> None:
    ds = yaml.safe_load((GRAFANA / "provisioning/datasources/prometheus.yaml").read_text())
    assert ds["apiVersion"] == 1
    (source,) = ds["datasources"]
    assert source["type"] == "prometheus" and source["uid"] == "prometheus"
    assert source["access"] == "proxy" and source["url"].startswith("http")
    prov = yaml.safe_load((GRAFANA / "provisioning/dashboards/sidecar.yaml").read_text())
    assert prov["apiVersion"] == 1
    (provider,) = prov["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]
    assert provider["name"] and provider["allowUiUpdates"] is False


def test_every_expression_passes_promtool(tmp_path: Path) -> None:
    promtool = _binary("promtool")
    rules = [
        {"record": f"dashboard:panel{p['id']}_{t['refId']}", "expr": _promql(t["expr"])}
        for p, t in _targets(_dashboard())
    ]
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    out = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"{len(rules)} rules found" in out.stdout


# --- every panel has data from a real Prometheus scraping a real sidecar ---------------------


class Prometheus:
    def __init__(self, binary: str, tmp: Path, target: str) -> None:
        self.port = free_port()
        config = tmp / "prometheus.yml"
        config.write_text(
            yaml.safe_dump(
                {
                    "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                    "scrape_configs": [
                        {
                            "job_name": "sidecar",
                            "scrape_interval": "1s",
                            "scrape_timeout": "1s",
                            "static_configs": [{"targets": [target]}],
                        }
                    ],
                }
            )
        )
        self.log = tmp / "prometheus.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [
                    binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={tmp / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--storage.tsdb.retention.time=1h",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = f"http://127.0.0.1:{self.port}/api/v1/query?" + urllib.parse.urlencode(
            {"query": expr}
        )
        with urllib.request.urlopen(url, timeout=5) as r:
            body = json.loads(r.read())
        assert body["status"] == "success", body
        return body["data"]["result"]

    def ready(self) -> bool:
        try:
            return bool(self.query('up{job="sidecar"} == 1'))
        except OSError:
            return False

    def scrapes(self) -> int:
        """Samples of `up` so far (one per scrape)."""
        got = self.query('count_over_time(up{job="sidecar"}[1h])')
        return int(float(got[0]["value"][1])) if got else 0

    def wait_scrapes(self, n: int) -> None:
        start = self.scrapes()
        wait_for(f"{n} scrapes", lambda: self.scrapes() >= start + n)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


def _crossing_bars(t_now: int, start: float, step: float, jump: float) -> list[list[float]]:
    """150 hourly bars drifting down, the newest one jumping up: sma_cross sees a buy."""
    last_open = t_now // 3600 * 3600 - 3600
    rows, close = [], start
    for i in range(150):
        t = last_open - (149 - i) * 3600
        o = close
        close = o + jump if i == 149 else o - step
        rows.append([t, o, max(o, close) + step / 2, min(o, close) - step / 2, close, 100, 0])
    return rows


@pytest.fixture
def live(tmp_path: Path) -> Iterator[tuple[SidecarProcess, Prometheus, FakeEodhd]]:
    prometheus = _binary("prometheus")
    with FakeEodhd(events=[], news=[], sentiments={}) as fake:
        fake.fail("/api/economic-events", 503, times=1)  # one error for the errors panel
        cfg = tmp_path / "sidecar.toml"
        cfg.write_text(
            "[feeds]\n"
            f'eodhd_base_url = "{fake.base_url}"\n'
            'news_tickers = ["EURUSD.FOREX"]\n'
            "[alerts]\n"
            f'db = "{tmp_path / "alerts.sqlite"}"\n'
            "[[alerts.dingtalk]]\n"
            'name = "oncall"\n'
            'webhook = "http://127.0.0.1:9/robot/send?access_token=unused"\n'
        )
        env = {"EODHD_API_TOKEN": fake.token, "EODHD_BASE_URL": fake.base_url}
        proc = SidecarProcess(tmp_path / "sidecar.sqlite", config=cfg, env=env).start()
        prom = Prometheus(prometheus, tmp_path, f"127.0.0.1:{proc.http_port}")
        try:
            wait_for("Prometheus to scrape the sidecar", prom.ready, timeout=30)
            yield proc, prom, fake
        finally:
            prom.stop()
            proc.stop()


def _session(proc: SidecarProcess, prom: Prometheus) -> None:
    """hello, ticks to an open, the deals, a loss to a daily-loss lock, a heartbeat, a calendar
    push and an invalid request, over both transports and spread across several scrapes (a
    rate needs two samples of a moving counter)."""
    now = int(time.time()) // 60 * 60
    t = now + 60
    z, h = proc.zmq(), proc.http()
    try:
        bars = _crossing_bars(t, 1.1, 0.0001, 0.03)
        assert z.send(messages.hello(login=LOGIN, bars=bars, server=t))["ok"]
        v = z.send(messages.tick(server=t, bid=1.1155, ask=1.1156, login=LOGIN, msg_id="t-1"))
        assert v["action"] == "open", v
        prom.wait_scrapes(2)
        held = [messages.position(1, volume=v["open"]["volume"], price_open=1.1156)]
        for i, client in enumerate((z, h, z, h)):
            tick = messages.tick(
                server=t + 1 + i, bid=1.1155, login=LOGIN, positions=held, msg_id=f"t-{2 + i}"
            )
            assert client.send(tick)["action"] == "hold"
        assert h.send(messages.trade(11, login=LOGIN, entry="in", time=t + 5, position=1))["ok"]
        out = messages.trade(12, login=LOGIN, entry="out", profit=-400.0, time=t + 6, position=1)
        assert h.send(out)["ok"]
        for i, client in enumerate((z, h)):
            tick = messages.tick(
                server=t + 7 + i, bid=1.1, login=LOGIN, equity=9600.0, msg_id=f"t-{6 + i}"
            )
            v = client.send(tick)
            assert v["reasons"][0].startswith("RISK_DAILY_LOSS"), v
        beat = {
            "v": 1,
            "type": "heartbeat",
            "id": "hb-1",
            "login": LOGIN,
            "symbol": "EURUSD",
            "time": {"server": t + 9, "gmt": t + 9},
        }
        assert h.send(beat)["ok"]
        event = {
            "id": "392-cpi",
            "time_gmt": int(time.time()) + 600,  # high impact in 10 minutes: a JPY blackout
            "currency": "JPY",
            "importance": "high",
            "name": "BoJ Interest Rate Decision",
            "actual": None,
            "forecast": 0.5,
            "previous": 0.5,
        }
        calendar = {
            "v": 1,
            "type": "calendar",
            "id": "c-1",
            "login": LOGIN,
            "source": "mt5",
            "events": [event],
        }
        assert h.send(calendar)["ok"]
        assert json.loads(z.raw(b"{not json"))["error"]["code"] == "BAD_JSON"
    finally:
        z.close()
        h.close()


def test_every_panel_shows_data_from_a_real_prometheus(
    live: tuple[SidecarProcess, Prometheus, FakeEodhd],
) -> None:
    proc, prom, _fake = live
    _session(proc, prom)
    wait_for(
        "the lock, the blackout and an EODHD error to be scraped",
        lambda: (
            prom.query(f'sidecar_daily_loss_locked{{login="{LOGIN}"}} == 1')
            and prom.query('sidecar_news_blackouts_active{currency="JPY"} > 0')
            and prom.query('sidecar_eodhd_calls_total{status="503"}')
        ),
    )
    prom.wait_scrapes(2)
    empty = []
    for panel, target in _targets(_dashboard()):
        result = prom.query(_promql(target["expr"]))
        values = [float(r["value"][1]) for r in result]
        if not any(math.isfinite(x) for x in values):
            empty.append(f"{panel['title']} [{target['refId']}]: {target['expr']} -> {result}")
    assert not empty, "panels without data:\n" + "\n".join(empty)
    # A few values the session fixes.
    (mode,) = prom.query(_promql(_dashboard()["panels"][1]["targets"][0]["expr"]))
    assert mode["metric"] == {"login": str(LOGIN)} and float(mode["value"][1]) == 0.0
    (pnl,) = prom.query(f'sidecar_daily_pnl{{login="{LOGIN}"}}')
    (limit,) = prom.query(f'sidecar_daily_loss_limit{{login="{LOGIN}"}}')
    assert float(pnl["value"][1]) <= -float(limit["value"][1]) < 0
    refusals = prom.query('sidecar_refusals_total{reason="RISK_DAILY_LOSS"} >= 2')
    assert refusals, prom.query("sidecar_refusals_total")
