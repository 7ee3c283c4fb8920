"""The builtin ZeroMQ transport: a REP endpoint over plain TCP sockets, a thread per connection.

Each EA's REQ socket (libzmq) connects here. The connection's thread blocks in recv(), computes
the verdict and writes the reply itself: one thread wake-up per request, where libzmq's own REP
socket passes every message through an I/O thread and back (see bench/README.md for what that
costs). Within a connection requests are answered in order, one at a time, like a REP socket;
connections do not wait for each other except on the sidecar's own lock. Blocking sockets and
threads only: nothing here is POSIX-only.

Protection against peers that are not well-behaved EAs: the handshake must finish within
`handshake_seconds`; frames are bounded (zmtp.max_frame_bytes); a peer that does not read its
replies only stalls its own thread (TCP then stalls the peer); TCP keepalive ends connections
whose peer vanished without a word; and at most `max_connections` are open: when one more
arrives, the one idle longest is closed (an EA's REQ socket reconnects by itself), so idle or
dead connections can never lock a live EA out.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable

from sidecar.config import tcp_endpoint
from sidecar.service.logs import event
from sidecar.service.zmtp import RepConnection, ZmtpError, greeting, ready, reply_frames

log = logging.getLogger("sidecar.zmq")

MAX_CONNECTIONS = 256  # an EA opens one per chart
HANDSHAKE_SECONDS = 10.0
STOP_SECONDS = 5.0  # stop() waits this long in all for connection threads
_RECV_BYTES = 65536
# TCP keepalive: probe after 60 s of silence, every 10 s, give up after 6 unanswered probes.
_KEEPALIVE = (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 6))


class _Conn:
    __slots__ = ("last_active", "peer", "thread")

    def __init__(self, peer: str, thread: threading.Thread) -> None:
        self.peer = peer
        self.thread = thread
        self.last_active = time.monotonic()


def _keepalive(sock: socket.socket) -> None:
    """Let the OS find peers that vanished (a VPS reset, a dropped network) and end their
    connections. The options exist on Linux and Windows 10+; where one does not, skip it."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in _KEEPALIVE:
        option = getattr(socket, name, None)
        if option is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, option, value)


class BuiltinZmqServer:
    """A REP endpoint: `handle` turns each request body into its reply; `after_reply` runs once
    the reply is sent (the sidecar's journal, metrics and logs). Same interface as the
    libzmq-backed ZmqServer: start(), stop(), `bound`."""

    def __init__(
        self,
        endpoint: str,
        handle: Callable[[bytes], bytes],
        after_reply: Callable[[], None] | None = None,
        max_message_bytes: int = 65536,
        handshake_seconds: float = HANDSHAKE_SECONDS,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        self.endpoint = endpoint
        self.handle = handle
        self.after_reply = after_reply
        self.max_message_bytes = max_message_bytes
        self.handshake_seconds = handshake_seconds
        self.max_connections = max_connections
        self.bound: str | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._conns: dict[socket.socket, _Conn] = {}
        self._listener: socket.socket | None = None
        self._thread = threading.Thread(target=self._accept_loop, name="sidecar-zmq", daemon=True)

    def start(self) -> None:
        try:
            host, port = tcp_endpoint(self.endpoint)
            # IPv4 unless the endpoint names an IPv6 address, as libzmq does by default: on
            # Windows "localhost" resolves to ::1 first, which an EA's libzmq would not reach.
            want = socket.AF_INET6 if ":" in host else socket.AF_INET
            family, _, _, _, address = socket.getaddrinfo(
                host, port, want, socket.SOCK_STREAM, 0, socket.AI_PASSIVE
            )[0]
            listener = socket.socket(family, socket.SOCK_STREAM)
            # Rebinding after a restart must not wait for TIME_WAIT; on Windows SO_REUSEADDR
            # would let another process take the port, so it gets exclusive use instead.
            if hasattr(socket, "SO_EXCLUSIVEADDRUSE"):
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)
            else:
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                listener.bind(address)
                listener.listen(64)
            except OSError:
                listener.close()
                raise
        except (OSError, ValueError) as exc:
            raise OSError(f"server.zmq: cannot bind {self.endpoint}: {exc}") from None
        self._listener = listener
        bound_host, bound_port = listener.getsockname()[:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        self.bound = f"tcp://{shown}:{bound_port}"
        event(log, "zmq.listening", endpoint=self.bound, engine="builtin")
        self._thread.start()

    def stop(self) -> None:
        """Close the listener and every connection; return once their threads have ended (or
        STOP_SECONDS have passed in all)."""
        self._stop.set()
        deadline = time.monotonic() + STOP_SECONDS
        listener = self._listener
        if listener is not None and self._thread.is_alive():
            self._wake_accept(listener)
            self._thread.join(timeout=STOP_SECONDS)
        if listener is not None:
            listener.close()
        with self._lock:
            conns = list(self._conns.items())
        for sock, _ in conns:
            # shutdown() wakes a thread blocked in recv or send; close() alone does not on
            # Linux. The connection's thread closes the socket itself.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for sock, conn in conns:
            if conn.thread.ident is not None:
                conn.thread.join(timeout=max(0.0, deadline - time.monotonic()))
            if conn.thread.is_alive():
                sock.close()  # Winsock cancels a blocking call on closesocket()

    def _wake_accept(self, listener: socket.socket) -> None:
        host, port = listener.getsockname()[:2]
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
            pass

    # ------------------------------------------------------------------ threads

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stop.is_set():
            try:
                sock, address = self._listener.accept()
            except OSError as exc:
                if self._stop.is_set():
                    return
                # e.g. out of file descriptors: say so (once a second), keep serving the
                # connections there are
                event(log, "zmq.accept_failed", logging.WARNING, str(exc))
                self._stop.wait(1.0)
                continue
            if self._stop.is_set():
                sock.close()
                return
            self._admit(sock, f"{address[0]}:{address[1]}")

    def _admit(self, sock: socket.socket, peer: str) -> None:
        thread = threading.Thread(
            target=self._serve, args=(sock, peer), name="sidecar-zmq-conn", daemon=True
        )
        with self._lock:
            if len(self._conns) >= self.max_connections:
                self._evict_idlest()
            self._conns[sock] = _Conn(peer, thread)
        try:
            thread.start()
        except RuntimeError as exc:  # the OS refused a thread: refuse this peer, keep accepting
            with self._lock:
                self._conns.pop(sock, None)
            sock.close()
            event(log, "zmq.peer_refused", logging.WARNING, f"no thread: {exc}", peer=peer)

    def _evict_idlest(self) -> None:
        """Close the connection idle longest (under the lock). Dead peers and idle squatters go
        first; a live EA whose connection is closed reconnects on its own."""
        sock, conn = min(self._conns.items(), key=lambda item: item[1].last_active)
        del self._conns[sock]
        event(
            log,
            "zmq.peer_evicted",
            logging.WARNING,
            f"{self.max_connections} connections open: closing the one idle longest",
            peer=conn.peer,
            idle_seconds=round(time.monotonic() - conn.last_active, 1),
        )
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)  # its thread wakes and closes it

    def _serve(self, sock: socket.socket, peer: str) -> None:
        zmtp = RepConnection(self.max_message_bytes)
        handle, after_reply = self.handle, self.after_reply
        conn: _Conn | None = None
        try:
            with self._lock:
                conn = self._conns.get(sock)
            if conn is None:  # evicted or stopped before this thread ran
                return
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            _keepalive(sock)
            deadline = time.monotonic() + self.handshake_seconds
            sock.settimeout(self.handshake_seconds)
            sock.sendall(greeting() + ready())
            while not zmtp.ready:
                # One deadline for the whole handshake: a peer dripping a byte at a time
                # must not hold the connection open.
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError
                sock.settimeout(remaining)
                data = sock.recv(_RECV_BYTES)
                if not data:
                    return
                requests = zmtp.feed(data)
                self._send_outgoing(sock, zmtp)
            sock.settimeout(None)  # a blocking recv: the cheapest wake-up on the verdict path
            while True:
                for request in requests:
                    sock.sendall(reply_frames(request.envelope, handle(request.body)))
                    if after_reply is not None:
                        after_reply()  # the journal, metrics and logs, once the EA has its verdict
                data = sock.recv(_RECV_BYTES)
                if not data:
                    return
                conn.last_active = time.monotonic()
                requests = zmtp.feed(data)
                self._send_outgoing(sock, zmtp)
        except ZmtpError as exc:
            event(log, "zmq.peer_refused", logging.WARNING, str(exc), peer=peer)
            with contextlib.suppress(OSError):
                self._send_outgoing(sock, zmtp)  # an ERROR command, where the protocol has one
        except TimeoutError:
            event(
                log,
                "zmq.peer_refused",
                logging.WARNING,
                f"no ZeroMQ handshake within {self.handshake_seconds:g} s",
                peer=peer,
            )
        except OSError:
            pass  # reset by the peer, evicted, or closed by stop(): a REQ socket reconnects
        except Exception:  # one connection's failure must not reach the others
            log.exception(
                "zmq connection failed", extra={"event": "zmq.internal_error", "peer": peer}
            )
        finally:
            with self._lock:
                if conn is not None and self._conns.get(sock) is conn:
                    del self._conns[sock]
            sock.close()

    @staticmethod
    def _send_outgoing(sock: socket.socket, zmtp: RepConnection) -> None:
        if zmtp.outgoing:
            sock.sendall(bytes(zmtp.outgoing))
            zmtp.outgoing.clear()
