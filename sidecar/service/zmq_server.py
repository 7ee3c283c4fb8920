"""ZeroMQ REP transport: one socket, dispatch on `type`, an answer to every request."""

from __future__ import annotations

import logging
import threading

import zmq

from sidecar.service.handler import Sidecar
from sidecar.service.logs import event

log = logging.getLogger("sidecar.zmq")

# Frames above this are dropped by libzmq (the peer is disconnected) instead of being buffered;
# anything between the protocol limit and this gets a TOO_LARGE error reply.
MAX_FRAME_BYTES = 1024 * 1024


class ZmqServer:
    def __init__(self, sidecar: Sidecar, endpoint: str) -> None:
        self.sidecar = sidecar
        self.endpoint = endpoint
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="sidecar-zmq", daemon=True)
        self.bound: str | None = None

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        ctx = zmq.Context.instance()
        sock = ctx.socket(zmq.REP)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES)
        sock.setsockopt(zmq.RCVTIMEO, 100)  # wake up to notice stop()
        try:
            sock.bind(self.endpoint)
            self.bound = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        except zmq.ZMQError as exc:
            self._error = OSError(f"server.zmq: cannot bind {self.endpoint}: {exc}")
            sock.close()
            self._ready.set()
            return
        event(log, "zmq.listening", endpoint=self.bound)
        self._ready.set()
        handle = self.sidecar.handle
        try:
            while not self._stop.is_set():
                try:
                    frames = sock.recv_multipart(copy=True)
                except zmq.Again:
                    continue
                raw = frames[0] if len(frames) == 1 else b"".join(frames)
                reply, _ = handle(raw, "zmq")
                sock.send(reply)
        finally:
            sock.close()
