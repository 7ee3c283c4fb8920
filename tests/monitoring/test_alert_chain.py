"""The whole alert chain, end to end, with real processes on loopback:

    sidecar serve --(GET /metrics)--> Prometheus (the shipped rules) --> Alertmanager (the shipped
    routing) --(POST /alerts/alertmanager)--> the sidecar's relay --> a stand-in DingTalk robot

The test drives a session into a daily-loss lock (hello, an opening tick, the entry deal, a losing
exit, a losing tick); DailyLossLockActive fires; the robot, which checks every signature and
takes markdown only, gets one message naming it. Alertmanager re-sends the group (and Prometheus
re-sends the alert) several times: the robot still has one message. Two ticks of the next broker
day lift the lock: one "resolved" message follows, and only one.

The Prometheus and Alertmanager configurations are generated from configs/prometheus/prometheus.yml
and configs/alertmanager/alertmanager.yml with short intervals (1 s scrapes, evaluations and
groups, a 2 s repeat) and loopback ports; the rule files are the shipped ones, unchanged, so
their `for:` durations hold (DailyLossLockActive waits its 30 s). Every wait is bounded.

A second test posts alerts straight to Alertmanager: a halted account's DailyLossLockActive is
inhibited (never reaches the robot) while another account's is delivered.

Needs Debian's `prometheus` and `prometheus-alertmanager` (without them these tests FAIL).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from sidecar.testing import messages
from sidecar.testing.fake_dingtalk import FakeDingTalk
from sidecar.testing.server import SidecarProcess, free_port

ROOT = Path(__file__).resolve().parents[2]
PROM_CONFIG = ROOT / "configs" / "prometheus" / "prometheus.yml"
AM_CONFIG = ROOT / "configs" / "alertmanager" / "alertmanager.yml"
SHIPPED_RELAY_URL = "http://127.0.0.1:8765/alerts/alertmanager"
SECRET = "SECe2e0123456789abcdefghijklmnopqrstuvwxyz"
MOBILE = "13800000001"
ROWS = messages.eurusd_rows()[:311]  # bar 310 closes with an SMA cross: the tick opens
LOGIN = 4242
T = TypeVar("T")


# --------------------------------------------------------------------------- processes


def binary(*names: str) -> str:
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    pytest.fail(
        f"{' or '.join(names)} not found: install Debian's prometheus and "
        "prometheus-alertmanager (scripts/test.sh does when run as root)"
    )


class Daemon:
    """A real Prometheus or Alertmanager on a loopback port, its output in a log file."""

    def __init__(self, name: str, cmd: list[str], port: int, log: Path) -> None:
        self.name, self.port, self.log = name, port, log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_for(f"{name} ready", self._ready, 30, self)
        except BaseException:
            self.stop()
            raise

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _ready(self) -> bool:
        if self.proc.poll() is not None:
            pytest.fail(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as resp:
                return resp.status == 200
        except OSError:
            return False

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=5) as resp:
            body = resp.read()
        return json.loads(body) if body[:1] in (b"{", b"[") else body.decode()

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of `name` with these labels on the daemon's own /metrics."""
        total = 0.0
        for family in text_string_to_metric_families(self.get("/metrics")):
            for s in family.samples:
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    total += s.value
        return total

    def tail(self) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-40:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def wait_for(what: str, probe: Callable[[], T], timeout: float, *logs: Any) -> T:
    """Poll `probe` until it returns something truthy; fail after `timeout` seconds with the
    processes' logs."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            tails = "\n\n".join(f"--- {getattr(d, 'name', d)}\n{tail(d)}" for d in logs)
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{tails}")
        time.sleep(0.2)


def tail(d: Any) -> str:
    if isinstance(d, Daemon):
        return d.tail()
    if isinstance(d, SidecarProcess):
        return "\n".join(d.log().splitlines()[-40:])
    return repr(d)


# --------------------------------------------------------------------------- configuration


def shorten(route: dict[str, Any]) -> None:
    """Test intervals for a route and its children (only where the shipped file sets them)."""
    for key, value in (("group_wait", "1s"), ("group_interval", "1s"), ("repeat_interval", "2s")):
        if key in route:
            route[key] = value
    for child in route.get("routes", []):
        shorten(child)


def alertmanager_config(path: Path, relay_url: str) -> Path:
    doc = yaml.safe_load(AM_CONFIG.read_text(encoding="utf-8"))
    shorten(doc["route"])
    for receiver in doc["receivers"]:
        for hook in receiver["webhook_configs"]:
            assert hook["url"] == SHIPPED_RELAY_URL
            hook["url"] = relay_url
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def prometheus_config(path: Path, sidecar_port: int, am_port: int) -> Path:
    doc = yaml.safe_load(PROM_CONFIG.read_text(encoding="utf-8"))
    doc["global"].update(scrape_interval="1s", scrape_timeout="1s", evaluation_interval="1s")
    # the shipped rule files, as they are (paths were relative to the shipped config)
    doc["rule_files"] = [str(PROM_CONFIG.parent / f) for f in doc["rule_files"]]
    (am,) = doc["alerting"]["alertmanagers"]
    am["static_configs"] = [{"targets": [f"127.0.0.1:{am_port}"]}]
    (job,) = [j for j in doc["scrape_configs"] if j["job_name"] == "sidecar"]
    job.update(scrape_interval="1s", scrape_timeout="1s")
    job["static_configs"] = [{"targets": [f"127.0.0.1:{sidecar_port}"]}]
    doc["scrape_configs"] = [job]  # no host exporters, Prometheus or Alertmanager jobs here
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def sidecar_config(path: Path, robot: FakeDingTalk) -> Path:
    path.write_text(
        "[alerts]\n"
        f"db = {json.dumps(str(path.parent / 'relay.sqlite'))}\n"
        "[[alerts.dingtalk]]\n"
        'name = "ops"\n'
        f"webhook = {json.dumps(robot.webhook)}\n"
        f"secret = {json.dumps(robot.secret)}\n"
        "[alerts.dingtalk.mentions.critical]\n"
        f'at_mobiles = ["{MOBILE}"]\n',
        encoding="utf-8",
    )
    return path


class Chain:
    def __init__(
        self, robot: FakeDingTalk, sidecar: SidecarProcess, am: Daemon, prom: Daemon | None
    ) -> None:
        self.robot, self.sidecar, self.am, self.prom = robot, sidecar, am, prom

    @property
    def logs(self) -> list[Any]:
        return [p for p in (self.sidecar, self.am, self.prom) if p is not None]


def start_chain(tmp: Path, with_prometheus: bool) -> Iterator[Chain]:
    started: list[Any] = []
    robot = FakeDingTalk(secret=SECRET).start()
    try:
        config = sidecar_config(tmp / "sidecar.toml", robot)
        env = {"EODHD_API_TOKEN": ""}  # no real EODHD calls from a developer's environment
        sidecar = SidecarProcess(tmp / "sidecar.sqlite", config, env=env).start()
        started.append(sidecar)
        relay = f"http://127.0.0.1:{sidecar.http_port}/alerts/alertmanager"
        am_port = free_port()
        am = Daemon(
            "alertmanager",
            [
                binary("prometheus-alertmanager", "alertmanager"),
                f"--config.file={alertmanager_config(tmp / 'alertmanager.yml', relay)}",
                f"--storage.path={tmp / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{am_port}",
                "--cluster.listen-address=",  # no gossip port: one Alertmanager
            ],
            am_port,
            tmp / "alertmanager.log",
        )
        started.append(am)
        prom = None
        if with_prometheus:
            prom_port = free_port()
            prom_yml = prometheus_config(tmp / "prometheus.yml", sidecar.http_port, am_port)
            prom = Daemon(
                "prometheus",
                [
                    binary("prometheus"),
                    f"--config.file={prom_yml}",
                    f"--storage.tsdb.path={tmp / 'prom-data'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                    # re-send firing and resolved alerts every second: Alertmanager sees the same
                    # alert over and over, as it would over hours in production
                    "--rules.alert.resend-delay=1s",
                ],
                prom_port,
                tmp / "prometheus.log",
            )
            started.append(prom)
        yield Chain(robot, sidecar, am, prom)
    finally:
        for p in reversed(started):
            p.stop()
        robot.stop()


@pytest.fixture
def chain(tmp_path: Path) -> Iterator[Chain]:
    yield from start_chain(tmp_path, with_prometheus=True)


@pytest.fixture
def am_chain(tmp_path: Path) -> Iterator[Chain]:
    yield from start_chain(tmp_path, with_prometheus=False)


# --------------------------------------------------------------------------- helpers


def sidecar_metric(sidecar: SidecarProcess, name: str, **labels: str) -> float | None:
    http = sidecar.http()
    try:
        status, text = http.get("/metrics")
    finally:
        http.close()
    assert status == 200
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return None


def settled_metric(sidecar: SidecarProcess, name: str, want: float, **labels: str) -> float | None:
    """The metric once it shows `want`, or its value after 5 s: the gauges move in the
    bookkeeping that runs just after a reply went out, so a scrape right after may precede it."""
    deadline = time.monotonic() + 5.0
    while True:
        value = sidecar_metric(sidecar, name, **labels)
        if value == want or time.monotonic() > deadline:
            return value
        time.sleep(0.02)


def prom_query(prom: Daemon, expr: str) -> list[dict[str, Any]]:
    answer = prom.get("/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    assert answer["status"] == "success", answer
    return answer["data"]["result"]


def titles(robot: FakeDingTalk) -> list[str]:
    return [m["markdown"]["title"] for m in list(robot.messages)]


def drive_into_daily_loss_lock(sidecar: SidecarProcess) -> int:
    """hello, an opening tick, the entry deal, a losing exit, a losing tick: 3.45 % down on the
    day, past risk.daily_loss_pct (3 %). Returns the server time of the last tick."""
    c = sidecar.http()
    try:
        t_open = int(ROWS[310][0]) + 3600
        hello = messages.hello(login=LOGIN, bars=ROWS[:310], server=int(ROWS[309][0]) + 3600)
        assert c.send(hello)["ok"]
        bar = ROWS[310]
        tick = messages.tick(t_open, bar[4], bar[4] + 0.00007, login=LOGIN, bars=[bar])
        verdict = c.send(tick)
        assert verdict["action"] == "open", verdict
        assert c.send(messages.trade(1, login=LOGIN, time=t_open, position=77))["ok"]
        out = messages.trade(2, login=LOGIN, entry="out", profit=-340.0, time=t_open + 60)
        out["position"] = 77
        assert c.send(out)["ok"]
        tick = messages.tick(t_open + 90, bar[4], login=LOGIN, equity=9655.25, msg_id="t-2")
        verdict = c.send(tick)
        assert any(r.startswith("RISK_DAILY_LOSS") for r in verdict["reasons"]), verdict
    finally:
        c.close()
    return t_open + 90


def next_broker_day(sidecar: SidecarProcess, last: int) -> None:
    """Two ticks of the next broker day (the second rolls the day over): the lock lifts."""
    c = sidecar.http()
    try:
        for i, t in enumerate((last + 86400, last + 86460)):
            tick = messages.tick(t, ROWS[310][4], login=LOGIN, equity=9655.25, msg_id=f"d2-{i}")
            assert c.send(tick)["type"] == "verdict"
    finally:
        c.close()


# --------------------------------------------------------------------------- the tests


def test_a_daily_loss_lock_reaches_dingtalk_once_and_its_end_once(chain: Chain) -> None:
    robot, sidecar, am, prom = chain.robot, chain.sidecar, chain.am, chain.prom
    assert prom is not None
    logs = chain.logs
    wait_for(
        "Prometheus scraping the sidecar",
        lambda: [r for r in prom_query(prom, 'up{job="sidecar"} == 1')],
        30,
        *logs,
    )

    last = drive_into_daily_loss_lock(sidecar)
    assert settled_metric(sidecar, "sidecar_daily_loss_locked", 1.0, login=str(LOGIN)) == 1.0

    # The rule's `for: 30s`, then Alertmanager (group_wait 1 s), the relay and the robot.
    firing = wait_for("the firing message", lambda: titles(robot), 75, *logs)
    assert firing == ["[FIRING:1] DailyLossLockActive"], firing
    (message,) = robot.messages
    assert message["msgtype"] == "markdown"
    text = message["markdown"]["text"]
    assert text.startswith("### [FIRING:1] DailyLossLockActive\n")
    assert "#### 🔥 FIRING [CRITICAL] DailyLossLockActive" in text
    # the rule's annotations, rendered by Prometheus with the account's own numbers
    assert (
        f"**Account {LOGIN} hit its daily loss limit: no new entries until the next broker day**"
        in text
    )
    assert (
        f"account {LOGIN} is at -344.75 for the broker day, past its daily loss limit of "
        "300.00 (account currency)" in text
    )
    assert "The EA: opens nothing more today (RISK\\_DAILY\\_LOSS)" in text
    assert f"login={LOGIN}" in text and "job=sidecar" in text
    assert "- runbook: docs/alerting.md#dailylosslockactive" in text
    assert text.rstrip().endswith(f"@{MOBILE}")  # critical: the configured mention
    assert message["at"]["atMobiles"] == [MOBILE]

    # Alertmanager repeats the group (repeat_interval 2 s here, 12 h shipped) and Prometheus
    # re-sends the alert every second: the relay posts nothing more.
    sent = am.metric("alertmanager_notifications_total", integration="webhook")
    wait_for(
        "Alertmanager to notify the relay three more times",
        lambda: am.metric("alertmanager_notifications_total", integration="webhook") >= sent + 3,
        30,
        *logs,
    )
    assert titles(robot) == ["[FIRING:1] DailyLossLockActive"]
    assert am.metric("alertmanager_notifications_failed_total", integration="webhook") == 0

    # The next broker day by the request clock lifts the lock: one "resolved" message.
    next_broker_day(sidecar, last)
    assert settled_metric(sidecar, "sidecar_daily_loss_locked", 0.0, login=str(LOGIN)) == 0.0
    wait_for("the resolved message", lambda: len(robot.messages) >= 2, 30, *logs)
    resolved = robot.messages[1]
    assert resolved["markdown"]["title"] == "[RESOLVED:1] DailyLossLockActive"
    assert "#### ✅ RESOLVED [CRITICAL] DailyLossLockActive" in resolved["markdown"]["text"]
    assert "- resolved: " in resolved["markdown"]["text"]
    assert resolved["at"]["atMobiles"] == []  # resolved messages mention nobody

    # Prometheus keeps re-sending the resolved alert (resend-delay 1 s) and Alertmanager keeps
    # flushing its group every second: still one "resolved" message.
    received = am.metric("alertmanager_alerts_received_total", status="resolved")
    wait_for(
        "Prometheus to re-send the resolved alert three more times",
        lambda: am.metric("alertmanager_alerts_received_total", status="resolved") >= received + 3,
        30,
        *logs,
    )
    assert titles(robot) == [
        "[FIRING:1] DailyLossLockActive",
        "[RESOLVED:1] DailyLossLockActive",
    ]
    # every message was signed correctly and accepted (errcode 0), and the relay counted them
    assert robot.answers == [0, 0]
    assert (
        settled_metric(sidecar, "sidecar_alert_deliveries_total", 2, target="ops", result="ok") == 2
    )
    assert am.metric("alertmanager_notifications_failed_total", integration="webhook") == 0


def post_alerts(am: Daemon, alerts: list[dict[str, str]]) -> None:
    body = json.dumps(
        [
            {
                "labels": labels,
                "annotations": {"summary": f"{labels['alertname']} on {labels['login']}"},
                "generatorURL": "http://127.0.0.1:9090/graph",
            }
            for labels in alerts
        ]
    ).encode()
    req = urllib.request.Request(
        am.url + "/api/v2/alerts", body, {"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=5) as resp:
        assert resp.status == 200


def test_a_halted_account_does_not_also_page_for_its_daily_lock(am_chain: Chain) -> None:
    robot, am = am_chain.robot, am_chain.am
    common = {"job": "sidecar", "instance": "127.0.0.1:8765", "severity": "critical"}
    post_alerts(
        am,
        [
            {**common, "alertname": "DrawdownHalted", "login": "7001", "mode": "halted"},
            {**common, "alertname": "DailyLossLockActive", "login": "7001"},
            {**common, "alertname": "DailyLossLockActive", "login": "7002"},
        ],
    )
    # The two groups that are not inhibited may reach the relay together and leave as one
    # merged message: look at the announced alerts, not the message count.
    wait_for(
        "DrawdownHalted of 7001 and DailyLossLockActive of 7002",
        lambda: (
            {("DrawdownHalted", "7001"), ("DailyLossLockActive", "7002")} <= set(announced(robot))
        ),
        30,
        *am_chain.logs,
    )

    def suppressed() -> list[dict[str, Any]]:
        return [
            a
            for a in am.get("/api/v2/alerts")
            if a["labels"]["alertname"] == "DailyLossLockActive"
            and a["status"]["state"] == "suppressed"
        ]

    (inhibited,) = wait_for("the inhibited alert", suppressed, 10, *am_chain.logs)
    assert inhibited["labels"]["login"] == "7001"
    assert inhibited["status"]["inhibitedBy"]

    # More notification rounds (repeat 2 s): the inhibited alert never reaches the robot.
    sent = am.metric("alertmanager_notifications_total", integration="webhook")
    wait_for(
        "Alertmanager to notify the relay twice more",
        lambda: am.metric("alertmanager_notifications_total", integration="webhook") >= sent + 2,
        30,
        *am_chain.logs,
    )
    assert sorted(announced(robot)) == [("DailyLossLockActive", "7002"), ("DrawdownHalted", "7001")]
    assert set(robot.answers) == {0}


def announced(robot: FakeDingTalk) -> list[tuple[str, str]]:
    """(alertname, login) of every firing alert block in the robot's messages."""
    out = []
    for m in list(robot.messages):
        for block in m["markdown"]["text"].split("\n#### ")[1:]:
            name = block.split("\n", 1)[0].rsplit(" ", 1)[-1]
            login = re.search(r"login=(\d+)", block)
            assert block.startswith("🔥 FIRING") and login, block
            out.append((name, login.group(1)))
    return out


def test_the_generated_configs_only_shorten_intervals(tmp_path: Path) -> None:
    """What the chain test runs is the shipped configuration with test intervals and ports."""
    am = yaml.safe_load(alertmanager_config(tmp_path / "am.yml", "http://x/").read_text())
    shipped = yaml.safe_load(AM_CONFIG.read_text(encoding="utf-8"))
    assert am["inhibit_rules"] == shipped["inhibit_rules"]
    assert am["route"]["group_by"] == shipped["route"]["group_by"]
    assert [r["matchers"] for r in am["route"]["routes"]] == [
        r["matchers"] for r in shipped["route"]["routes"]
    ]
    prom = yaml.safe_load(prometheus_config(tmp_path / "p.yml", 1, 2).read_text())
    assert prom["rule_files"] == [str(PROM_CONFIG.parent / "rules" / "*.yml")]
    assert os.path.isabs(prom["rule_files"][0])
