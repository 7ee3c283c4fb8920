"""FastAPI transport: `POST /v1/<type>` runs the same handler as ZeroMQ, plus operator endpoints."""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import Response
from starlette.background import BackgroundTask
from starlette.datastructures import Headers

from sidecar.protocol import (
    BAD_JSON,
    BAD_REQUEST,
    INTERNAL,
    REPLY_TYPES,
    REQUEST_TYPES,
    STORE_WRITE_FAILED,
    TOO_LARGE,
    UNAUTHORIZED,
    UNKNOWN_SYMBOL,
    UNKNOWN_TYPE,
    UNSUPPORTED_VERSION,
    encode,
    error_reply,
)
from sidecar.service import alerts, status_page
from sidecar.service.handler import Sidecar
from sidecar.service.metrics import CONTENT_TYPE
from sidecar.store import DECISION_KINDS

NOT_FOUND = "NOT_FOUND"  # an operator endpoint's subject (a login) is not on file
NOT_HALTED = "NOT_HALTED"  # POST /v1/resume on an account that is not halted

STATUS = {
    BAD_JSON: 400,
    BAD_REQUEST: 400,
    UNSUPPORTED_VERSION: 400,
    UNKNOWN_TYPE: 404,
    TOO_LARGE: 413,
    UNAUTHORIZED: 401,
    UNKNOWN_SYMBOL: 409,  # the EA must send hello first
    NOT_FOUND: 404,
    NOT_HALTED: 409,
    STORE_WRITE_FAILED: 503,  # retryable: the EA keeps the message queued
    INTERNAL: 500,
}
JSON = "application/json"


class _TooLarge(Exception):
    pass


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
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


# ------------------------------------------------------------ query parameters of the journal API

MAX_EPOCH = 253402300799  # 9999-12-31T23:59:59Z
MAX_LOGIN = 2**63 - 1
_CODE = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
_CURSOR_DECISIONS = re.compile(r"[0-9]{1,19}")
_CURSOR_TRADES = re.compile(r"(-?[0-9]{1,19})\.([0-9]{1,19})\.([0-9]{1,19})")


class _BadQuery(Exception):
    pass


def _text(value: str) -> str:
    return repr(value if len(value) <= 80 else value[:77] + "...")


def _limit(value: str) -> int:
    if value.isascii() and value.isdigit() and len(value) <= 4 and 1 <= int(value) <= 1000:
        return int(value)
    raise _BadQuery(f"limit: expected an integer 1..1000, got {_text(value)}")


def _login(value: str) -> int:
    if value.isascii() and value.isdigit() and len(value) <= 19 and int(value) <= MAX_LOGIN:
        return int(value)
    raise _BadQuery(
        f"login: expected an account number (a non-negative integer), got {_text(value)}"
    )


def _symbol(value: str) -> str:
    if len(value) <= 64 and value.isprintable():
        return value
    raise _BadQuery(
        f"symbol: expected a symbol name of 1..64 printable characters, got {_text(value)}"
    )


def _one_of(name: str, choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value in choices:
            return value
        raise _BadQuery(f"{name}: expected one of {'|'.join(choices)}, got {_text(value)}")

    return parse


def _reason(value: str) -> str:
    code = value.upper()
    if _CODE.fullmatch(code):
        return code
    raise _BadQuery(
        "reason: expected a reason code (the first word of a reason, e.g. RISK_DAILY_LOSS), "
        f"got {_text(value)}"
    )


def _time(name: str) -> Callable[[str], int]:
    def parse(value: str) -> int:
        epoch: float | None = None
        try:
            epoch = float(value) if re.fullmatch(r"-?[0-9]{1,15}(\.[0-9]*)?", value) else None
            if epoch is None:
                text = value.strip()
                if text[-1:] in "zZ":  # Python 3.11 reads "Z", older ones did not
                    text = text[:-1] + "+00:00"
                when = datetime.fromisoformat(text)
                if when.tzinfo is None:
                    when = when.replace(tzinfo=UTC)  # no zone given: UTC
                epoch = when.timestamp()
        except (ValueError, OverflowError, IndexError):
            epoch = None
        if epoch is None or not math.isfinite(epoch) or not 0 <= epoch <= MAX_EPOCH:
            raise _BadQuery(
                f"{name}: expected a time as ISO 8601 (2024-05-01T14:00:00Z; no zone = UTC) "
                f"or epoch seconds 0..{MAX_EPOCH}, got {_text(value)}"
            )
        return math.floor(epoch)

    return parse


def _decisions_cursor(value: str) -> int:
    if _CURSOR_DECISIONS.fullmatch(value) and int(value) <= MAX_LOGIN:
        return int(value)
    raise _BadQuery(f"cursor: expected the `next` of a previous reply, got {_text(value)}")


def _trades_cursor(value: str) -> tuple[int, int, int]:
    m = _CURSOR_TRADES.fullmatch(value)
    if m and all(abs(int(g)) <= MAX_LOGIN for g in m.groups()):
        t, login, deal = (int(g) for g in m.groups())
        return t, login, deal
    raise _BadQuery(f"cursor: expected the `next` of a previous reply, got {_text(value)}")


_FORMAT = _one_of("format", ("json", "csv"))
_COMMON: dict[str, Callable[[str], Any]] = {
    "limit": _limit,
    "cursor": _decisions_cursor,
    "login": _login,
    "symbol": _symbol,
    "from": _time("from"),
    "to": _time("to"),
    "format": _FORMAT,
}
DECISION_PARAMS: dict[str, Callable[[str], Any]] = {
    **_COMMON,
    "action": _one_of("action", ("open", "hold", "close", "reduce")),
    "kind": _one_of("kind", DECISION_KINDS),
    "reason": _reason,
}
TRADE_PARAMS: dict[str, Callable[[str], Any]] = {
    **_COMMON,
    "cursor": _trades_cursor,
    "action": _one_of("action", ("open", "close")),
    "side": _one_of("side", ("buy", "sell")),
    "entry": _one_of("entry", ("in", "out", "inout", "out_by")),
}
STATS_PARAMS: dict[str, Callable[[str], Any]] = {
    "login": _login,
    "days": lambda v: (
        int(v)
        if v.isascii() and v.isdigit() and len(v) <= 4 and 1 <= int(v) <= 3660
        else _raise(f"days: expected an integer 1..3660, got {_text(v)}")
    ),
}
STATE_PARAMS: dict[str, Callable[[str], Any]] = {
    "tester": lambda v: (
        v.lower() in ("1", "true", "yes", "on")
        if v.lower() in ("0", "1", "true", "false", "yes", "no", "on", "off")
        else _raise(f"tester: expected true or false, got {_text(v)}")
    ),
}


def _raise(message: str) -> Any:
    raise _BadQuery(message)


def parse_query(request: Request, allowed: dict[str, Callable[[str], Any]]) -> dict[str, Any]:
    """The query parameters, each checked; an unknown one, a repeated one or a bad value raises
    _BadQuery with the message of the 400. An empty value counts as not given."""
    out: dict[str, Any] = {}
    params = request.query_params
    for key in params:
        if key not in allowed:
            raise _BadQuery(
                f"{_text(key)[1:-1]}: unknown query parameter; expected some of "
                f"{', '.join(allowed)}"
            )
        values = params.getlist(key)
        if len(values) > 1:
            raise _BadQuery(f"{key}: given {len(values)} times, expected once")
        if values[0] != "":
            out[key] = allowed[key](values[0])
    if "from" in out and "to" in out and out["from"] > out["to"]:
        raise _BadQuery(f"from: must be <= to, got from={out['from']} > to={out['to']}")
    return out


def iso(epoch: int | None) -> str | None:
    """Epoch seconds as ISO 8601 UTC (`2024-05-01T14:00:00Z`)."""
    if epoch is None or not -62135596800 <= epoch <= MAX_EPOCH:
        return None
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_server(epoch: int | None) -> str | None:
    """A broker server clock reading as ISO 8601 without a zone (it is not UTC)."""
    text = iso(epoch)
    return None if text is None else text[:-1]


def _decision_out(row: dict[str, Any]) -> dict[str, Any]:
    out = {
        "id": row["id"],
        "kind": row["kind"],
        "login": row["login"],
        "symbol": row["symbol"],
        "action": row["action"],
        "mode": row["mode"],
        "regime": row["regime"],
        "gmt": row["gmt"],
        "gmt_iso": iso(row["gmt"]),
        "last_gmt": row["last_gmt"],
        "last_gmt_iso": iso(row["last_gmt"]),
        "count": row["count"],
        "request_id": row["request_id"],
        "last_request_id": row["last_request_id"],
        "codes": row["codes"],
        "reasons": _reasons(row["verdict"]),
        "last_reasons": _reasons(row["last_verdict"]) if row["last_verdict"] else None,
        "detail": row["detail"],
        "verdict": _verdict_out(row["verdict"]),
        "last_verdict": _verdict_out(row["last_verdict"]),
    }
    return out


def _reasons(verdict: Any) -> list[str]:
    reasons = verdict.get("reasons") if isinstance(verdict, dict) else None
    return reasons if isinstance(reasons, list) else []


def _verdict_out(verdict: Any) -> Any:
    if isinstance(verdict, dict) and isinstance(verdict.get("valid_until"), int):
        return {**verdict, "valid_until_iso": iso(verdict["valid_until"])}
    return verdict


def _trade_out(row: dict[str, Any]) -> dict[str, Any]:
    return {
        **row,
        "time_server_iso": iso_server(row["time"]),
        "received_gmt_iso": iso(row["received_gmt"]),
    }


DECISION_CSV = (
    "id kind login symbol action mode regime gmt gmt_iso last_gmt last_gmt_iso count "
    "request_id last_request_id codes reasons last_reasons detail"
).split()
TRADE_CSV = (
    "login deal order_id position symbol side entry volume price profit commission swap time "
    "time_server_iso comment received_gmt received_gmt_iso"
).split()


# What makes a spreadsheet read a cell as a formula (OWASP's CSV injection list, with the
# fullwidth forms some spreadsheets fold to ASCII): such a text cell gets a leading "'".
_FORMULA_START = frozenset("=+-@\t\r\n\uff1d\uff0b\uff0d\uff20")


def _cell(value: Any) -> Any:
    if isinstance(value, list):
        value = " | ".join(str(v) for v in value)
    elif isinstance(value, dict):
        value = orjson.dumps(value).decode()
    if isinstance(value, str) and value[:1] in _FORMULA_START:
        value = "'" + value  # not a formula when opened in a spreadsheet
    return "" if value is None else value


def _csv(rows: list[dict[str, Any]], columns: list[str], next_cursor: str | None) -> Response:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    headers = {"X-Next-Cursor": next_cursor} if next_cursor else {}
    return Response(buf.getvalue(), media_type="text/csv; charset=utf-8", headers=headers)


def _wants_csv(request: Request, query: dict[str, Any]) -> bool:
    if "format" in query:
        return query["format"] == "csv"
    return "text/csv" in request.headers.get("accept", "").lower()


# With a token configured, only these paths answer without it: the monitors' two and the status
# page, which holds no data (its fetches carry the token). /docs and /openapi.json need it too.
OPEN_PATHS = frozenset({"/health", "/metrics", "/"})
_UNAUTHORIZED = "Authorization: missing or wrong bearer token"


def _bearer(headers: Any) -> str | None:
    auth = headers.get("authorization", "")
    return auth[7:].strip() if auth[:7].lower() == "bearer " else None


class TokenGate:
    """ASGI middleware: with a token configured, every request outside OPEN_PATHS without the
    right bearer token is a 401 before routing (no 404 or 405 that would map the API, no
    body read)."""

    def __init__(self, app: Any, sidecar: Sidecar) -> None:
        self.app = app
        self.sidecar = sidecar

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            scope["type"] == "http"
            and self.sidecar.config.server.token
            and scope["path"] not in OPEN_PATHS
            and not self.sidecar.token_ok(_bearer(Headers(scope=scope)))
        ):
            await _error(UNAUTHORIZED, _UNAUTHORIZED)(scope, receive, send)
            return
        await self.app(scope, receive, send)


# ------------------------------------------------------------ the OpenAPI document
#
# The routes read their bodies and queries themselves (the protocol's decoder, parse_query), so
# FastAPI cannot infer them: each operation states its request body, query parameters and every
# status it answers, with the protocol's own schemas (msgspec, the same as shared_schema/).

_REF = "#/components/schemas/{name}"
_PROTOCOL_SCHEMAS = msgspec.json.schema_components(
    [*REQUEST_TYPES.values(), *REPLY_TYPES.values()], ref_template=_REF
)[1]
_ERROR = {"$ref": _REF.format(name="ErrorReply")}
_OPEN_OBJECT: dict[str, Any] = {"type": "object"}
_WHY = {
    400: "Malformed JSON, a missing or invalid field, a bad query parameter (`BAD_JSON`, "
    "`BAD_REQUEST`, `UNSUPPORTED_VERSION`)",
    401: "The bearer token is missing or wrong (only with `server.token` set)",
    404: "Not found (`UNKNOWN_TYPE`, `NOT_FOUND`)",
    409: "Conflict (`UNKNOWN_SYMBOL`: send hello first; `NOT_HALTED`)",
    413: "The body is over `server.max_message_bytes` (`TOO_LARGE`)",
    503: "The database fails (`status: down`), or could not record this message "
    "(`STORE_WRITE_FAILED`: not acknowledged, send it again)",
}


# The HTTP statuses a message route can answer besides 200: a tick needs a hello first; a
# trade or calendar push is refused (503) when the database cannot record it.
_MESSAGE_ERRORS = {"tick": (400, 409, 413), "trade": (400, 413, 503), "calendar": (400, 413, 503)}


def _errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    return {
        code: {"description": _WHY[code], "content": {JSON: {"schema": _ERROR}}} for code in codes
    }


def _ok(schema: dict[str, Any], description: str = "OK") -> dict[int | str, dict[str, Any]]:
    return {200: {"description": description, "content": {JSON: {"schema": schema}}}}


_QUERY_RULES: dict[str, dict[str, Any]] = {
    "limit": {"type": "string", "description": "an integer 1..1000"},
    "login": {"type": "string", "description": "an account number"},
    "symbol": {"type": "string", "description": "1..64 printable characters"},
    "from": {"type": "string", "description": "ISO 8601 or epoch seconds"},
    "to": {"type": "string", "description": "ISO 8601 or epoch seconds"},
    "format": {"type": "string", "enum": ["json", "csv"]},
    "cursor": {"type": "string", "description": "the `next` of a previous reply"},
    "action": {"type": "string", "description": "open, hold, close, reduce (trades: open, close)"},
    "kind": {"type": "string", "enum": list(DECISION_KINDS)},
    "reason": {"type": "string", "description": "a reason code, e.g. RISK_DAILY_LOSS"},
    "side": {"type": "string", "enum": ["buy", "sell"]},
    "entry": {"type": "string", "enum": ["in", "out", "inout", "out_by"]},
    "days": {"type": "string", "description": "an integer 1..3660"},
    "tester": {"type": "string", "description": "true or false"},
}


def _query(params: dict[str, Callable[[str], Any]], required: tuple[str, ...] = ()) -> Any:
    """The query parameters of a route, each a string checked by its rule (a bad one is a
    400 naming it)."""
    return {
        "parameters": [
            {"name": n, "in": "query", "required": n in required, "schema": _QUERY_RULES[n]}
            for n in params
        ]
    }


_PAGE_OK = {
    200: {
        "description": "A page, newest first (CSV with format=csv or Accept: text/csv)",
        "content": {JSON: {"schema": _OPEN_OBJECT}, "text/csv": {"schema": {"type": "string"}}},
    }
}
_BODY: dict[str, Any] = {"required": True}


def _message_doc(msg_type: str) -> dict[str, Any]:
    ref = {"$ref": _REF.format(name=REQUEST_TYPES[msg_type].__name__)}
    return {"requestBody": {**_BODY, "content": {JSON: {"schema": ref}}}}


def _openapi(app: FastAPI) -> Callable[[], dict[str, Any]]:
    def build() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        doc = get_openapi(
            title=app.title,
            version=app.version,
            description="The sidecar's protocol over HTTP and its operator API "
            "(docs/api.md, docs/protocol.md). With `server.token` set every path but /health "
            "and /metrics needs `Authorization: Bearer <token>`.",
            routes=app.routes,
        )
        components = doc.setdefault("components", {})
        components.setdefault("schemas", {}).update(_PROTOCOL_SCHEMAS)
        components["securitySchemes"] = {"bearer": {"type": "http", "scheme": "bearer"}}
        for path, operations in doc.get("paths", {}).items():
            for operation in operations.values():
                responses = operation.setdefault("responses", {})
                responses.pop("422", None)  # validation errors are 400s in the protocol's shape
                if path not in OPEN_PATHS:  # the token gate answers 401 before any route
                    responses.setdefault("401", _errors(401)[401])
                    operation["security"] = [{}, {"bearer": []}]
        app.openapi_schema = doc
        return doc

    return build


def create_app(sidecar: Sidecar) -> FastAPI:
    app = FastAPI(title="MT5 Sidecar", version="1", docs_url="/docs", redoc_url=None)
    app.add_middleware(TokenGate, sidecar=sidecar)
    limit = sidecar.config.server.max_message_bytes

    def authorized(request: Request) -> bool:  # TokenGate checked it; each route says so too
        return sidecar.token_ok(_bearer(request.headers))

    async def message(msg_type: str, request: Request) -> Response:
        if not authorized(request):  # before anything else, a 404 included
            return _error(UNAUTHORIZED, _UNAUTHORIZED)
        if msg_type == "resume":
            return await resume(request)
        if msg_type not in REQUEST_TYPES:
            return _error(
                UNKNOWN_TYPE,
                f"path: expected /v1/<{'|'.join(REQUEST_TYPES)}|resume>, got /v1/{msg_type}",
            )
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

    def typed(msg_type: str) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            return await message(msg_type, request)

        endpoint.__name__ = f"post_{msg_type}"
        return endpoint

    for msg_type, model in REQUEST_TYPES.items():
        reply = "Verdict" if msg_type == "tick" else "Ack"
        app.add_api_route(
            f"/v1/{msg_type}",
            typed(msg_type),
            methods=["POST"],
            summary=f"{msg_type} (the protocol's {model.__name__} message)",
            openapi_extra=_message_doc(msg_type),
            responses={
                **_ok({"$ref": _REF.format(name=reply)}, f"The {reply.lower()}"),
                **_errors(*_MESSAGE_ERRORS.get(msg_type, (400, 413))),
            },
        )

    @app.post(
        "/v1/resume",
        summary="Lift a halt",
        openapi_extra={
            "requestBody": {
                **_BODY,
                "content": {
                    JSON: {
                        "schema": {
                            "type": "object",
                            "properties": {
                                "login": {"type": "integer"},
                                "reason": {"type": "string", "minLength": 1},
                            },
                            "required": ["login", "reason"],
                        }
                    }
                },
            }
        },
        responses={**_ok(_OPEN_OBJECT, "Resumed"), **_errors(400, 404, 409, 413)},
    )
    async def resume_route(request: Request) -> Response:
        return await resume(request)

    # Anything else under /v1/ answers UNKNOWN_TYPE (404) in the protocol's shape.
    app.post("/v1/{msg_type}", include_in_schema=False)(message)

    async def resume(request: Request) -> Response:
        if not authorized(request):
            return _error(UNAUTHORIZED, _UNAUTHORIZED)
        try:
            body = orjson.loads(await _read_body(request, limit))
        except _TooLarge as exc:
            return _error(TOO_LARGE, f"body: at most {limit} bytes, got {exc.args[0]}")
        except orjson.JSONDecodeError:
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
        with sidecar.lock:
            current = sidecar.states.get(login)
        if current is None:
            return _error(NOT_FOUND, f"login: no state for account {login}")
        if current.mode != "halted":
            lifts = (
                "it lifts by itself when the drawdown falls below risk.reducing_resume_pct"
                if current.mode == "reducing"
                else "only a halted account can be resumed"
            )
            return _error(
                NOT_HALTED,
                f"login: account {login} is {current.mode}, not halted: nothing to resume "
                f"({lifts})",
            )
        try:
            state = sidecar.resume(login, reason.strip()[:500])
        except KeyError:
            return _error(NOT_FOUND, f"login: no state for account {login}")
        return _json({"ok": True, "login": login, "mode": state.mode, "high_water_mark": state.hwm})

    @app.get(
        "/health",
        responses={
            **_ok(_OPEN_OBJECT, "ok or degraded"),
            503: {"description": _WHY[503], "content": {JSON: {"schema": _OPEN_OBJECT}}},
        },
    )
    async def health() -> Response:
        report = sidecar.health()
        return _json(report, 200 if report["status"] != "down" else 503)

    @app.get(
        "/v1/state",
        openapi_extra=_query(STATE_PARAMS),
        responses={**_ok(_OPEN_OBJECT), **_errors(400)},
    )
    async def state(request: Request) -> Response:
        if not authorized(request):
            return _error(UNAUTHORIZED, _UNAUTHORIZED)
        try:
            query = parse_query(request, STATE_PARAMS)
        except _BadQuery as exc:
            return _error(BAD_REQUEST, str(exc))
        if query.get("tester"):  # the Strategy Tester sessions (in memory, never persisted)
            book = sidecar.tester_book
            return _json(book.state_report() if book else {"accounts": [], "symbols": []})
        return _json(sidecar.state_report())

    @app.get(
        "/v1/decisions",
        openapi_extra=_query(DECISION_PARAMS),
        responses={**_PAGE_OK, **_errors(400)},
    )
    # A plain def: FastAPI runs it in its threadpool, since it waits for the journal flush.
    def decisions(request: Request) -> Response:
        if not authorized(request):
            return _error(UNAUTHORIZED, _UNAUTHORIZED)
        try:
            q = parse_query(request, DECISION_PARAMS)
        except _BadQuery as exc:
            return _error(BAD_REQUEST, str(exc))
        limit = q.get("limit", 100)
        sidecar.after_reply()  # the newest verdict's journal row may still be pending
        rows = sidecar.store.decisions(
            q.get("symbol"),
            limit + 1,
            login=q.get("login"),
            action=q.get("action"),
            kind=q.get("kind"),
            reason=q.get("reason"),
            since=q.get("from"),
            until=q.get("to"),
            before_id=q.get("cursor"),
        )
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = str(rows[-1]["id"]) if more else None
        out = [_decision_out(r) for r in rows]
        if _wants_csv(request, q):
            return _csv(out, DECISION_CSV, next_cursor)
        return _json({"decisions": out, "count": len(out), "next": next_cursor})

    @app.get(
        "/v1/trades",
        openapi_extra=_query(TRADE_PARAMS),
        responses={**_PAGE_OK, **_errors(400)},
    )
    def trades(request: Request) -> Response:
        if not authorized(request):
            return _error(UNAUTHORIZED, _UNAUTHORIZED)
        try:
            q = parse_query(request, TRADE_PARAMS)
        except _BadQuery as exc:
            return _error(BAD_REQUEST, str(exc))
        limit = q.get("limit", 100)
        entries = None
        if "action" in q:
            entries = ["in"] if q["action"] == "open" else ["out", "inout", "out_by"]
        if "entry" in q:
            entries = [e for e in (entries or [q["entry"]]) if e == q["entry"]] or ["-"]
        rows = sidecar.store.trades_page(
            login=q.get("login"),
            symbol=q.get("symbol"),
            side=q.get("side"),
            entries=entries,
            since=q.get("from"),
            until=q.get("to"),
            before=q.get("cursor"),
            limit=limit + 1,
        )
        more = len(rows) > limit
        rows = rows[:limit]
        last = rows[-1] if rows else None
        next_cursor = f"{last['time']}.{last['login']}.{last['deal']}" if more and last else None
        out = [_trade_out(r) for r in rows]
        if _wants_csv(request, q):
            return _csv(out, TRADE_CSV, next_cursor)
        return _json({"trades": out, "count": len(out), "next": next_cursor})

    @app.get(
        "/v1/stats",
        openapi_extra=_query(STATS_PARAMS, required=("login",)),
        responses={**_ok(_OPEN_OBJECT), **_errors(400, 404)},
    )
    def stats(request: Request) -> Response:
        if not authorized(request):
            return _error(UNAUTHORIZED, _UNAUTHORIZED)
        try:
            q = parse_query(request, STATS_PARAMS)
        except _BadQuery as exc:
            return _error(BAD_REQUEST, str(exc))
        if "login" not in q:
            return _error(BAD_REQUEST, "login: required (the account number)")
        report = sidecar.stats_report(q["login"], q.get("days", 30))
        if report is None:
            return _error(NOT_FOUND, f"login: no trades or state on file for account {q['login']}")
        cooldown = report["cooldown"]
        cooldown["until_server_iso"] = iso_server(cooldown["until_server"])
        return _json(report)

    @app.get(
        "/metrics",
        responses={
            200: {
                "description": "Prometheus text format",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }
        },
    )
    async def metrics() -> Response:
        sidecar.health()  # refreshes heartbeat ages
        return Response(sidecar.metrics.render(), media_type=CONTENT_TYPE)

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "query") or "request"
        return _error(BAD_REQUEST, f"{where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(Exception)
    async def internal(_request: Request, _exc: Exception) -> Response:
        return _error(INTERNAL, "internal error")

    status_page.register(app, sidecar, authorized)
    # Alertmanager's webhook (POST /alerts/alertmanager): behind the token gate like the API;
    # Alertmanager sends the token with http_config.authorization (docs/alerts.md).
    relay = alerts.relay_for(sidecar.config, sidecar.metrics.registry)
    app.state.alert_relay = relay
    alerts.register(app, relay, authorized)
    app.openapi = _openapi(app)  # type: ignore[method-assign]
    return app
