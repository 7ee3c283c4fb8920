"""A stand-in Slack incoming webhook: real HTTP on loopback, Slack's plain-text answers, faults.

    with FakeSlack() as slack:
        config = {"name": "team", "webhook": slack.webhook}
        ...
        assert slack.messages[0]["text"].startswith("[FIRING:1]")

`POST /services/T0000/B0000/<secret>` with a JSON body: HTTP 200 `ok` when the body has a
`text` (and, if present, `blocks` as a list of at most 50 with section texts up to 3,000
characters); 400 `invalid_payload` / `no_text` otherwise; 404 `no_service` for another path.
Faults for the next messages (`fail(kind, times)`): `http500` (500 `rollup_error`), `throttle`
(429 `rate_limited`), `timeout` (answers `delay` seconds late: not counted as delivered).
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_PATH = "/services/T0000FAKE/B0000FAKE/fake-slack-webhook-secret-0123"


class FakeSlack:
    def __init__(self, path: str = DEFAULT_PATH, port: int = 0, delay: float = 2.0) -> None:
        self.path = path
        self.delay = delay
        self.messages: list[dict[str, Any]] = []
        self.answers: list[int] = []
        self._faults: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self._server.daemon_threads = True

    @property
    def webhook(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{self.path}"

    def fail(self, kind: str, times: int = 1) -> None:
        assert kind in ("http500", "throttle", "timeout"), kind
        with self._lock:
            self._faults += [kind] * times

    def start(self) -> FakeSlack:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def answer(self, path: str, body: bytes) -> tuple[int, str]:
        if path != self.path:
            return 404, "no_service"
        try:
            message = json.loads(body)
        except ValueError:
            return 400, "invalid_payload"
        if not isinstance(message, dict):
            return 400, "invalid_payload"
        if not message.get("text"):
            return 400, "no_text"
        blocks = message.get("blocks", [])
        if not isinstance(blocks, list) or len(blocks) > 50:
            return 400, "invalid_blocks"
        for b in blocks:
            text = b.get("text", {}).get("text", "") if isinstance(b, dict) else None
            if not isinstance(text, str) or len(text) > 3000:
                return 400, "invalid_blocks"
        with self._lock:
            fault = self._faults.pop(0) if self._faults else None
            if fault == "http500":
                return 500, "rollup_error"
            if fault == "throttle":
                return 429, "rate_limited"
            if fault == "timeout":
                return -1, "ok"
            self.messages.append(message)
        return 200, "ok"


def _handler(fake: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, text = fake.answer(self.path, body)
            with fake._lock:
                fake.answers.append(status)
            if status == -1:
                time.sleep(fake.delay)
                status = 200
            data = text.encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            with contextlib.suppress(OSError):
                self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler
