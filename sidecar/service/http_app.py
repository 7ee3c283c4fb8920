"""FastAPI transport: `POST /v1/<type>` runs the same handler as ZeroMQ, plus operator endpoints."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.background import BackgroundTask

from sidecar.protocol import (
    BAD_JSON,
    BAD_REQUEST,
    INTERNAL,
    REQUEST_TYPES,
    TOO_LARGE,
    UNAUTHORIZED,
    UNKNOWN_SYMBOL,
    UNKNOWN_TYPE,
    UNSUPPORTED_VERSION,
    encode,
    error_reply,
)
from sidecar.service.handler import Sidecar
from sidecar.service.metrics import CONTENT_TYPE

STATUS = {
    BAD_JSON: 400,
    BAD_REQUEST: 400,
    UNSUPPORTED_VERSION: 400,
    UNKNOWN_TYPE: 404,
    TOO_LARGE: 413,
    UNAUTHORIZED: 401,
    UNKNOWN_SYMBOL: 409,  # the EA must send hello first
    INTERNAL: 500,
}
JSON = "application/json"


class _TooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _TooLarge(int(declared))
    size, chunks = 0, []
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge(size)
        chunks.append(chunk)
    return b"".join(chunks)


def _json(data: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(data), status_code=status, media_type=JSON)


def _error(code: str, message: str, request_id: str | None = None) -> Response:
    return Response(
        encode(error_reply(code, message, request_id)), status_code=STATUS[code], media_type=JSON
    )


def create_app(sidecar: Sidecar) -> FastAPI:
    app = FastAPI(title="MT5 Sidecar", version="1", docs_url="/docs", redoc_url=None)
    limit = sidecar.config.server.max_message_bytes

    def bearer(request: Request) -> str | None:
        auth = request.headers.get("authorization", "")
        return auth[7:].strip() if auth[:7].lower() == "bearer " else None

    def authorized(request: Request) -> bool:
        return sidecar.token_ok(bearer(request))

    @app.post("/v1/{msg_type}")
    async def message(msg_type: str, request: Request) -> Response:
        if msg_type == "resume":
            return await resume(request)
        if msg_type not in REQUEST_TYPES:
            return _error(
                UNKNOWN_TYPE,
                f"path: expected /v1/<{'|'.join(REQUEST_TYPES)}|resume>, got /v1/{msg_type}",
            )
        if not authorized(request):
            return _error(UNAUTHORIZED, "Authorization: missing or wrong bearer token")
        try:
            raw = await _read_body(request, limit)
        except _TooLarge as exc:
            return _error(TOO_LARGE, f"message: at most {limit} bytes, got {exc.args[0]}")
        # The bearer header was checked above; the body's own token field is then not needed.
        reply, code = sidecar.handle(
            raw, "http", bearer=sidecar.config.server.token or None, expect_type=msg_type
        )
        # Journal, metrics and logs run after the response went out, as over ZeroMQ.
        return Response(
            reply,
            status_code=STATUS[code] if code else 200,
            media_type=JSON,
            background=BackgroundTask(sidecar.after_reply),
        )

    async def resume(request: Request) -> Response:
        if not authorized(request):
            return _error(UNAUTHORIZED, "Authorization: missing or wrong bearer token")
        try:
            body = orjson.loads(await _read_body(request, limit))
        except (orjson.JSONDecodeError, _TooLarge):
            return _error(BAD_JSON, 'body: expected {"login": <int>, "reason": "<text>"}')
        login, reason = (
            (body.get("login"), body.get("reason")) if isinstance(body, dict) else (None, None)
        )
        problems = []
        if not isinstance(login, int) or isinstance(login, bool):
            problems.append(f"login: expected an integer, got {login!r}")
        if not isinstance(reason, str) or not reason.strip():
            problems.append("reason: expected a non-empty string (it is logged)")
        if problems:
            return _error(BAD_REQUEST, "; ".join(problems))
        try:
            state = sidecar.resume(login, reason.strip()[:500])
        except KeyError:
            return _error(BAD_REQUEST, f"login: no state for account {login}")
        return _json({"ok": True, "login": login, "mode": state.mode, "high_water_mark": state.hwm})

    @app.get("/health")
    async def health() -> Response:
        report = sidecar.health()
        return _json(report, 200 if report["status"] != "down" else 503)

    @app.get("/v1/state")
    async def state(request: Request, tester: bool = False) -> Response:
        if not authorized(request):
            return _error(UNAUTHORIZED, "Authorization: missing or wrong bearer token")
        if tester:  # the Strategy Tester sessions (in memory, never persisted)
            book = sidecar.tester_book
            return _json(book.state_report() if book else {"accounts": [], "symbols": []})
        return _json(sidecar.state_report())

    @app.get("/v1/decisions")
    # A plain def: FastAPI runs it in its threadpool, since it waits for the journal flush.
    def decisions(request: Request, symbol: str | None = None, limit: int = 100) -> Response:
        if not authorized(request):
            return _error(UNAUTHORIZED, "Authorization: missing or wrong bearer token")
        if not 1 <= limit <= 1000:
            return _error(BAD_REQUEST, f"limit: expected 1..1000, got {limit}")
        sidecar.after_reply()  # the newest verdict's journal row may still be pending
        return _json({"decisions": sidecar.store.decisions(symbol, limit)})

    @app.get("/v1/trades")
    async def trades(request: Request, login: int | None = None, limit: int = 100) -> Response:
        if not authorized(request):
            return _error(UNAUTHORIZED, "Authorization: missing or wrong bearer token")
        if not 1 <= limit <= 1000:
            return _error(BAD_REQUEST, f"limit: expected 1..1000, got {limit}")
        return _json({"trades": sidecar.store.trades(login, limit)})

    @app.get("/metrics")
    async def metrics() -> Response:
        sidecar.health()  # refreshes heartbeat ages
        return Response(sidecar.metrics.render(), media_type=CONTENT_TYPE)

    @app.exception_handler(Exception)
    async def internal(_request: Request, _exc: Exception) -> Response:
        return _error(INTERNAL, "internal error")

    return app
