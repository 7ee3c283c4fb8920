"""The builtin ZeroMQ transport: a REP endpoint over plain TCP sockets, a thread per connection.

Each EA's REQ socket (libzmq) connects here. The connection's thread blocks in recv(), computes
the verdict and writes the reply itself: one thread wake-up per request, where libzmq's own REP
socket passes every message through an I/O thread and back (see bench/README.md for what that
costs). Within a connection requests are answered in order, one at a time, like a REP socket;
connections do not wait for each other except on the sidecar's own lock. Blocking sockets and
threads only: nothing here is POSIX-only.

Protection against peers that are not well-behaved EAs: the handshake must finish within
`handshake_seconds`; frames are bounded (zmtp.max_frame_bytes); a message begun must be
complete within `message_seconds`, and all incomplete messages together may hold at most
`pending_bytes` (over that, the connection holding most is closed); a peer that does not read
its replies only stalls its own thread (TCP then stalls the peer); TCP keepalive ends
connections whose peer vanished without a word.

At most `max_connections` are open, a thread each (an idle thread blocked in recv costs memory,
not CPU). When all are taken, the one silent longest is closed only if it has been silent for
`evict_idle_seconds` (two missed EA heartbeats): an EA's REQ socket reconnects by itself, and
each connection lives at least that long, so evictions can never run in a loop. Otherwise the
newcomer is not accepted yet: it waits in the listen backlog (its libzmq retries on its own)
until a connection ends or turns idle enough. Lines about single peers (refused, evicted, timed
out) are rate-limited: at most `LOG_LINES` per `LOG_SECONDS`, then one line counting the rest.
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

MAX_CONNECTIONS = 1024  # an EA opens one per chart; a trader's few terminals use dozens
HANDSHAKE_SECONDS = 10.0
MESSAGE_SECONDS = 5.0  # a message begun must be complete this soon (an EA's arrives at once)
PENDING_BYTES = 64 * 1024 * 1024  # what incomplete messages may hold, all connections together
EVICT_IDLE_SECONDS = 60.0  # at the cap, only a connection silent this long makes room
LOG_LINES, LOG_SECONDS = 20, 10.0  # per-connection warnings: at most this many per interval
_BACKLOG = 128  # connections waiting for a free slot queue here, in the OS
STOP_SECONDS = 5.0  # stop() waits this long in all for connection threads
_RECV_BYTES = 65536
# TCP keepalive: probe after 60 s of silence, every 10 s, give up after 6 unanswered probes.
_KEEPALIVE = (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 6))


class _PeerLog:
    """Warnings about single connections, at most `lines` per `seconds`: a flood of bad peers
    must not flood the log. The rest are counted, and one `zmq.log_suppressed` line at the end
    of the interval says how many were left out."""

    def __init__(self, lines: int, seconds: float) -> None:
        self.lines, self.seconds = lines, seconds
        self._lock = threading.Lock()
        self._window = -seconds
        self._logged = 0
        self._suppressed = 0
        self._timer: threading.Timer | None = None

    def __call__(self, name: str, message: str, **fields: object) -> None:
        now = time.monotonic()
        with self._lock:
            if now - self._window >= self.seconds:
                self._window, self._logged = now, 0
            if self._logged >= self.lines:
                self._suppressed += 1
                if self._timer is None:
                    self._timer = threading.Timer(self._window + self.seconds - now, self.flush)
                    self._timer.daemon = True
                    self._timer.start()
                return
            self._logged += 1
        event(log, name, logging.WARNING, message, **fields)

    def flush(self) -> None:
        with self._lock:
            count, self._suppressed = self._suppressed, 0
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        if count:
            event(
                log,
                "zmq.log_suppressed",
                logging.WARNING,
                f"{count} more lines about single connections were left out (at most "
                f"{self.lines} per {self.seconds:g} s)",
                suppressed=count,
            )


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
        message_seconds: float = MESSAGE_SECONDS,
        pending_bytes: int = PENDING_BYTES,
        evict_idle_seconds: float = EVICT_IDLE_SECONDS,
    ) -> None:
        self.endpoint = endpoint
        self.handle = handle
        self.after_reply = after_reply
        self.max_message_bytes = max_message_bytes
        self.handshake_seconds = handshake_seconds
        self.max_connections = max_connections
        self.message_seconds = message_seconds
        self.pending_bytes = pending_bytes
        self.evict_idle_seconds = evict_idle_seconds
        self.bound: str | None = None
        self.evictions = 0  # connections closed to make room, since start
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)  # notified when a connection ends
        self._conns: dict[socket.socket, _Conn] = {}
        self._held: dict[socket.socket, int] = {}  # bytes of incomplete messages, per connection
        self._held_total = 0
        self._peer_log = _PeerLog(LOG_LINES, LOG_SECONDS)
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
                listener.listen(_BACKLOG)
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
        with self._room:
            self._room.notify_all()  # the accept thread may be waiting for room
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
        self._peer_log.flush()

    def _wake_accept(self, listener: socket.socket) -> None:
        host, port = listener.getsockname()[:2]
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=1):
            pass

    # ------------------------------------------------------------------ threads

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while self._make_room():
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

    def _make_room(self) -> bool:
        """Wait until one more connection may be accepted; False once stopping. Below the cap
        that is at once; at the cap, the connection silent longest is closed if it has been
        silent for evict_idle_seconds, else this waits (newcomers queue in the listen backlog)
        for a connection to end or to turn idle enough. A live EA that was evicted and comes
        back cannot evict another in turn before that one has been silent as long: no loop."""
        with self._room:
            while not self._stop.is_set():
                if len(self._conns) < self.max_connections:
                    return True
                sock, conn = min(self._conns.items(), key=lambda item: item[1].last_active)
                idle = time.monotonic() - conn.last_active
                if idle >= self.evict_idle_seconds:
                    del self._conns[sock]
                    self.evictions += 1
                    break
                self._room.wait(min(self.evict_idle_seconds - idle, 1.0))
            else:
                return False
        self._peer_log(
            "zmq.peer_evicted",
            f"{self.max_connections} connections open: closing one silent for "
            f"{self.evict_idle_seconds:g} s or more",
            peer=conn.peer,
            idle_seconds=round(idle, 1),
        )
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)  # its thread wakes and closes it
        return True

    def _admit(self, sock: socket.socket, peer: str) -> None:
        thread = threading.Thread(
            target=self._serve, args=(sock, peer), name="sidecar-zmq-conn", daemon=True
        )
        with self._lock:
            self._conns[sock] = _Conn(peer, thread)
        try:
            thread.start()
        except RuntimeError as exc:  # the OS refused a thread: refuse this peer, keep accepting
            with self._lock:
                self._conns.pop(sock, None)
            sock.close()
            self._peer_log("zmq.peer_refused", f"no thread: {exc}", peer=peer)

    def _hold(self, sock: socket.socket, held: int) -> None:
        """Account the bytes `sock` holds for an incomplete message. Over the budget for all
        connections together, the connection holding most is closed (it may be this one)."""
        with self._lock:
            self._held_total += held - self._held.get(sock, 0)
            if held:
                self._held[sock] = held
            else:
                self._held.pop(sock, None)
            if self._held_total <= self.pending_bytes:
                return
            victim = max(self._held, key=self._held.__getitem__)
            victim_held = self._held.pop(victim)
            self._held_total -= victim_held
            conn = self._conns.get(victim)
        self._peer_log(
            "zmq.peer_refused",
            f"incomplete messages over the {self.pending_bytes}-byte budget: closing the "
            f"connection holding most ({victim_held} bytes)",
            peer=conn.peer if conn is not None else "?",
        )
        with contextlib.suppress(OSError):
            victim.shutdown(socket.SHUT_RDWR)  # its thread wakes and closes it

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
                self._hold(sock, zmtp.pending_bytes())
            # A blocking recv between messages: the cheapest wake-up on the verdict path. While
            # a message is incomplete, recv waits only until it is message_seconds old.
            begun: float | None = None  # when the incomplete message began
            held = zmtp.pending_bytes()
            if held:
                begun = time.monotonic()
                sock.settimeout(self.message_seconds)
            else:
                sock.settimeout(None)
            while True:
                for request in requests:
                    sock.sendall(reply_frames(request.envelope, handle(request.body)))
                    if after_reply is not None:
                        after_reply()  # the journal, metrics and logs, once the EA has its verdict
                data = sock.recv(_RECV_BYTES)
                if not data:
                    return
                now = conn.last_active = time.monotonic()
                requests = zmtp.feed(data)
                self._send_outgoing(sock, zmtp)
                held = zmtp.pending_bytes()
                if held:  # rare: an EA's message comes in one piece
                    if begun is None:
                        begun = now
                    remaining = begun + self.message_seconds - now
                    if remaining <= 0:
                        raise TimeoutError
                    sock.settimeout(remaining)
                    self._hold(sock, held)
                elif begun is not None:
                    begun = None
                    sock.settimeout(None)
                    self._hold(sock, 0)
        except ZmtpError as exc:
            self._peer_log("zmq.peer_refused", str(exc), peer=peer)
            with contextlib.suppress(OSError):
                self._send_outgoing(sock, zmtp)  # an ERROR command, where the protocol has one
        except TimeoutError:
            if zmtp.ready:
                reason = f"a message left incomplete for {self.message_seconds:g} s"
            else:
                reason = f"no ZeroMQ handshake within {self.handshake_seconds:g} s"
            self._peer_log("zmq.peer_refused", reason, peer=peer)
        except OSError:
            pass  # reset by the peer, evicted, or closed by stop(): a REQ socket reconnects
        except Exception:  # one connection's failure must not reach the others
            log.exception(
                "zmq connection failed", extra={"event": "zmq.internal_error", "peer": peer}
            )
        finally:
            with self._room:
                if conn is not None and self._conns.get(sock) is conn:
                    del self._conns[sock]
                    self._room.notify()
                self._held_total -= self._held.pop(sock, 0)
            sock.close()

    @staticmethod
    def _send_outgoing(sock: socket.socket, zmtp: RepConnection) -> None:
        if zmtp.outgoing:
            sock.sendall(bytes(zmtp.outgoing))
            zmtp.outgoing.clear()
