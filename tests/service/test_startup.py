"""Start-up failures: non-zero exit and one `service.start_failed` JSON line naming the part.

Real `python -m sidecar serve` processes; the busy ports are held by real sockets.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from sidecar.testing.server import SidecarProcess, free_port


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        yield int(s.getsockname()[1])


def _serve(tmp_path: Path, *args: str) -> tuple[int, list[dict], str]:
    out = subprocess.run(
        [sys.executable, "-m", "sidecar", "serve", "--db", str(tmp_path / "s.sqlite"), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = [ln for ln in (out.stdout + out.stderr).splitlines() if ln.strip()]
    records = []
    for line in lines:
        records.append(json.loads(line))  # every line is JSON: no plain uvicorn text
    return out.returncode, records, out.stdout + out.stderr


def _failure(records: list[dict]) -> dict:
    failed = [r for r in records if r["event"] == "service.start_failed"]
    assert len(failed) == 1, records
    assert records[-1] is failed[0]  # the last word, no service.start/stop around it
    assert not any(r["event"] in ("service.start", "service.stop") for r in records)
    return failed[0]


def test_busy_http_port_exits_non_zero(tmp_path: Path, busy_port: int) -> None:
    address = f"127.0.0.1:{busy_port}"
    code, records, _ = _serve(
        tmp_path, "--http", address, "--zmq", f"tcp://127.0.0.1:{free_port()}"
    )
    assert code == 1
    failed = _failure(records)
    assert failed["level"] == "error"
    assert failed["component"] == "server.http" and failed["address"] == address
    assert "in use" in failed["error"].lower() and address in failed["msg"]


def test_busy_zmq_port_exits_non_zero(tmp_path: Path, busy_port: int) -> None:
    endpoint = f"tcp://127.0.0.1:{busy_port}"
    http = f"127.0.0.1:{free_port()}"
    code, records, _ = _serve(tmp_path, "--zmq", endpoint, "--http", http)
    assert code == 1
    failed = _failure(records)
    assert failed["component"] == "server.zmq" and failed["address"] == endpoint
    assert "in use" in failed["error"].lower()
    # The HTTP port bound first was released: a new sidecar can take it at once.
    with socket.socket() as s:
        s.bind(("127.0.0.1", int(http.rsplit(":", 1)[1])))


def test_unusable_database_exits_non_zero(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    db = str(blocker / "s.sqlite")
    code, records, _ = _serve(
        tmp_path, "--db", db, "--zmq", "", "--http", f"127.0.0.1:{free_port()}"
    )
    assert code == 1
    failed = _failure(records)
    assert failed["component"] == "server.db" and failed["address"] == db


def test_invalid_configuration_exits_2_with_every_problem(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[risk]\nrisk_pct = 5\n[server]\nhttp = "0.0.0.0:8765"\n')
    code, records, _ = _serve(tmp_path, "--config", str(config))
    assert code == 2
    failed = _failure(records)
    assert failed["component"] == "config" and failed["address"] == str(config)
    assert len(failed["problems"]) == 2
    assert any(p.startswith("risk.risk_pct") for p in failed["problems"])
    assert any("needs a token" in p for p in failed["problems"])


def test_the_removed_builtin_engine_is_a_configuration_error(tmp_path: Path) -> None:
    config = tmp_path / "old.toml"
    config.write_text('[server]\nzmq_engine = "builtin"\n')
    code, records, _ = _serve(tmp_path, "--config", str(config))
    assert code == 2
    failed = _failure(records)
    assert failed["component"] == "config"
    [problem] = failed["problems"]
    assert problem.startswith("server.zmq_engine: the builtin ZeroMQ engine was removed")
    assert "delete the zmq_engine line" in problem


def test_nothing_to_serve_is_a_start_failure(tmp_path: Path) -> None:
    code, records, _ = _serve(tmp_path, "--zmq", "", "--http", "")
    assert code == 1 and _failure(records)["component"] == "server"


def test_a_normal_stop_still_exits_0(tmp_path: Path) -> None:
    proc = SidecarProcess(tmp_path / "s.sqlite").start()
    assert proc.proc is not None
    proc.stop()  # SIGTERM / TerminateProcess
    if sys.platform != "win32":
        assert proc.proc.returncode == 0
        events = [json.loads(ln)["event"] for ln in proc.log().splitlines() if ln.startswith("{")]
        assert events[-2:] == ["service.signal", "service.stop"]
