"""Wire contract v1: message types, decoding with clear errors, encoding.

The msgspec structs here are the single source of truth: `sidecar schema --out shared_schema/`
generates the JSON Schemas from them and a test fails when the checked-in files differ. msgspec
validates a tick in ~2 µs (pydantic took ~20 µs), which keeps the verdict path near a bare echo.

Decoding raises only `ProtocolError`, whose `code` and `message` go back to the EA as an `error`
reply naming the field and what was expected.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

import msgspec
import orjson

PROTOCOL_VERSION = 1
MAX_MESSAGE_BYTES = 64 * 1024

# Error codes sent in `error` replies.
BAD_JSON = "BAD_JSON"
BAD_REQUEST = "BAD_REQUEST"
UNSUPPORTED_VERSION = "UNSUPPORTED_VERSION"
UNKNOWN_TYPE = "UNKNOWN_TYPE"
TOO_LARGE = "TOO_LARGE"
UNAUTHORIZED = "UNAUTHORIZED"
UNKNOWN_SYMBOL = "UNKNOWN_SYMBOL"
INTERNAL = "INTERNAL"
ERROR_CODES = (
    BAD_JSON,
    BAD_REQUEST,
    UNSUPPORTED_VERSION,
    UNKNOWN_TYPE,
    TOO_LARGE,
    UNAUTHORIZED,
    UNKNOWN_SYMBOL,
    INTERNAL,
)


class ProtocolError(Exception):
    def __init__(self, code: str, message: str, request_id: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_id = request_id


# Every number has a sanity ceiling: 1e400 parses as inf and must never reach the sizing maths.
_BIG = 1e15
Price = Annotated[float, msgspec.Meta(gt=0, lt=_BIG)]
Money = Annotated[float, msgspec.Meta(gt=-_BIG, lt=_BIG)]
NonNegMoney = Annotated[float, msgspec.Meta(ge=0, lt=_BIG)]
PosMoney = Annotated[float, msgspec.Meta(gt=0, lt=_BIG)]
Volume = Annotated[float, msgspec.Meta(gt=0, lt=_BIG)]
NonNegInt = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
PosInt = Annotated[int, msgspec.Meta(gt=0, le=2**63 - 1)]
Id = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
Comment = Annotated[str, msgspec.Meta(max_length=64)]
Side = Literal["buy", "sell"]
# [time, open, high, low, close, tick_volume, spread]
BarRow = tuple[NonNegInt, Price, Price, Price, Price, NonNegMoney, NonNegMoney]


class _Struct(msgspec.Struct, forbid_unknown_fields=True, frozen=True, gc=False):
    """Base for every wire object: unknown fields are errors (typos must not pass silently).
    gc=False: messages hold no reference cycles, so the cyclic collector need not track them
    (thousands per second otherwise trigger collections on the verdict path)."""


def _check_bars(bars: list[BarRow]) -> None:
    prev = -1
    for i, (t, o, h, lo, c, _vol, _spread) in enumerate(bars):
        if h < lo or h < o or h < c or lo > o or lo > c:
            raise ValueError(
                f"bars[{i}]: expected low <= open, close <= high, got "
                f"open={o} high={h} low={lo} close={c}"
            )
        if t <= prev:
            raise ValueError(f"bars[{i}]: times must increase (oldest first), got {t} after {prev}")
        prev = t


# ---------------------------------------------------------------- hello


class EAInfo(_Struct):
    name: Name
    version: Name
    magic: NonNegInt
    tester: bool = False
    # The EA's InpDayOffsetHours: where its own daily-loss hard limit starts the broker day. The
    # sidecar compares it with `broker.day_offset_hours` (absent: an EA that does not say).
    day_offset_hours: Annotated[float, msgspec.Meta(ge=-23, le=23)] | None = None


class HelloAccount(_Struct):
    login: NonNegInt
    server: Annotated[str, msgspec.Meta(max_length=128)]
    currency: Annotated[str, msgspec.Meta(min_length=3, max_length=8)]
    leverage: PosInt
    balance: PosMoney
    equity: NonNegMoney
    margin: NonNegMoney
    free_margin: Money


# Broker servers run at most +14/-12 hours from GMT; a bigger gap is a broken clock.
MAX_SERVER_GMT_GAP = 14 * 3600


def _check_clock(server: int, gmt: int) -> None:
    if abs(server - gmt) > MAX_SERVER_GMT_GAP:
        raise ValueError(f"time.gmt: must be within 14 h of time.server ({server}), got {gmt}")


class ServerTime(_Struct):
    server: PosInt
    gmt: PosInt

    def __post_init__(self) -> None:
        _check_clock(self.server, self.gmt)


class TickTime(_Struct):
    server: PosInt
    gmt: PosInt
    msc: NonNegInt = 0

    def __post_init__(self) -> None:
        _check_clock(self.server, self.gmt)


class SymbolSpec(_Struct):
    name: Name
    digits: Annotated[int, msgspec.Meta(ge=0, le=10)]
    point: Price
    tick_size: Price
    tick_value: Price
    contract_size: Price
    volume_min: Volume
    volume_step: Volume
    volume_max: Volume
    base: Annotated[str, msgspec.Meta(max_length=16)] = ""
    quote: Annotated[str, msgspec.Meta(max_length=16)] = ""
    stops_level: NonNegInt = 0
    freeze_level: NonNegInt = 0

    def __post_init__(self) -> None:
        if self.volume_max < self.volume_min:
            raise ValueError(
                f"symbol.volume_max: must be >= volume_min ({self.volume_min}), "
                f"got {self.volume_max}"
            )


class Hello(_Struct, tag_field="type", tag="hello"):
    v: int
    id: Id
    ea: EAInfo
    account: HelloAccount
    time: ServerTime
    symbol: SymbolSpec
    timeframe: Name
    bars: Annotated[list[BarRow], msgspec.Meta(max_length=5000)] = []
    token: str | None = None

    def __post_init__(self) -> None:
        _check_bars(self.bars)


# ---------------------------------------------------------------- tick


class AccountSnapshot(_Struct):
    balance: PosMoney
    equity: NonNegMoney
    margin: NonNegMoney
    free_margin: Money


class Position(_Struct):
    ticket: NonNegInt
    symbol: Name
    side: Side
    volume: Volume
    price_open: Price
    sl: NonNegMoney = 0.0  # 0 = no stop
    tp: NonNegMoney = 0.0  # 0 = no target
    profit: Money = 0.0
    swap: Money = 0.0
    time: NonNegInt = 0
    comment: Comment = ""


class Tick(_Struct, tag_field="type", tag="tick"):
    v: int
    id: Id
    login: NonNegInt
    symbol: Name
    timeframe: Name
    time: TickTime
    bid: Price
    ask: Price
    account: AccountSnapshot
    positions: Annotated[list[Position], msgspec.Meta(max_length=200)] = []
    bars: Annotated[list[BarRow], msgspec.Meta(max_length=500)] = []
    # Optional fresh tick value: it moves with the price for cross and JPY pairs.
    tick_value: Price | None = None
    # Sent by an EA running in the Strategy Tester: the sidecar keeps tester sessions apart from
    # live ones (the tester reports the real account's login) and never persists them.
    tester: bool = False
    token: str | None = None

    def __post_init__(self) -> None:
        if self.bid > self.ask:
            raise ValueError(f"bid: must be <= ask ({self.ask}), got {self.bid}")
        _check_bars(self.bars)


# ---------------------------------------------------------------- trade


class Trade(_Struct, tag_field="type", tag="trade"):
    v: int
    id: Id
    login: NonNegInt
    deal: PosInt
    symbol: Name
    side: Side
    entry: Literal["in", "out", "inout", "out_by"]
    volume: NonNegMoney
    price: NonNegMoney
    time: NonNegInt
    order: NonNegInt = 0
    position: NonNegInt = 0
    profit: Money = 0.0
    commission: Money = 0.0
    swap: Money = 0.0
    comment: Comment = ""
    tester: bool = False  # a deal of a Strategy Tester run (kept apart, never persisted)
    token: str | None = None


# ---------------------------------------------------------------- calendar


class CalendarEvent(_Struct):
    id: Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
    time_gmt: PosInt
    currency: Annotated[str, msgspec.Meta(min_length=2, max_length=8)]
    importance: Literal["none", "low", "medium", "high"]
    name: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
    actual: Money | None = None
    forecast: Money | None = None
    previous: Money | None = None


class Calendar(_Struct, tag_field="type", tag="calendar"):
    v: int
    id: Id
    login: NonNegInt
    events: Annotated[list[CalendarEvent], msgspec.Meta(max_length=2000)]
    source: Literal["mt5"] = "mt5"
    token: str | None = None


# ---------------------------------------------------------------- heartbeat


class Heartbeat(_Struct, tag_field="type", tag="heartbeat"):
    v: int
    id: Id
    login: NonNegInt
    symbol: Name
    time: ServerTime
    tester: bool = False
    token: str | None = None


# ---------------------------------------------------------------- replies


class Ack(msgspec.Struct, tag_field="type", tag="ack", frozen=True, kw_only=True, gc=False):
    v: int = PROTOCOL_VERSION
    id: str | None
    ok: bool = True
    duplicate: bool = False  # a trade already recorded (idempotent by deal ticket)


class OpenOrder(msgspec.Struct, frozen=True, gc=False):
    side: Side
    volume: Volume
    sl: Price
    tp: Price
    risk_pct: Annotated[float, msgspec.Meta(gt=0, le=100)]
    signal_id: Id


class CloseOrder(msgspec.Struct, frozen=True, gc=False):
    ticket: NonNegInt
    volume: Volume


class Manage(msgspec.Struct, frozen=True, gc=False):
    breakeven_r: NonNegMoney  # move SL to entry (+ buffer) once profit reaches this many R
    partial_r: NonNegMoney  # close `partial_fraction` once profit reaches this many R
    partial_fraction: Annotated[float, msgspec.Meta(ge=0, le=1)]
    trail_atr: NonNegMoney  # ATR multiple for the trailing stop after the partial
    trail_distance: NonNegMoney  # the same trail as a price distance (trail_atr x ATR)
    breakeven_buffer: NonNegMoney = 0.0  # price distance beyond entry for the breakeven stop


class Verdict(msgspec.Struct, tag_field="type", tag="verdict", frozen=True, kw_only=True, gc=False):
    v: int = PROTOCOL_VERSION
    id: str | None
    ok: bool = True
    action: Literal["open", "hold", "close", "reduce"]
    mode: Literal["active", "reducing", "halted"]
    manage: Manage
    leverage_cap: PosInt
    valid_until: NonNegInt
    open: OpenOrder | None = None
    close: list[CloseOrder] = []
    reasons: list[str] = []


class ErrorBody(msgspec.Struct, frozen=True, gc=False):
    code: str
    message: str


class ErrorReply(
    msgspec.Struct, tag_field="type", tag="error", frozen=True, kw_only=True, gc=False
):
    v: int = PROTOCOL_VERSION
    id: str | None
    ok: bool = False
    error: ErrorBody


Request = Hello | Tick | Trade | Calendar | Heartbeat
Reply = Ack | Verdict | ErrorReply
REQUEST_TYPES: dict[str, type] = {
    "hello": Hello,
    "tick": Tick,
    "trade": Trade,
    "calendar": Calendar,
    "heartbeat": Heartbeat,
}
REPLY_TYPES: dict[str, type] = {"ack": Ack, "verdict": Verdict, "error": ErrorReply}

_decoder = msgspec.json.Decoder(Request)
_encoder = msgspec.json.Encoder()


# ---------------------------------------------------------------- decoding

_AT = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_PATH_PART = re.compile(r"\.([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


def _lookup(obj: Any, path: str) -> tuple[bool, Any]:
    for name, index in _PATH_PART.findall(path):
        try:
            obj = obj[name] if name else obj[int(index)]
        except (KeyError, IndexError, TypeError):
            return False, None
    return True, obj


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# Greedy to the closing backtick: a field name may itself contain backticks.
_UNKNOWN = re.compile(r"Object contains unknown field `(.*)`$", re.S)
_MISSING = re.compile(r"Object missing required field `(.*)`$", re.S)


def _explain(exc: msgspec.ValidationError, obj: Any) -> str:
    """Turn "Expected `float` > 0.0 - at `$.bid`" into "bid: expected `float` > 0.0, got -1"."""
    m = _AT.match(str(exc))
    msg, path = (m.group("msg"), m.group("path")) if m else (str(exc), None)
    prefix = path.lstrip(".") + "." if path else ""
    if u := _UNKNOWN.match(msg):
        name = u.group(1)
        if not name.isidentifier():  # "", "a b", "`": quoted, so the message still names it
            name = json.dumps(name)
        return f"{prefix}{name}: unknown field, not part of protocol v{PROTOCOL_VERSION}"
    if u := _MISSING.match(msg):
        return f"{prefix}{u.group(1)}: required field is missing"
    if path is None:
        return msg  # our own __post_init__ messages already name the field
    found, value = _lookup(obj, path)
    got = f", got {_short(value)}" if found and "got" not in msg else ""
    return f"{path.lstrip('.') or 'message'}: {msg[0].lower()}{msg[1:]}{got}"


def decode(raw: bytes | str, max_bytes: int = MAX_MESSAGE_BYTES) -> Request:
    """Parse and validate one request; raise ProtocolError naming what is wrong."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", errors="replace")
    if len(raw) > max_bytes:
        raise ProtocolError(TOO_LARGE, f"message: at most {max_bytes} bytes, got {len(raw)}")
    # MQL5's StringToCharArray copies the terminating NUL into the payload.
    raw = raw.rstrip(b"\x00 \r\n\t")
    try:
        msg = _decoder.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError):
        _diagnose(raw)  # always raises
        raise  # pragma: no cover - _diagnose never returns
    if msg.v != PROTOCOL_VERSION:
        raise ProtocolError(
            UNSUPPORTED_VERSION, f"v: expected {PROTOCOL_VERSION}, got {msg.v}", msg.id
        )
    return msg


def _diagnose(raw: bytes) -> None:
    """Slow path for a request that failed: work out the most useful error (never returns)."""
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(BAD_JSON, f"message: expected one JSON object, {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError(BAD_JSON, f"message: expected a JSON object, got {type(obj).__name__}")
    req_id = obj.get("id")
    req_id = req_id if isinstance(req_id, str) and 0 < len(req_id) <= 128 else None
    version = obj.get("v")
    if version != PROTOCOL_VERSION or isinstance(version, bool):
        raise ProtocolError(
            UNSUPPORTED_VERSION, f"v: expected {PROTOCOL_VERSION}, got {_short(version)}", req_id
        )
    msg_type = obj.get("type")
    model = REQUEST_TYPES.get(msg_type) if isinstance(msg_type, str) else None
    if model is None:
        raise ProtocolError(
            UNKNOWN_TYPE,
            f"type: expected one of {', '.join(REQUEST_TYPES)}, got {_short(msg_type)}",
            req_id,
        )
    try:
        msgspec.json.decode(raw, type=model)
    except msgspec.ValidationError as exc:
        raise ProtocolError(BAD_REQUEST, _explain(exc, obj), req_id) from None
    except msgspec.DecodeError as exc:  # e.g. NaN literals orjson tolerated
        raise ProtocolError(BAD_JSON, f"message: {exc}", req_id) from None
    raise ProtocolError(BAD_REQUEST, "message: could not be decoded", req_id)


# ---------------------------------------------------------------- encoding


def type_of(message: Any) -> str:
    """The wire `type` of a message struct (msgspec keeps the tag on the class config)."""
    return str(message.__struct_config__.tag)


def encode(message: Any) -> bytes:
    """Serialise a reply (or request) as compact UTF-8 JSON."""
    return _encoder.encode(message)


def decode_reply(raw: bytes | str) -> Reply:
    """Parse a reply (used by test clients and the benchmark, the way the EA would)."""
    return msgspec.json.decode(raw, type=Reply)


def error_reply(code: str, message: str, request_id: str | None) -> ErrorReply:
    return ErrorReply(id=request_id, error=ErrorBody(code=code, message=message))
