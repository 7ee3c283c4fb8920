"""The builtin ZeroMQ transport: a REP endpoint over plain TCP sockets, a thread per connection.

Each EA's REQ socket (libzmq) connects here. The connection's thread blocks in recv(), computes
the verdict and writes the reply itself: one thread wake-up per request, where libzmq's own REP
socket passes every message through an I/O thread and back (see bench/README.md for what that
costs). Within a connection requests are answered in order, one at a time, like a REP socket;
connections do not wait for each other except on the sidecar's own lock. Blocking sockets and
threads only: nothing here is POSIX-only.

Protection against peers that are not well-behaved EAs: at most `max_connections` at once, the
handshake must finish within `handshake_seconds`, frames are bounded (zmtp.max_frame_bytes), and
a peer that does not read its replies only stalls its own thread (TCP then stalls the peer).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Callable

from sidecar.config import tcp_endpoint
from sidecar.service.logs import event
from sidecar.service.zmtp import RepConnection, ZmtpError, greeting, ready, reply_frames

log = logging.getLogger("sidecar.zmq")

MAX_CONNECTIONS = 256  # an EA opens one per chart
HANDSHAKE_SECONDS = 10.0
_RECV_BYTES = 65536


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
        self._conns: dict[socket.socket, threading.Thread] = {}
        self._listener: socket.socket | None = None
        self._thread = threading.Thread(target=self._accept_loop, name="sidecar-zmq", daemon=True)

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
            raise OSError(f"server.zmq: cannot bind {self.endpoint}: {exc}") from None
        self._listener = listener
        bound_host, bound_port = listener.getsockname()[:2]
        shown = f"[{bound_host}]" if ":" in bound_host else bound_host
        self.bound = f"tcp://{shown}:{bound_port}"
        event(log, "zmq.listening", endpoint=self.bound, engine="builtin")
        self._thread.start()

    def stop(self) -> None:
        """Close the listener and every connection; return once their threads have ended."""
        self._stop.set()
        listener = self._listener
        if listener is not None and self._thread.is_alive():
            self._wake_accept(listener)
            self._thread.join(timeout=5)
        if listener is not None:
            listener.close()
        with self._lock:
            conns = list(self._conns.items())
        for sock, _ in conns:
            # shutdown() wakes a thread blocked in recv or send on every platform; close()
            # alone does not on Linux. The connection's thread closes the socket.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for _, thread in conns:
            thread.join(timeout=5)

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
                # e.g. out of file descriptors: say so, keep serving the connections there are
                event(log, "zmq.accept_failed", logging.WARNING, str(exc))
                self._stop.wait(0.1)
                continue
            if self._stop.is_set():
                sock.close()
                return
            peer = f"{address[0]}:{address[1]}"
            with self._lock:
                full = len(self._conns) >= self.max_connections
                if not full:
                    thread = threading.Thread(
                        target=self._serve, args=(sock, peer), name="sidecar-zmq-conn", daemon=True
                    )
                    self._conns[sock] = thread
            if full:
                event(
                    log,
                    "zmq.peer_refused",
                    logging.WARNING,
                    f"{self.max_connections} connections already open",
                    peer=peer,
                )
                sock.close()
                continue
            thread.start()

    def _serve(self, sock: socket.socket, peer: str) -> None:
        zmtp = RepConnection(self.max_message_bytes)
        handle, after_reply = self.handle, self.after_reply
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(self.handshake_seconds)
            sock.sendall(greeting() + ready())
            while not zmtp.ready:
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
            pass  # reset by the peer or closed by stop(): a REQ socket reconnects by itself
        except Exception:  # one connection's failure must not reach the others
            log.exception(
                "zmq connection failed", extra={"event": "zmq.internal_error", "peer": peer}
            )
        finally:
            with self._lock:
                self._conns.pop(sock, None)
            sock.close()

    @staticmethod
    def _send_outgoing(sock: socket.socket, zmtp: RepConnection) -> None:
        if zmtp.outgoing:
            sock.sendall(bytes(zmtp.outgoing))
            zmtp.outgoing.clear()
