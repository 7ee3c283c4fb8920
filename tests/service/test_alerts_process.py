"""The alert relay as processes: `sidecar alert-relay` restarted on its SQLite file remembers
what it sent, and `sidecar serve` relays at POST /alerts/alertmanager behind its token."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from sidecar.testing.fake_dingtalk import FakeDingTalk
from sidecar.testing.server import SidecarProcess, free_port
from tests.service.test_alerts import SECRET, alert, payload, post

TOKEN = "relay-bearer-token-0123456789"


def write_config(path: Path, robot: FakeDingTalk, port: int) -> Path:
    path.write_text(
        "[alerts]\n"
        f"db = {json.dumps(str(path.parent / 'relay.sqlite'))}\n"
        f'http = "127.0.0.1:{port}"\n'
        "[[alerts.dingtalk]]\n"
        'name = "ops"\n'
        f"webhook = {json.dumps(robot.webhook)}\n"
        f"secret = {json.dumps(robot.secret)}\n"
        "[alerts.dingtalk.mentions.critical]\n"
        'at_mobiles = ["13800000001"]\n',
        encoding="utf-8",
    )
    return path


class RelayProcess:
    def __init__(self, config: Path, port: int, log: Path) -> None:
        self.port = port
        self.log = log
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "sidecar", "alert-relay", "--config", str(config)],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while True:
            assert self.proc.poll() is None, log.read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1):
                    return
            except OSError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)

    def post(self, body: dict, token: str | None = None) -> tuple[int, dict]:
        return post(f"http://127.0.0.1:{self.port}/alerts/alertmanager", body, token)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(20)


def test_a_restarted_relay_process_remembers_what_it_sent(tmp_path: Path) -> None:
    with FakeDingTalk(secret=SECRET) as robot:
        port = free_port()
        config = write_config(tmp_path / "relay.toml", robot, port)
        log = tmp_path / "relay.log"
        body = payload(alert("DailyLossLockActive"))

        relay = RelayProcess(config, port, log)
        try:
            status, answer = relay.post(body)
            assert (status, answer["new"]) == (200, 1)
        finally:
            relay.stop()
        assert len(robot.messages) == 1
        assert robot.messages[0]["at"]["atMobiles"] == ["13800000001"]

        relay = RelayProcess(config, port, log)  # a new process on the same SQLite file
        try:
            status, answer = relay.post(body)  # Alertmanager's repeat after the restart
            assert (status, answer["new"], answer["duplicates"]) == (200, 0, 1)
            assert len(robot.messages) == 1
            relay.post(payload(alert("DailyLossLockActive", status="resolved")))
            assert [m["markdown"]["title"] for m in robot.messages] == [
                "[FIRING:1] DailyLossLockActive",
                "[RESOLVED:1] DailyLossLockActive",
            ]
        finally:
            relay.stop()
        text = log.read_text(encoding="utf-8")
        assert '"event":"alerts.start"' in text and '"event":"alerts.delivered"' in text
        assert robot.token not in text and SECRET not in text


def test_serve_relays_behind_its_token(tmp_path: Path) -> None:
    with FakeDingTalk(secret=SECRET) as robot:
        config = write_config(tmp_path / "sidecar.toml", robot, free_port())
        with SidecarProcess(
            tmp_path / "s.sqlite", config=config, env={"SIDECAR_TOKEN": TOKEN}
        ) as sidecar:
            url = f"http://127.0.0.1:{sidecar.http_port}/alerts/alertmanager"
            body = payload(alert("SidecarDown"))
            assert post(url, body)[0] == 401  # Alertmanager must send the bearer token
            assert robot.messages == []
            status, answer = post(url, body, TOKEN)
            assert (status, answer["targets"]) == (200, {"ops": "ok"})
            assert post(url, body, TOKEN)[1]["duplicates"] == 1
            assert len(robot.messages) == 1
            with urllib.request.urlopen(
                f"http://127.0.0.1:{sidecar.http_port}/metrics", timeout=5
            ) as r:
                metrics = r.read().decode()
            assert 'sidecar_alert_deliveries_total{result="ok",target="ops"} 1.0' in metrics
            assert 'sidecar_alert_queue{target="ops"} 0.0' in metrics
        text = sidecar.log()
        assert robot.token not in text and SECRET not in text
