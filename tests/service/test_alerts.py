"""Alert relay: Alertmanager v4 payloads -> DingTalk markdown / Slack, once per state change.

Real parts only: the relay's app served by uvicorn on loopback, its SQLite file in tmp_path, and
stand-in DingTalk and Slack servers (sidecar/testing) that check signatures and formats. Rate
windows, retries and the repeat interval run on a clock the test passes in and moves by hand:
nothing here waits for or asserts on real time.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from sidecar.config import Config, ConfigError, load_config
from sidecar.service.alerts import AlertRelay, create_relay_app
from sidecar.service.alerts_delivery import dingtalk_sign, signed_url
from sidecar.testing.fake_dingtalk import FakeDingTalk
from sidecar.testing.fake_slack import FakeSlack
from sidecar.testing.server import free_port

SECRET = "SECfake0123456789abcdef0123456789abcdef0123456789abcdef01234567"
T0 = 1_780_000_000.0


class Clock:
    """The relay's (and the stand-in robot's) clock: moves only when the test says."""

    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class LiveRelay:
    """An AlertRelay behind create_relay_app, served by uvicorn in a thread on loopback."""

    def __init__(self, config: Config, clock: Clock, token: str = "") -> None:
        self.relay = AlertRelay(config.alerts, clock=clock)  # no background loop: tests flush
        self.port = free_port()
        self.server = uvicorn.Server(
            uvicorn.Config(
                create_relay_app(self.relay, token),
                host="127.0.0.1",
                port=self.port,
                log_config=None,
                access_log=False,
                lifespan="off",
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)

    def post(
        self, body: Any, path: str = "/alerts/alertmanager", token: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        return post(f"http://127.0.0.1:{self.port}{path}", body, token)

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            return r.read().decode()

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.relay.close()


def post(url: str, body: Any, token: str | None = None) -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method="POST")
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def alert(
    name: str,
    status: str = "firing",
    severity: str = "critical",
    fp: str | None = None,
    starts: str = "2026-12-06T10:00:00Z",
    **labels: str,
) -> dict[str, Any]:
    return {
        "status": status,
        "labels": {"alertname": name, "severity": severity, "job": "sidecar", **labels},
        "annotations": {
            "summary": f"{name} on account 1001",
            "description": f"What happened with {name}; what the EA does; what to do.",
        },
        "startsAt": starts,
        "endsAt": "2026-12-06T11:00:00Z" if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "http://prometheus.example:9090/graph?g0.expr=up",
        "fingerprint": fp or f"fp-{name.lower()}",
    }


def payload(*alerts: dict[str, Any], **extra: Any) -> dict[str, Any]:
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    return {
        "version": "4",
        "groupKey": '{}:{alertname="x"}',
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "relay",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager.example:9093",
        "alerts": list(alerts),
        **extra,
    }


def config(tmp: Path, **alerts: Any) -> Config:
    return Config.model_validate({"alerts": {"db": str(tmp / "alerts.sqlite"), **alerts}})


def titles(robot: FakeDingTalk | FakeSlack) -> list[str]:
    key = "markdown"
    return [m[key]["title"] if key in m else m["text"] for m in robot.messages]


def all_text(messages: list[dict[str, Any]]) -> str:
    return "\n".join(json.dumps(m, ensure_ascii=False) for m in messages)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def robot(clock: Clock) -> Iterator[FakeDingTalk]:
    with FakeDingTalk(secret=SECRET, clock=clock) as fake:
        yield fake


def dingtalk(robot: FakeDingTalk, **extra: Any) -> dict[str, Any]:
    return {"name": "ops", "webhook": robot.webhook, "secret": robot.secret, **extra}


@pytest.fixture
def live(tmp_path: Path, clock: Clock, robot: FakeDingTalk) -> Iterator[LiveRelay]:
    relay = LiveRelay(config(tmp_path, dingtalk=[dingtalk(robot)]), clock)
    yield relay
    relay.close()


# ------------------------------------------------------------------------ signing and format


def test_signature_is_the_documented_one_encoded_once() -> None:
    # DingTalk's doc example shape: base64 with "/", "+" or "=" must be %-encoded exactly once.
    sign = dingtalk_sign("SECabc", 1_700_000_000_000)
    assert "%" in sign and "%25" not in sign
    url = signed_url("https://oapi.dingtalk.com/robot/send?access_token=t", "SECabc", 1)
    assert re.fullmatch(r".*\?access_token=t&timestamp=1&sign=[A-Za-z0-9%]+", url)
    assert signed_url("https://x/robot/send?access_token=t", "", 1).endswith("access_token=t")


def test_firing_is_announced_once_as_signed_markdown(live: LiveRelay, robot: FakeDingTalk) -> None:
    body = payload(alert("DailyLossLockActive"))
    status, answer = live.post(body)
    assert (status, answer["new"], answer["targets"]) == (200, 1, {"ops": "ok"})
    assert robot.answers == [0]  # signature and format checked by the stand-in
    (message,) = robot.messages
    assert message["msgtype"] == "markdown"
    assert message["markdown"]["title"].startswith("[FIRING:1] DailyLossLockActive")
    text = message["markdown"]["text"]
    assert "DailyLossLockActive on account 1001" in text and "what to do" in text
    assert "job=sidecar" in text and "2026-12-06 10:00:00 UTC" in text

    # Alertmanager's replays (a retry, the group re-sent, an HA peer): nothing more.
    for _ in range(3):
        status, answer = live.post(body)
        assert (status, answer["new"], answer["duplicates"]) == (200, 0, 1)
    assert len(robot.messages) == 1

    # Resolved: one "resolved" message, and its replay nothing.
    resolved = payload(alert("DailyLossLockActive", status="resolved"))
    assert live.post(resolved)[0] == 200
    assert live.post(resolved)[0] == 200
    assert len(robot.messages) == 2
    assert robot.messages[1]["markdown"]["title"].startswith("[RESOLVED:1] DailyLossLockActive")
    assert "resolved: 2026-12-06 11:00:00 UTC" in robot.messages[1]["markdown"]["text"]

    # It fires again (a new startsAt): a new episode, announced.
    again = payload(alert("DailyLossLockActive", starts="2026-12-06T12:00:00Z"))
    assert live.post(again)[0] == 200
    assert titles(robot)[2].startswith("[FIRING:1]")


def test_a_group_resent_with_one_new_alert_announces_only_that_one(
    live: LiveRelay, robot: FakeDingTalk
) -> None:
    live.post(payload(alert("EAHeartbeatStale")))
    live.post(payload(alert("EAHeartbeatStale"), alert("CalendarFeedStale", severity="warning")))
    assert len(robot.messages) == 2
    second = robot.messages[1]["markdown"]["text"]
    assert "CalendarFeedStale" in second and "EAHeartbeatStale" not in second


def test_still_firing_is_repeated_after_repeat_hours_only(
    live: LiveRelay, robot: FakeDingTalk, clock: Clock
) -> None:
    body = payload(alert("DrawdownHalted"))
    live.post(body)
    clock.advance(11 * 3600)  # Alertmanager's repeat_interval, shorter than ours
    live.post(body)
    assert len(robot.messages) == 1
    clock.advance(3600)  # 12 h after the announcement
    live.post(body)
    live.post(body)
    assert len(robot.messages) == 2
    assert robot.messages[1]["markdown"]["title"].startswith("[STILL FIRING:1] DrawdownHalted")


# --------------------------------------------------------------------------- rate and size


def test_25_alerts_in_a_minute_reach_the_robot_in_at_most_20_messages_naming_all(
    live: LiveRelay, robot: FakeDingTalk, clock: Clock
) -> None:
    names = [f"Alert{i:02d}" for i in range(25)]
    answers = []
    for name in names:  # 25 notifications (e.g. group_by: ['...']) in 50 s
        answers.append(live.post(payload(alert(name))))
        clock.advance(2)
    assert all(status == 200 for status, _ in answers)
    assert {a["targets"]["ops"] for _, a in answers} == {"ok", "queued"}
    assert len(robot.messages) == 20  # the window's share, none of them refused
    assert set(robot.answers) == {0}

    clock.advance(11)  # the first message left the window: one more may go, all merged
    live.relay.flush_due()
    assert len(robot.messages) == 21 and set(robot.answers) == {0}
    last = robot.messages[-1]["markdown"]
    assert last["title"].startswith("[FIRING:5]")
    shown = all_text(robot.messages)
    assert all(name in shown for name in names)
    assert live.relay.store.pending_count("ops") == 0


def test_25_alerts_in_one_notification_are_one_message(
    live: LiveRelay, robot: FakeDingTalk
) -> None:
    names = [f"Alert{i:02d}" for i in range(25)]
    live.post(payload(*(alert(n) for n in names)))
    (message,) = robot.messages
    assert message["markdown"]["title"].startswith("[FIRING:25] Alert00, Alert01, Alert02 +22")
    assert all(n in message["markdown"]["text"] for n in names)


def test_messages_stay_under_dingtalks_size_limit_naming_every_alert(
    live: LiveRelay, robot: FakeDingTalk
) -> None:
    names = [f"VeryLongAlertName{i:03d}" for i in range(400)]
    alerts = [alert(n) for n in names]
    for a in alerts:
        a["annotations"]["description"] = "x" * 5000
        a["annotations"]["summary"] = "s" * 300
    status, _ = live.post(payload(*alerts))
    assert status == 200
    assert set(robot.answers) == {0}  # the stand-in refuses bodies of 20,000 bytes and more
    assert 1 < len(robot.messages) <= 20
    sizes = [len(json.dumps(m, ensure_ascii=False).encode()) for m in robot.messages]
    assert max(sizes) < 20_000
    n = len(robot.messages)
    assert [t[: len(f"({n}/{n})")] for t in titles(robot)][-1] == f"({n}/{n})"
    shown = all_text(robot.messages)
    assert all(name in shown for name in names)


def test_truncated_alerts_are_said(live: LiveRelay, robot: FakeDingTalk) -> None:
    live.post(payload(alert("A"), truncatedAlerts=7))
    assert "left 7 more alert(s)" in robot.messages[0]["markdown"]["text"]


# ------------------------------------------------------------------------------- failures


@pytest.mark.parametrize("fault", ["http500", "errcode-1", "timeout"])
def test_a_transient_failure_answers_5xx_and_the_retry_delivers_once(
    tmp_path: Path, clock: Clock, robot: FakeDingTalk, fault: str
) -> None:
    live = LiveRelay(config(tmp_path, dingtalk=[dingtalk(robot)], timeout_seconds=0.5), clock)
    try:
        body = payload(alert("SidecarDown"))
        robot.fail(fault)
        status, answer = live.post(body)
        assert (status, answer["status"], answer["targets"]) == (503, "retry", {"ops": "error"})
        assert robot.messages == []
        status, answer = live.post(body)  # Alertmanager retries
        assert (status, answer["targets"]) == (200, {"ops": "ok"})
        assert live.post(body)[0] == 200  # and its next notification of the group
        live.relay.flush_due()
        assert len(robot.messages) == 1
        metrics = live.metrics()
        assert 'sidecar_alert_deliveries_total{result="error",target="ops"} 1.0' in metrics
        assert 'sidecar_alert_deliveries_total{result="ok",target="ops"} 1.0' in metrics
    finally:
        live.close()


def test_the_relay_retries_by_itself_after_a_failure(
    live: LiveRelay, robot: FakeDingTalk, clock: Clock
) -> None:
    body = payload(alert("SidecarDown"))
    robot.fail("http500")
    assert live.post(body)[0] == 503
    live.relay.flush_due()  # not yet: the retry waits a few seconds
    assert robot.messages == []
    clock.advance(5)
    live.relay.flush_due()
    assert len(robot.messages) == 1
    assert live.post(body)[0] == 200  # Alertmanager's retry, late: nothing more
    assert len(robot.messages) == 1


def test_dingtalk_throttling_waits_and_merges(
    live: LiveRelay, robot: FakeDingTalk, clock: Clock
) -> None:
    robot.fail("throttle")
    status, answer = live.post(payload(alert("A")))
    assert (status, answer["targets"]) == (200, {"ops": "rate_limited"})  # kept: no AM retry
    live.post(payload(alert("B")))  # the robot is throttled: not even tried
    assert robot.answers == [130101]
    clock.advance(60)
    live.relay.flush_due()
    assert len(robot.messages) == 1 and "[FIRING:2] A, B" in titles(robot)[0]


def test_a_wrong_secret_is_logged_with_its_errcode_counted_and_never_shown(
    tmp_path: Path, clock: Clock, robot: FakeDingTalk, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = "SECwrong9876543210fedcba9876543210fedcba9876543210fedcba98765"
    live = LiveRelay(config(tmp_path, dingtalk=[dingtalk(robot, secret=wrong)]), clock)
    try:
        with caplog.at_level(logging.DEBUG):  # urllib3 logs request lines at DEBUG
            status, answer = live.post(payload(alert("SidecarDown")))
            clock.advance(600)
            live.relay.flush_due()  # retried every 10 minutes: a fixed config delivers it
        assert (status, answer["targets"]) == (200, {"ops": "rejected"})
        assert robot.answers == [310000, 310000] and robot.messages == []
        rejected = [r for r in caplog.records if getattr(r, "event", "") == "alerts.rejected"]
        assert rejected and rejected[0].errcode == 310000  # type: ignore[attr-defined]
        assert "errcode 310000: sign not match" in rejected[0].getMessage()
        metrics = live.metrics()
        assert 'sidecar_alert_deliveries_total{result="rejected",target="ops"} 2.0' in metrics
        shown = (
            "\n".join(f"{r.getMessage()} {r.__dict__!r}" for r in caplog.records)
            + json.dumps(answer)
            + metrics
        )
        assert any(r.name.startswith("urllib3") for r in caplog.records)
        for secret in (wrong, robot.token, dingtalk_sign(wrong, 1)[:8]):
            assert secret not in shown
        assert "sign=***" in shown and not re.search(r"(sign|timestamp)=[^*]", shown)
    finally:
        live.close()


def test_timeouts_and_unreachable_robots_never_show_the_webhook(
    tmp_path: Path, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()  # nothing listens there
    webhook = f"http://127.0.0.1:{port}/robot/send?access_token=tok-unreachable-1234567"
    live = LiveRelay(
        config(tmp_path, dingtalk=[{"name": "ops", "webhook": webhook, "secret": SECRET}]), clock
    )
    try:
        with caplog.at_level(logging.DEBUG):
            status, answer = live.post(payload(alert("A")))
        assert status == 503
        text = "\n".join(f"{r.getMessage()} {r.__dict__!r}" for r in caplog.records)
        assert "unreachable (ConnectionError)" in text
        for secret in ("tok-unreachable", SECRET):
            assert secret not in text + json.dumps(answer) + live.metrics()
        assert not re.search(r"(sign|timestamp)=[^*]", text)
    finally:
        live.close()


# ------------------------------------------------------------------------------- restarts


def test_a_new_relay_on_the_same_file_remembers(
    tmp_path: Path, clock: Clock, robot: FakeDingTalk
) -> None:
    cfg = config(tmp_path, dingtalk=[dingtalk(robot, max_per_minute=1)])
    first = LiveRelay(cfg, clock)
    first.post(payload(alert("A")))
    assert first.post(payload(alert("B")))[1]["targets"] == {"ops": "queued"}  # window full
    first.close()

    second = LiveRelay(cfg, clock)
    try:
        assert second.post(payload(alert("A")))[1]["new"] == 0  # announced before the restart
        second.relay.flush_due()
        assert len(robot.messages) == 1  # B still waits for the window (it held over)
        clock.advance(60)
        second.relay.flush_due()
        assert titles(robot) == ["[FIRING:1] A", "[FIRING:1] B"]
        second.post(payload(alert("A", status="resolved")))
        clock.advance(60)
        second.relay.flush_due()
        assert titles(robot)[2] == "[RESOLVED:1] A"
    finally:
        second.close()


# ------------------------------------------------------------------- mentions, Slack, routes


def test_mentions_follow_the_severity(tmp_path: Path, clock: Clock, robot: FakeDingTalk) -> None:
    mentions = {
        "critical": {"at_mobiles": ["13800000001"], "is_at_all": True},
        "default": {"at_user_ids": ["manager01"]},
    }
    live = LiveRelay(config(tmp_path, dingtalk=[dingtalk(robot, mentions=mentions)]), clock)
    try:
        live.post(payload(alert("Crit")))
        live.post(payload(alert("Warn", severity="warning")))
        live.post(payload(alert("Crit", status="resolved")))
        crit, warn, resolved = robot.messages
        assert crit["at"] == {"atMobiles": ["13800000001"], "atUserIds": [], "isAtAll": True}
        assert crit["markdown"]["text"].endswith("@13800000001")
        assert warn["at"] == {"atMobiles": [], "atUserIds": ["manager01"], "isAtAll": False}
        assert warn["markdown"]["text"].endswith("@manager01")
        assert resolved["at"] == {"atMobiles": [], "atUserIds": [], "isAtAll": False}
    finally:
        live.close()


def test_slack_messages_and_several_targets(
    tmp_path: Path, clock: Clock, robot: FakeDingTalk
) -> None:
    with FakeSlack() as slack:
        cfg = config(
            tmp_path,
            dingtalk=[dingtalk(robot)],
            slack=[{"name": "team", "webhook": slack.webhook}],
        )
        live = LiveRelay(cfg, clock)
        try:
            body = payload(alert("LeverageNearCap", severity="warning", symbol="<EURUSD>"))
            slack.fail("http500")
            status, answer = live.post(body)
            assert (status, answer["targets"]) == (503, {"ops": "ok", "team": "error"})
            assert live.post(body)[1]["targets"] == {"ops": "ok", "team": "ok"}
            assert len(robot.messages) == 1 and len(slack.messages) == 1  # once each
            (message,) = slack.messages
            assert message["text"] == "[FIRING:1] LeverageNearCap"
            section = message["blocks"][1]["text"]
            assert section["type"] == "mrkdwn"
            assert "*🔥 FIRING [WARNING] LeverageNearCap*" in section["text"]
            assert "symbol=&lt;EURUSD&gt;" in section["text"]  # Slack's escaping
            assert "<http://prometheus.example:9090/graph?g0.expr=up|graph>" in section["text"]

            # A target by name: only that one.
            only = payload(alert("Other"))
            assert live.post(only, path="/alerts/alertmanager/team")[0] == 200
            assert len(slack.messages) == 2 and len(robot.messages) == 1
            status, answer = live.post(only, path="/alerts/alertmanager/nobody")
            assert status == 404 and "ops, team" in answer["error"]
        finally:
            live.close()


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"not json", "body: expected JSON"),
        ({"version": "3", "alerts": []}, "version: expected"),
        ({"version": "4", "alerts": [{"status": "odd"}]}, "alerts.0.status"),
        ({"version": "4", "alerts": [{"status": "firing", "labels": {}}]}, "alerts.0.startsAt"),
    ],
)
def test_a_body_that_is_not_a_v4_payload_is_a_400(
    live: LiveRelay, robot: FakeDingTalk, body: Any, problem: str
) -> None:
    status, answer = live.post(body)
    assert status == 400 and problem in answer["error"]
    assert robot.messages == []


def test_the_relay_asks_for_the_token(tmp_path: Path, clock: Clock, robot: FakeDingTalk) -> None:
    live = LiveRelay(config(tmp_path, dingtalk=[dingtalk(robot)]), clock, token="tok-relay")
    try:
        assert live.post(payload(alert("A")))[0] == 401
        assert live.post(payload(alert("A")), token="wrong")[0] == 401
        assert live.post(payload(alert("A")), token="tok-relay")[0] == 200
        assert len(robot.messages) == 1
    finally:
        live.close()


# ------------------------------------------------------------------------- configuration


def test_configuration_errors_name_the_field_and_never_show_a_secret(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        "[alerts]\n"
        "repeat_hours = -1\n"
        "[[alerts.dingtalk]]\n"
        'name = "ops"\n'
        'webhook = "oapi.dingtalk.com/robot/send?access_token=tok-secret-77"\n'
        "secret = 12345\n"
        "max_per_minute = 30\n"
        "[alerts.dingtalk.mentions.critical]\n"
        'at_mobile = ["1"]\n'
        "[[alerts.dingtalk]]\n"
        'name = "two words"\n'
        'webhook = "https://oapi.dingtalk.com/robot/send?access_token=t2"\n'
        "[[alerts.slack]]\n"
        'name = "team"\n'
    )
    with pytest.raises(ConfigError) as err:
        load_config(bad, env={})
    problems = err.value.problems
    text = "\n".join(problems)
    for field in (
        "alerts.repeat_hours",
        "alerts.dingtalk.0.webhook",
        "alerts.dingtalk.0.secret",
        "alerts.dingtalk.0.max_per_minute",
        "alerts.dingtalk.0.mentions.critical.at_mobile",
        "alerts.dingtalk.1.name",
        "alerts.slack.0.webhook: field required",
    ):
        assert any(p.startswith(field) for p in problems) or field in text, (field, problems)
    assert "tok-secret-77" not in text and "12345" not in text

    dup = tmp_path / "dup.toml"
    dup.write_text(
        '[[alerts.dingtalk]]\nname = "ops"\nwebhook = "https://x/robot/send?access_token=a"\n'
        '[[alerts.slack]]\nname = "ops"\nwebhook = "https://hooks.slack.com/services/T/B/C"\n'
    )
    with pytest.raises(ConfigError, match=r"alerts\.slack\.0\.name: 'ops' is already"):
        load_config(dup, env={})


def test_a_remote_relay_address_needs_the_token() -> None:
    with pytest.raises(ConfigError, match=r"alerts\.http: '0\.0\.0\.0:8766' binds"):
        load_config(None, env={}, overrides={"alerts": {"http": "0.0.0.0:8766"}})
    cfg = load_config(None, env={"SIDECAR_TOKEN": "t"}, overrides={"alerts": {"http": ":8766"}})
    assert cfg.alerts.http == ":8766"


def test_concurrent_copies_of_a_notification_send_one_message(
    live: LiveRelay, robot: FakeDingTalk
) -> None:
    # An HA pair of Alertmanagers (or a retry racing the original) posts the same group at once.
    body = payload(alert("SidecarDown"), alert("EAHeartbeatStale"))
    results: list[int] = []
    threads = [
        threading.Thread(target=lambda: results.append(live.post(body)[0])) for _ in range(8)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == [200] * 8
    assert len(robot.messages) == 1
    assert robot.messages[0]["markdown"]["title"].startswith("[FIRING:2]")


def test_the_background_loop_delivers_what_failed(tmp_path: Path) -> None:
    # The real clock here: the loop's own retry (5 s after a failure) is what is checked.
    with FakeDingTalk(secret=SECRET) as robot:
        relay = AlertRelay(config(tmp_path, dingtalk=[dingtalk(robot)]).alerts).start()
        try:
            robot.fail("http500")
            status, _ = relay.receive(json.dumps(payload(alert("SidecarDown"))).encode())
            assert status == 503 and robot.messages == []
            deadline = time.monotonic() + 30
            while not robot.messages and time.monotonic() < deadline:
                time.sleep(0.1)
            assert len(robot.messages) == 1
            assert relay.store.pending_count("ops") == 0
        finally:
            relay.close()


def test_serve_without_targets_opens_nothing_and_answers_503(tmp_path: Path) -> None:
    from sidecar.service.handler import Sidecar
    from sidecar.service.http_app import create_app
    from sidecar.store import Store

    cfg = Config.model_validate(
        {"server": {"db": str(tmp_path / "s.sqlite")}, "alerts": {"db": str(tmp_path / "a.db")}}
    )
    sidecar = Sidecar(cfg, Store(cfg.server.db))
    app = create_app(sidecar)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive()
            time.sleep(0.02)
        status, answer = post(f"http://127.0.0.1:{port}/alerts/alertmanager", payload(alert("A")))
        assert status == 503 and "no [[alerts.dingtalk]]" in answer["error"]
        assert app.state.alert_relay is None and not (tmp_path / "a.db").exists()
    finally:
        server.should_exit = True
        thread.join(10)
        sidecar.close()
