"""Start the sidecar: store, handler, ZeroMQ thread and uvicorn in one process.

Start-up fails loudly: whatever cannot start (the database, the HTTP or the ZeroMQ address)
gives one `service.start_failed` JSON log line naming the part (`component`), the address and
the error, and `serve` returns a non-zero exit code, so a service manager restarts it.
"""

from __future__ import annotations

import gc
import logging
import signal
import socket
from typing import Any

import uvicorn

from sidecar.config import Config, is_loopback, listen_address, parse_http
from sidecar.service.feeds import FeedService
from sidecar.service.handler import Sidecar
from sidecar.service.http_app import create_app
from sidecar.service.logs import event, setup_logging, stop_logging
from sidecar.service.zmq_server import ZmqServer
from sidecar.store import Store

log = logging.getLogger("sidecar.service")


EXIT_START_FAILED = 1  # a part could not start (address in use, database unreadable, ...)
EXIT_CONFIG = 2  # the configuration is invalid (same code as `sidecar check-config`)


class StartError(Exception):
    """A part of the sidecar could not start: `component` is its configuration key."""

    def __init__(self, component: str, address: str, error: str) -> None:
        super().__init__(f"{component}: cannot start {address}: {error}")
        self.component = component
        self.address = address
        self.error = error


def start_failed(
    component: str, address: str, error: str, code: int = EXIT_START_FAILED, **fields: Any
) -> int:
    """Log the one `service.start_failed` line and give the process's exit code."""
    where = f"{component} {address}" if address else component
    event(
        log,
        "service.start_failed",
        logging.ERROR,
        f"cannot start: {where}: {error}",
        component=component,
        address=address or None,
        error=error,
        exit_code=code,
        **fields,
    )
    return code


def bind_http(hostport: str, token: str = "") -> socket.socket:
    """Bind the HTTP listener before anything else starts, so a busy port is an error here
    (uvicorn would log a plain line and return normally). Without a token, an address that is
    not loopback once bound is refused (the configuration check resolved it the same way)."""
    try:
        host, port = parse_http(hostport)
        family, address = listen_address(host, port)
        # IPPROTO_TCP named explicitly: asyncio sets TCP_NODELAY only on sockets whose proto
        # says TCP, and with proto 0 Nagle held every small reply ~40 ms behind the client's ACK.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    except (OSError, ValueError) as exc:
        raise StartError("server.http", hostport, str(exc)) from None
    try:
        # As the ZeroMQ listener: no TIME_WAIT wait on POSIX; exclusive use on Windows, where
        # SO_REUSEADDR would let a second process bind the same port.
        if hasattr(socket, "SO_EXCLUSIVEADDRUSE"):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)
        else:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        bound = str(sock.getsockname()[0])
        if not token and not is_loopback(bound):  # checked before listen(): nobody got in
            sock.close()
            raise StartError("server.http", hostport, _needs_token(bound))
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise StartError("server.http", hostport, exc.strerror or str(exc)) from None
    sock.set_inheritable(True)
    return sock


def _needs_token(host: str) -> str:
    return f"bound the non-loopback address {host}, which needs a token (server.token)"


def check_zmq_bound(bound: str | None, token: str) -> str | None:
    """Why the ZeroMQ listener, as bound (`tcp://HOST:PORT`, `ipc://...`), may not run without
    a token; None when it may."""
    if token or not bound or not bound.startswith("tcp://"):
        return None
    host = bound[len("tcp://") :].rsplit(":", 1)[0].strip("[]")
    return None if is_loopback(host) else _needs_token(host)


def _run_uvicorn(server: uvicorn.Server, sock: socket.socket) -> int:
    """Run uvicorn so that SIGTERM still reaches our shutdown.

    uvicorn captures SIGINT/SIGTERM and, on return, re-raises them with the handler that was
    installed before it started; with the default SIGTERM handler that kills the process before
    our `finally` closes the store (flushing the journal) and stops ZeroMQ. A handler raising
    SystemExit turns that re-raise into an orderly exit. (SIGTERM exists on Windows too.)
    """

    def _exit(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, _exit)
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:  # Ctrl+C: uvicorn re-raises SIGINT once it has stopped
        event(log, "service.signal", code=128 + signal.SIGINT)
        return 0
    except SystemExit as exc:
        if exc.code == 128 + signal.SIGTERM:
            event(log, "service.signal", code=exc.code)
            return 0
        # uvicorn's own start-up failure (it exits with 3 after logging the cause).
        return start_failed("server.http", server.config.host, f"uvicorn exited with {exc.code}")
    finally:
        signal.signal(signal.SIGTERM, previous)
        sock.close()
    if not server.started and not server.should_exit:
        address = f"{server.config.host}:{server.config.port}"
        return start_failed("server.http", address, "uvicorn did not start")
    return 0


def build(config: Config) -> Sidecar:
    store = Store(config.server.db, config.journal.retention_rows)
    return Sidecar(config, store)


def start_feeds(sidecar: Sidecar) -> FeedService:
    """Start the news pollers; say loudly when no news source is configured."""
    feeds = FeedService(sidecar).start()
    cfg = sidecar.config.feeds
    if feeds.eodhd_enabled:
        event(
            log,
            "news.enabled",
            base_url=cfg.eodhd_base_url,
            tickers=cfg.news_tickers,
            stale_policy=cfg.stale_policy,
            budget_daily_calls=cfg.budget_daily_calls,
        )
    else:
        event(
            log,
            "news.disabled",
            logging.WARNING,
            "NEWS GATE OFF: no EODHD token (EODHD_API_TOKEN or feeds.eodhd_token); news "
            "blackouts and sentiment stay off until the EA pushes its calendar (/health lists "
            "eodhd as disabled)",
        )
    return feeds


def serve(config: Config) -> int:
    """Run until stopped; the process's exit code: 0 after a stop, non-zero when start-up
    failed (one `service.start_failed` line says what)."""
    setup_logging(config.logging.level)
    try:
        return _serve(config)
    except StartError as exc:
        return start_failed(exc.component, exc.address, exc.error)
    finally:
        stop_logging()


def _serve(config: Config) -> int:
    if not config.server.zmq and not config.server.http:
        raise StartError("server", "", "both server.zmq and server.http are disabled")
    token = config.server.token
    http_sock = bind_http(config.server.http, token) if config.server.http else None
    try:
        try:
            store = Store(config.server.db, config.journal.retention_rows)
        except Exception as exc:  # sqlite3 errors, a folder that cannot be created, ...
            raise StartError("server.db", config.server.db, _reason(exc)) from None
        try:
            sidecar = Sidecar(config, store)
        except Exception as exc:
            store.close()
            raise StartError("service", "", _reason(exc)) from exc
    except BaseException:
        if http_sock is not None:
            http_sock.close()
        raise
    zmq_server: ZmqServer | None = None
    feeds: FeedService | None = None
    code = EXIT_START_FAILED  # until the transports are up
    try:
        if config.server.zmq:
            zmq_server = ZmqServer(sidecar, config.server.zmq)
            try:
                zmq_server.start()
            except OSError as exc:
                zmq_server = None
                error = str(exc).removeprefix(f"server.zmq: cannot bind {config.server.zmq}: ")
                raise StartError("server.zmq", config.server.zmq, error) from None
            exposed = check_zmq_bound(zmq_server.bound, token)
            if exposed:  # the configuration check resolved it otherwise: trust the socket
                zmq_server.stop()
                zmq_server = None
                raise StartError("server.zmq", config.server.zmq, exposed)
        try:
            feeds = start_feeds(sidecar)
        except Exception as exc:
            raise StartError("feeds", "", _reason(exc)) from exc
        # Everything loaded so far (libraries, config, state) lives as long as the process: move
        # it out of the cyclic collector's reach, so its full collections stay short on the
        # verdict path.
        gc.collect()
        gc.freeze()
        code = 0
        event(
            log,
            "service.start",
            zmq=config.server.zmq or None,
            http=config.server.http or None,
            db=config.server.db,
            strategy=sidecar.engine.strategy.name,
            token_required=bool(config.server.token),
            accounts=len(sidecar.states),
        )
        if http_sock is not None:
            host, port = parse_http(config.server.http)
            server = uvicorn.Server(
                uvicorn.Config(
                    create_app(sidecar),
                    host=host,
                    port=port,
                    log_config=None,
                    access_log=False,
                    lifespan="off",
                )
            )
            code = _run_uvicorn(server, http_sock)
            http_sock = None
        elif zmq_server is not None:
            _wait_for_signal(zmq_server)
    finally:
        if http_sock is not None:
            http_sock.close()
        if zmq_server is not None:
            zmq_server.stop()
        if feeds is not None:
            feeds.stop()
        sidecar.close()
        if code == 0:
            event(log, "service.stop")
    return code


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _wait_for_signal(zmq_server: ZmqServer) -> None:
    """ZeroMQ only: run until SIGTERM or Ctrl+C, then return for an orderly stop."""

    def _exit(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, _exit)
    try:
        while zmq_server._thread.is_alive():
            zmq_server._thread.join(0.5)  # a timeout keeps Ctrl+C deliverable on Windows
    except (SystemExit, KeyboardInterrupt) as exc:
        code = exc.code if isinstance(exc, SystemExit) else 128 + signal.SIGINT
        event(log, "service.signal", code=code)
    finally:
        signal.signal(signal.SIGTERM, previous)
