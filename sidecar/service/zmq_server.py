"""ZeroMQ REP transport on libzmq (`server.zmq_engine = "libzmq"`): one socket, an answer to
every request. The default engine is the builtin one (zmtp_server.py), which answers in the
verdict thread itself; this one stays for libzmq's other transports (ipc://) and as a fallback."""

from __future__ import annotations

import logging
import threading

import zmq

from sidecar.service.handler import Sidecar
from sidecar.service.logs import event
from sidecar.service.zmtp import max_frame_bytes

log = logging.getLogger("sidecar.zmq")


def _join_frames(sock: zmq.Socket, first: bytes, limit: int) -> bytes:
    """A multipart request is answered as one message. Frames beyond the size limit are drained
    and dropped rather than buffered (libzmq bounds each frame, not their sum); the oversized
    message still reaches the decoder, which answers TOO_LARGE."""
    frames, size = [first], len(first)
    while sock.getsockopt(zmq.RCVMORE):
        frame = sock.recv()
        size += len(frame)
        if size <= limit + 1:
            frames.append(frame)
    return b"".join(frames) if size <= limit + 1 else b"\0" * (limit + 1)


class ZmqServer:
    def __init__(self, sidecar: Sidecar, endpoint: str) -> None:
        self.sidecar = sidecar
        self.endpoint = endpoint
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="sidecar-zmq", daemon=True)
        self.bound: str | None = None
        self._ctx = zmq.Context()  # our own: term() must not touch other users' sockets

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None:
            raise self._error

    def stop(self) -> None:
        # Terminating the context wakes the blocked recv with ETERM; the thread then closes the
        # socket, which lets term() return. (No receive timeout: a plain blocking recv is the
        # cheapest wake-up on the verdict path.)
        self._stop.set()
        if self._thread.is_alive():
            self._ctx.term()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        sock = self._ctx.socket(zmq.REP)
        sock.setsockopt(zmq.LINGER, 0)
        # Bigger frames are dropped by libzmq (the peer is disconnected) instead of buffered;
        # anything between the protocol limit and this gets a TOO_LARGE error reply.
        sock.setsockopt(
            zmq.MAXMSGSIZE, max_frame_bytes(self.sidecar.config.server.max_message_bytes)
        )
        try:
            sock.bind(self.endpoint)
            self.bound = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        except zmq.ZMQError as exc:
            self._error = OSError(f"server.zmq: cannot bind {self.endpoint}: {exc}")
            sock.close()
            self._ready.set()
            return
        event(log, "zmq.listening", endpoint=self.bound, engine="libzmq")
        self._ready.set()
        handle = self.sidecar.handle
        after_reply = self.sidecar.after_reply
        limit = self.sidecar.config.server.max_message_bytes
        try:
            while not self._stop.is_set():
                raw = sock.recv()
                if sock.getsockopt(zmq.RCVMORE):
                    raw = _join_frames(sock, raw, limit)
                reply, _ = handle(raw, "zmq")
                sock.send(reply)
                after_reply()  # journal, metrics and logs once the EA has its verdict
        except zmq.ContextTerminated:
            pass
        finally:
            sock.close()
