"""Small clients that speak only the documented protocol, as the EA does.

Used by the tests, the benchmark and operators poking a running sidecar. The ZeroMQ client
follows the lazy-pirate pattern the EA uses: on a timeout it closes and reopens its REQ socket.
"""

from __future__ import annotations

import http.client
import json
from typing import Any

import zmq


class ZmqClient:
    def __init__(self, endpoint: str, timeout_ms: int = 5000) -> None:
        self.endpoint = endpoint
        self.timeout_ms = timeout_ms
        self._ctx = zmq.Context.instance()
        self._sock: zmq.Socket | None = None
        self._open()

    def _open(self) -> None:
        if self._sock is not None:
            self._sock.close(linger=0)
        s = self._ctx.socket(zmq.REQ)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.RCVTIMEO, self.timeout_ms)
        s.setsockopt(zmq.SNDTIMEO, self.timeout_ms)
        s.connect(self.endpoint)
        self._sock = s

    def raw(self, payload: bytes) -> bytes:
        assert self._sock is not None
        try:
            self._sock.send(payload)
            return self._sock.recv()
        except zmq.Again:
            self._open()  # lazy pirate: a REQ socket is unusable after a lost reply
            raise TimeoutError(
                f"no reply from {self.endpoint} within {self.timeout_ms} ms"
            ) from None

    def send(self, message: dict[str, Any]) -> dict[str, Any]:
        return json.loads(self.raw(json.dumps(message).encode()))

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None


class HttpClient:
    """Keep-alive HTTP/1.1 client (one connection, like a long-running EA would want)."""

    def __init__(
        self, host: str, port: int, token: str | None = None, timeout: float = 5.0
    ) -> None:
        self.host, self.port, self.token, self.timeout = host, port, token, timeout
        self._conn = http.client.HTTPConnection(host, port, timeout=timeout)

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, bytes]:
        hdrs = {"Content-Type": "application/json"}
        if self.token:
            hdrs["Authorization"] = f"Bearer {self.token}"
        hdrs.update(headers or {})
        for attempt in (1, 2):
            try:
                self._conn.request(method, path, body=body, headers=hdrs)
                resp = self._conn.getresponse()
                return resp.status, resp.read()
            except (ConnectionError, http.client.HTTPException):
                self._conn.close()
                self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def raw(self, msg_type: str, payload: bytes) -> tuple[int, bytes]:
        return self.request("POST", f"/v1/{msg_type}", payload)

    def send(self, message: dict[str, Any]) -> dict[str, Any]:
        _, body = self.raw(message["type"], json.dumps(message).encode())
        return json.loads(body)

    def get(self, path: str) -> tuple[int, Any]:
        status, body = self.request("GET", path)
        return status, json.loads(body) if body[:1] in (b"{", b"[") else body.decode()

    def close(self) -> None:
        self._conn.close()
