"""The builtin ZeroMQ transport: a REP endpoint served by one thread over plain TCP sockets.

Each EA's REQ socket (libzmq) connects here; the thread that reads a request computes the
verdict and writes the reply itself, with no hand-off to libzmq's I/O threads. Requests are
answered one at a time, in arrival order per connection, like a REP socket. `selectors` picks
select() on Windows and epoll on Linux; nothing here is POSIX-only.

Protection against peers that are not well-behaved EAs: at most MAX_CONNECTIONS at once, a
handshake must finish within HANDSHAKE_SECONDS, frames are bounded (zmtp.max_frame_bytes), a
connection whose replies are not being read stops being read from until they are.
"""

from __future__ import annotations

import contextlib
import logging
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable

from sidecar.config import tcp_endpoint
from sidecar.service.logs import event
from sidecar.service.zmtp import RepConnection, Request, ZmtpError, greeting, ready, reply_frames

log = logging.getLogger("sidecar.zmq")

MAX_CONNECTIONS = 256  # an EA opens one per chart; Windows' select() handles 512 sockets
HANDSHAKE_SECONDS = 10.0
_RECV_BYTES = 65536


class _Conn:
    __slots__ = ("deadline", "out", "peer", "pending", "reading", "sock", "zmtp")

    def __init__(
        self, sock: socket.socket, peer: str, max_message_bytes: int, deadline: float
    ) -> None:
        self.sock = sock
        self.peer = peer
        self.zmtp = RepConnection(max_message_bytes)
        self.out = bytearray(greeting() + ready())
        self.pending: deque[Request] = deque()  # parsed, not answered yet (a DEALER may pipeline)
        self.deadline: float | None = deadline
        self.reading = True


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
        self._thread = threading.Thread(target=self._run, name="sidecar-zmq", daemon=True)
        self._conns: dict[socket.socket, _Conn] = {}
        self._handshaking: set[_Conn] = set()  # connections with a handshake deadline
        self._listener: socket.socket | None = None
        self._wake_r, self._wake_w = socket.socketpair()  # stop() wakes the select with a byte
        self._selector = selectors.DefaultSelector()

    def start(self) -> None:
        try:
            host, port = tcp_endpoint(self.endpoint)
            family, _, _, _, address = socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
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
            self._close_wake()
            raise OSError(f"server.zmq: cannot bind {self.endpoint}: {exc}") from None
        listener.setblocking(False)
        self._listener = listener
        bound_host, bound_port = listener.getsockname()[:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        self.bound = f"tcp://{shown}:{bound_port}"
        self._selector.register(listener, selectors.EVENT_READ)
        self._wake_r.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        event(log, "zmq.listening", endpoint=self.bound, engine="builtin")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            with contextlib.suppress(OSError):
                self._wake_w.send(b"x")
            self._thread.join(timeout=5)
        else:
            self._close_all()

    # ------------------------------------------------------------------ the loop

    def _run(self) -> None:
        select = self._selector.select
        try:
            while not self._stop.is_set():
                for key, mask in select(self._timeout()):
                    sock = key.fileobj
                    if sock is self._listener:
                        self._accept()
                    elif sock is self._wake_r:
                        self._drain_wake()
                    else:
                        conn = self._conns.get(sock)  # type: ignore[arg-type]
                        if conn is not None:
                            self._service(conn, mask)
                self._expire_handshakes()
        finally:
            self._close_all()

    def _timeout(self) -> float | None:
        if not self._handshaking:
            return None
        first = min(c.deadline for c in self._handshaking)  # type: ignore[type-var]
        return max(0.0, first - time.monotonic())

    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                sock, address = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. the process is out of file descriptors
                event(log, "zmq.accept_failed", logging.WARNING, str(exc))
                return
            peer = f"{address[0]}:{address[1]}"
            if len(self._conns) >= self.max_connections:
                event(
                    log,
                    "zmq.peer_refused",
                    logging.WARNING,
                    f"{self.max_connections} connections already open",
                    peer=peer,
                )
                sock.close()
                continue
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            deadline = time.monotonic() + self.handshake_seconds
            conn = _Conn(sock, peer, self.max_message_bytes, deadline)
            self._conns[sock] = conn
            self._handshaking.add(conn)
            self._selector.register(sock, selectors.EVENT_READ)
            try:
                self._flush(conn)  # our greeting and READY
            except OSError:
                self._close(conn)

    def _service(self, conn: _Conn, mask: int) -> None:
        try:
            if mask & selectors.EVENT_WRITE and not self._flush(conn):
                return
            if mask & selectors.EVENT_READ and conn.reading:
                data = conn.sock.recv(_RECV_BYTES)
                if not data:
                    self._close(conn)
                    return
                conn.pending.extend(conn.zmtp.feed(data))
                if conn.deadline is not None and conn.zmtp.ready:
                    conn.deadline = None
                    self._handshaking.discard(conn)
            self._answer(conn)
        except ZmtpError as exc:
            event(log, "zmq.peer_refused", logging.WARNING, str(exc), peer=conn.peer)
            conn.out += conn.zmtp.outgoing  # an ERROR command, where the protocol has one
            with contextlib.suppress(OSError):
                self._try_send(conn)
            self._close(conn)
        except (BlockingIOError, InterruptedError):
            pass
        except OSError:  # reset by the peer: a REQ socket reconnects by itself
            self._close(conn)
        except Exception:  # never let one connection stop the transport
            log.exception(
                "zmq connection failed", extra={"event": "zmq.internal_error", "peer": conn.peer}
            )
            self._close(conn)

    def _answer(self, conn: _Conn) -> None:
        """Answer parsed requests while the peer keeps reading replies."""
        handle, after_reply = self.handle, self.after_reply
        while True:
            if conn.zmtp.outgoing:
                conn.out += conn.zmtp.outgoing
                conn.zmtp.outgoing.clear()
            if conn.out and not self._flush(conn):
                return  # the peer is not reading: answer the rest when it does
            if not conn.pending:
                return
            request = conn.pending.popleft()
            conn.out += reply_frames(request.envelope, handle(request.body))
            self._flush(conn)
            if after_reply is not None:
                after_reply()  # the journal, metrics and logs, once the EA has its verdict

    def _flush(self, conn: _Conn) -> bool:
        """Send what is queued; True when all of it went. While replies wait for the peer to
        read them, its requests are not read (TCP then slows the peer down)."""
        self._try_send(conn)
        done = not conn.out
        if done != conn.reading:  # a selector change only when the state changes
            conn.reading = done
            self._selector.modify(
                conn.sock, selectors.EVENT_READ if done else selectors.EVENT_WRITE
            )
        return done

    def _try_send(self, conn: _Conn) -> None:
        while conn.out:
            try:
                sent = conn.sock.send(conn.out)
            except (BlockingIOError, InterruptedError):
                return
            del conn.out[:sent]

    def _expire_handshakes(self) -> None:
        if not self._handshaking:
            return
        now = time.monotonic()
        for conn in [c for c in self._handshaking if now >= c.deadline]:  # type: ignore[operator]
            event(
                log,
                "zmq.peer_refused",
                logging.WARNING,
                f"no ZeroMQ handshake within {self.handshake_seconds:g} s",
                peer=conn.peer,
            )
            self._close(conn)

    def _drain_wake(self) -> None:
        try:
            while self._wake_r.recv(64):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _close(self, conn: _Conn) -> None:
        self._handshaking.discard(conn)
        if self._conns.pop(conn.sock, None) is None:
            return
        with contextlib.suppress(KeyError, ValueError):
            self._selector.unregister(conn.sock)
        conn.sock.close()

    def _close_all(self) -> None:
        for conn in list(self._conns.values()):
            self._close(conn)
        if self._listener is not None:
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(self._listener)
            self._listener.close()
            self._listener = None
        self._close_wake()

    def _close_wake(self) -> None:
        for sock in (self._wake_r, self._wake_w):
            with contextlib.suppress(KeyError, ValueError):
                self._selector.unregister(sock)
            sock.close()
        self._selector.close()
