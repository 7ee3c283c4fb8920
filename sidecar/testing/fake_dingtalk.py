"""A stand-in DingTalk custom robot: real HTTP on loopback, the documented answers, faults.

    with FakeDingTalk(secret="SEC123") as robot:
        config = {"name": "ops", "webhook": robot.webhook, "secret": robot.secret}
        ...
        robot.fail("errcode-1")          # the next message: {"errcode": -1, "errmsg": "系统繁忙"}
        assert [m["markdown"]["title"] for m in robot.messages] == [...]

`POST /robot/send?access_token=T[&timestamp=MS&sign=S]` with a JSON body. Like the real robot
(docs/alerts.md, the reference notes), every answer is HTTP 200 with `{"errcode", "errmsg"}`:
- 300001 `token is not exist`: another access token;
- 310000 `sign not match` (the robot has a secret): `timestamp` missing or more than an hour
  from now, or `sign` not the base64 HMAC-SHA256 of "timestamp\\nsecret" once URL-decoded (a
  doubly encoded signature fails, as it does at DingTalk);
- 460101 `message too long, exceed 20000 bytes`;
- 130101 `send too fast, exceed 20 times per minute` past 20 messages in 60 s (by `clock`);
- 400105 for any `msgtype` but `markdown` (the relay must never send a link card), 40035 for a
  body that is not JSON or a markdown message without a title or text.
Faults for the next messages (`fail(kind, times)`): `http500` (HTTP 500), `errcode-1`
(busy), `throttle` (130101), `timeout` (answers `delay` seconds late: the relay has given up, so
the message does not count as delivered). `messages` holds the accepted bodies;
`answers` every (errcode or HTTP status) in order.

Demo: `python -m sidecar.testing.fake_dingtalk --port 8898 --secret SEC123`.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

DEFAULT_TOKEN = "fake-dingtalk-access-token-0123456789"
MAX_BYTES = 20_000
PER_MINUTE = 20


class FakeDingTalk:
    def __init__(
        self,
        secret: str = "",
        token: str = DEFAULT_TOKEN,
        port: int = 0,
        clock: Callable[[], float] = time.time,
        delay: float = 2.0,
    ) -> None:
        self.secret = secret
        self.token = token
        self.clock = clock  # the rate window's clock (tests share theirs with the relay)
        self.delay = delay
        self.messages: list[dict[str, Any]] = []
        self.answers: list[int] = []
        self._sent_at: list[float] = []
        self._faults: list[str] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def webhook(self) -> str:
        return f"http://127.0.0.1:{self.port}/robot/send?access_token={self.token}"

    def fail(self, kind: str, times: int = 1) -> None:
        assert kind in ("http500", "errcode-1", "throttle", "timeout"), kind
        with self._lock:
            self._faults += [kind] * times

    def start(self) -> FakeDingTalk:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeDingTalk:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------------- the robot

    def answer(self, path: str, query: str, body: bytes) -> tuple[int, dict[str, Any] | None]:
        """(HTTP status, JSON answer) for one POST; None: answer nothing (a timeout)."""
        params = parse_qs(query, keep_blank_values=True)  # decodes once, as DingTalk does
        if path != "/robot/send":
            return 404, {"errcode": 404, "errmsg": "not found"}
        if params.get("access_token", [""])[0] != self.token:
            return 200, _err(300001, "token is not exist")
        if self.secret and not self._signed(params):
            return 200, _err(310000, "sign not match")
        if len(body) >= MAX_BYTES:
            return 200, _err(460101, "message too long, exceed 20000 bytes")
        try:
            message = json.loads(body)
        except ValueError:
            return 200, _err(40035, "body: not JSON")
        if not isinstance(message, dict) or message.get("msgtype") != "markdown":
            return 200, _err(400105, "unsupported msgtype (this robot takes markdown only)")
        md = message.get("markdown")
        if not isinstance(md, dict) or not md.get("title") or not md.get("text"):
            return 200, _err(40035, "markdown: title and text required")
        with self._lock:
            fault = self._faults.pop(0) if self._faults else None
            if fault == "http500":
                return 500, None
            if fault == "errcode-1":
                return 200, _err(-1, "系统繁忙")
            now = self.clock()
            recent = [t for t in self._sent_at if now - 60 < t <= now]
            if fault == "throttle" or len(recent) >= PER_MINUTE:
                return 200, _err(130101, "send too fast, exceed 20 times per minute")
            if fault == "timeout":
                return -1, None
            self._sent_at.append(now)
            self.messages.append(message)
        return 200, {"errcode": 0, "errmsg": "ok"}

    def _signed(self, params: dict[str, list[str]]) -> bool:
        ts = params.get("timestamp", [""])[0]
        sign = params.get("sign", [""])[0]
        if not ts.isdigit() or abs(int(ts) - time.time() * 1000) > 3600_000:
            return False
        digest = hmac.new(
            self.secret.encode(), f"{ts}\n{self.secret}".encode(), hashlib.sha256
        ).digest()
        return hmac.compare_digest(sign.encode(), base64.b64encode(digest))

    def record(self, status: int, answer: dict[str, Any] | None) -> None:
        with self._lock:
            self.answers.append(answer["errcode"] if answer else status)


def _err(code: int, message: str) -> dict[str, Any]:
    return {"errcode": code, "errmsg": message}


def _handler(fake: FakeDingTalk) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            url = urlsplit(self.path)
            status, answer = fake.answer(url.path, url.query, body)
            fake.record(status, answer)
            if status == -1:  # a timeout: answer after the relay gave up
                time.sleep(fake.delay)
                status, answer = 200, {"errcode": 0, "errmsg": "ok"}
            data = json.dumps(answer).encode() if answer is not None else b"Internal Server Error"
            self.send_response(status)
            kind = "application/json" if answer is not None else "text/plain"
            self.send_header("Content-Type", f"{kind}; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            with contextlib.suppress(OSError):  # the relay hung up (its timeout)
                self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description="stand-in DingTalk robot on loopback")
    parser.add_argument("--port", type=int, default=8898)
    parser.add_argument("--secret", default="")
    parser.add_argument("--token", default=DEFAULT_TOKEN)
    args = parser.parse_args()
    fake = FakeDingTalk(args.secret, args.token, args.port)
    print(f"webhook: {fake.webhook}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        fake._server.serve_forever()
    for m in fake.messages:
        print(json.dumps(m, ensure_ascii=False))


if __name__ == "__main__":
    main()
