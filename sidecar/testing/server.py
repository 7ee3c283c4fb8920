"""Run a real `sidecar serve` process on free loopback ports (tests, benchmark, demos)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from sidecar.testing.client import HttpClient, ZmqClient


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SidecarProcess:
    def __init__(
        self,
        db: str | Path,
        config: str | Path | None = None,
        env: dict[str, str] | None = None,
        log_path: str | Path | None = None,
    ) -> None:
        self.db = str(db)
        self.config = config
        self.zmq_port = free_port()
        self.http_port = free_port()
        self.env = {**os.environ, **(env or {})}
        self.log_path = Path(log_path) if log_path else Path(self.db).with_suffix(".log")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def zmq_endpoint(self) -> str:
        return f"tcp://127.0.0.1:{self.zmq_port}"

    def start(self, timeout: float = 20.0) -> SidecarProcess:
        cmd = [sys.executable, "-m", "sidecar", "serve", "--db", self.db]
        cmd += ["--zmq", self.zmq_endpoint, "--http", f"127.0.0.1:{self.http_port}"]
        if self.config:
            cmd += ["--config", str(self.config)]
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"sidecar exited with {self.proc.returncode}: {self.log()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/health", timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        self.kill()
        raise RuntimeError(f"sidecar did not become healthy: {self.log()}")

    def log(self) -> str:
        return (
            self.log_path.read_text(encoding="utf-8", errors="replace")
            if self.log_path.exists()
            else ""
        )

    def zmq(self, timeout_ms: int = 5000) -> ZmqClient:
        return ZmqClient(self.zmq_endpoint, timeout_ms)

    def http(self, token: str | None = None) -> HttpClient:
        return HttpClient("127.0.0.1", self.http_port, token)

    def kill(self) -> None:
        """SIGKILL on POSIX, TerminateProcess on Windows: no chance to clean up."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()

    def __enter__(self) -> SidecarProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
