"""The ZeroMQ endpoint, on libzmq (pyzmq's bundled library, the one ZeroMQ engine): one socket,
an answer to every request, on any transport libzmq binds (tcp://, ipc://, ...).

The socket is a ROUTER doing REP's envelope work here, not a REP socket: libzmq's REP loses
the next reply after a malformed request from a peer that is already gone (issue 18: a garbage
peer cost a legitimate client 63 of 1,436 requests). libzmq takes any peer whose first bytes
are not a ZMTP 3 signature for a ZMTP 1.0 peer, so random bytes reach the socket as messages;
REP rolls back a request without the empty delimiter, but when the sender's pipe has already
closed, `router_t::rollback()` leaves its "more to send" flag set (it resets it only with a
live pipe), and the next reply (the legitimate client's) is then taken for the tail of that
message and dropped. Here a request is read whole with its envelope and a reply always goes out
as one complete multipart message, so no state outlives a message; a request with no delimiter
is dropped, as REP does.

Guard rails, from libzmq's options: MAXMSGSIZE (a bigger frame ends its connection);
HANDSHAKE_IVL (the handshake within HANDSHAKE_SECONDS); heartbeats (a PING every
HEARTBEAT_IVL_MS; a connection that completes no message, PONG included, within
HEARTBEAT_TIMEOUT_MS of a ping is closed): so a peer stalled halfway through a frame is closed
within about IVL + TIMEOUT. An EA's libzmq (4.2 or later) answers PINGs by itself. What libzmq
cannot bound: the total held by incomplete messages (libzmq allocates a frame's announced size,
up to MAXMSGSIZE, when its header arrives; there is no global budget and no connection limit),
so N stalled peers may hold up to N x MAXMSGSIZE for those few seconds. Routing frames are at
most MAX_ROUTING_FRAME bytes and an envelope at most MAX_ENVELOPE_FRAMES frames (no libzmq peer
sends more); a request beyond either is dropped.
"""

from __future__ import annotations

import logging
import threading

import zmq

from sidecar.service.handler import Sidecar
from sidecar.service.logs import event

log = logging.getLogger("sidecar.zmq")

HANDSHAKE_SECONDS = 10.0
HEARTBEAT_IVL_MS = 2000
HEARTBEAT_TIMEOUT_MS = 5000

# Frames above this end the connection (MAXMSGSIZE); anything between the protocol limit and
# this is drained and answered with TOO_LARGE.
MAX_FRAME_BYTES = 1024 * 1024

# What may come before the delimiter: libzmq's routing ids are at most 255 bytes (a correlating
# REQ's are 4). Bounded so a request holds at most ~8 KiB of envelope, not 32 big frames.
MAX_ROUTING_FRAME = 255
MAX_ENVELOPE_FRAMES = 32


def max_frame_bytes(max_message_bytes: int) -> int:
    """The frame size above which libzmq ends the connection (MAXMSGSIZE)."""
    return max(MAX_FRAME_BYTES, 2 * max_message_bytes)


def _drain(sock: zmq.Socket) -> None:
    while sock.getsockopt(zmq.RCVMORE):
        sock.recv()


def _read_envelope(sock: zmq.Socket) -> list[bytes] | None:
    """The routing id ROUTER puts first and the request's envelope, up to and including the
    empty delimiter; None (the rest drained) for a message that is not a REQ or DEALER request:
    no delimiter, no body after it, or an envelope no libzmq peer sends."""
    envelope = [sock.recv()]
    while sock.getsockopt(zmq.RCVMORE):
        frame = sock.recv()
        envelope.append(frame)
        if not frame:
            if sock.getsockopt(zmq.RCVMORE):
                return envelope
            return None  # the delimiter last: no body
        if len(frame) > MAX_ROUTING_FRAME or len(envelope) > MAX_ENVELOPE_FRAMES + 1:
            _drain(sock)
            return None
    return None


def _is_ipv6_literal(endpoint: str) -> bool:
    scheme, _, rest = endpoint.partition("://")
    return scheme == "tcp" and rest.startswith("[")


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
        sock = self._ctx.socket(zmq.ROUTER)  # REP's envelope done here: see the module's doc
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.HANDSHAKE_IVL, int(HANDSHAKE_SECONDS * 1000))
        sock.setsockopt(zmq.HEARTBEAT_IVL, HEARTBEAT_IVL_MS)
        sock.setsockopt(zmq.HEARTBEAT_TIMEOUT, HEARTBEAT_TIMEOUT_MS)
        if _is_ipv6_literal(self.endpoint):
            # libzmq binds IPv4 only unless told otherwise ("No such device" for [::1]). Only
            # for an IPv6 address: with it, "*" would mean IPv6 interfaces too.
            sock.setsockopt(zmq.IPV6, 1)
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
                envelope = _read_envelope(sock)
                if envelope is None:
                    continue  # not a request: REP drops these too
                raw = sock.recv()
                if sock.getsockopt(zmq.RCVMORE):
                    raw = _join_frames(sock, raw, limit)
                reply, _ = handle(raw, "zmq")
                envelope.append(reply)
                sock.send_multipart(envelope)  # one whole message: an unknown peer drops it
                after_reply()  # journal, metrics and logs once the EA has its verdict
        except zmq.ContextTerminated:
            pass
        finally:
            sock.close()
