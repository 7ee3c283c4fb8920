"""Start the sidecar: store, handler, ZeroMQ thread and uvicorn in one process."""

from __future__ import annotations

import gc
import logging
import signal

import uvicorn

from sidecar.config import Config, parse_http
from sidecar.service.feeds import FeedService
from sidecar.service.handler import Sidecar
from sidecar.service.http_app import create_app
from sidecar.service.logs import event, setup_logging, stop_logging
from sidecar.service.zmq_server import ZmqServer
from sidecar.service.zmtp_server import BuiltinZmqServer
from sidecar.store import Store

log = logging.getLogger("sidecar.service")


def _run_uvicorn(server: uvicorn.Server) -> None:
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
        server.run()
    except SystemExit as exc:
        event(log, "service.signal", code=exc.code)
    finally:
        signal.signal(signal.SIGTERM, previous)


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
            "blackouts and sentiment stay off until the EA pushes its calendar, and /health "
            "reports degraded",
        )
    return feeds


def zmq_transport(sidecar: Sidecar, config: Config) -> BuiltinZmqServer | ZmqServer:
    if config.server.zmq_engine == "libzmq":
        return ZmqServer(sidecar, config.server.zmq)

    def handle(raw: bytes) -> bytes:
        return sidecar.handle(raw, "zmq")[0]

    return BuiltinZmqServer(
        config.server.zmq, handle, sidecar.after_reply, config.server.max_message_bytes
    )


def serve(config: Config) -> None:
    setup_logging(config.logging.level)
    sidecar = build(config)
    zmq_server: BuiltinZmqServer | ZmqServer | None = None
    feeds = start_feeds(sidecar)
    # Everything loaded so far (libraries, config, state) lives as long as the process: move it
    # out of the cyclic collector's reach, so its full collections stay short on the verdict path.
    gc.collect()
    gc.freeze()
    try:
        if config.server.zmq:
            zmq_server = zmq_transport(sidecar, config)
            zmq_server.start()
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
        if config.server.http:
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
            _run_uvicorn(server)
        elif zmq_server is not None:
            zmq_server._thread.join()
    finally:
        if zmq_server is not None:
            zmq_server.stop()
        feeds.stop()
        sidecar.close()
        event(log, "service.stop")
        stop_logging()
