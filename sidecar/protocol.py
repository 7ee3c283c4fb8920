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
# A valid message the database could not record (a `trade`, a `calendar`): not acknowledged,
# so the EA keeps it queued and sends it again (HTTP 503).
STORE_WRITE_FAILED = "STORE_WRITE_FAILED"
ERROR_CODES = (
    BAD_JSON,
    BAD_REQUEST,
    UNSUPPORTED_VERSION,
    UNKNOWN_TYPE,
    TOO_LARGE,
    UNAUTHORIZED,
    UNKNOWN_SYMBOL,
    STORE_WRITE_FAILED,
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


# Field documentation lives next to the types: `doc(meaning, unit)` becomes the field's
# `description` (and `x-unit`) in the JSON Schemas, and `python -m sidecar.docs_protocol` writes
# docs/protocol.md from those schemas. It adds no constraint: decoding is unchanged.
def doc(description: str, unit: str | None = None) -> msgspec.Meta:
    if unit is None:
        return msgspec.Meta(description=description)
    return msgspec.Meta(description=description, extra_json_schema={"x-unit": unit})


PRICE = "price, as quoted"
MONEY = "account currency"
LOTS = "lots"
SERVER_S = "Unix seconds, server time"
GMT_S = "Unix seconds, GMT"

VersionField = Annotated[int, doc(f"Protocol version: always {PROTOCOL_VERSION}.")]
IdField = Annotated[Id, doc("Request id, echoed by the reply (1-128 characters).")]
LoginField = Annotated[NonNegInt, doc("Trading account number (ACCOUNT_LOGIN).")]
SymbolField = Annotated[Name, doc("Symbol name as the terminal shows it, e.g. EURUSD.")]
TokenField = Annotated[
    str | None,
    doc("Shared secret (`server.token`); required over ZeroMQ when the sidecar has one."),
]
TesterField = Annotated[
    bool,
    doc(
        "Sent by an EA in the Strategy Tester: kept apart from the live account, never "
        "persisted (a live EA leaves it out)."
    ),
]
BarsDoc = (
    "Closed bars, oldest first, each [time, open, high, low, close, tick_volume, spread]: "
    "time = bar open in server time (Unix seconds), prices as quoted, spread in points."
)


# ---------------------------------------------------------------- hello

Pct = Annotated[float, msgspec.Meta(gt=0, le=100)]


class EALimits(_Struct):
    """The EA's hard-limit inputs (its Guard.mqh limits), for the sidecar to compare with its own
    configuration: a looser one is logged and degrades /health; nothing is refused for it."""

    max_risk_pct: Annotated[
        Pct, doc("InpMaxRiskPct: most risk per trade; vs risk.max_risk_pct.", "% of equity")
    ]
    max_leverage: Annotated[
        Annotated[float, msgspec.Meta(ge=1, lt=_BIG)],
        doc("InpMaxLeverage: most notional / equity (1:N, N given); vs leverage.profit."),
    ]
    daily_loss_pct: Annotated[
        Pct,
        doc("InpDailyLossPct: daily loss limit; vs risk.daily_loss_pct.", "% of day-start equity"),
    ]
    floating_loss_pct: Annotated[
        Pct, doc("InpFloatingLossPct: open-loss limit; vs risk.floating_loss_pct.", "% of balance")
    ]
    max_drawdown_pct: Annotated[
        Pct,
        doc(
            "InpMaxDrawdownPct: drawdown limit; vs risk.drawdown_halted_pct.",
            "% of the equity high-water mark",
        ),
    ]
    max_positions: Annotated[
        Annotated[int, msgspec.Meta(ge=1, le=2**31 - 1)],
        doc("InpMaxPositions: most open positions of the EA; vs risk.max_positions."),
    ]
    equity_floor_pct: Annotated[
        Annotated[float, msgspec.Meta(ge=0, lt=100)],
        doc(
            "InpEquityFloorPct: close everything at or below this share of the high-water mark "
            "(0 = off); looser when below risk.equity_floor_pct.",
            "% of the equity high-water mark",
        ),
    ]


class EAInfo(_Struct):
    """The EA: name, version, magic number and where it runs."""

    name: Annotated[Name, doc("EA program name (SidecarEA).")]
    version: Annotated[Name, doc("EA version, e.g. 1.0.0.")]
    magic: Annotated[NonNegInt, doc("Magic number of the EA's orders and positions.")]
    tester: Annotated[bool, doc("True when the EA runs in the Strategy Tester.")] = False
    # The EA's InpDayOffsetHours: where its own daily-loss hard limit starts the broker day. The
    # sidecar compares it with `broker.day_offset_hours` (absent: an EA that does not say).
    day_offset_hours: Annotated[
        Annotated[float, msgspec.Meta(ge=-23, le=23)] | None,
        doc(
            "The EA's InpDayOffsetHours: its broker day starts at server midnight plus this; "
            "compared with the sidecar's broker.day_offset_hours (absent: not said).",
            "hours",
        ),
    ] = None
    # The EA's hard limits; absent (an EA older than the field): /health says they are unknown.
    limits: Annotated[
        EALimits | None,
        doc(
            "The EA's hard-limit inputs, compared with the sidecar's configuration: a looser one "
            "is logged and degrades /health (absent: unknown, not judged)."
        ),
    ] = None


class HelloAccount(_Struct):
    """The trading account at start-up."""

    login: LoginField
    server: Annotated[
        Annotated[str, msgspec.Meta(max_length=128)], doc("Trade server name (ACCOUNT_SERVER).")
    ]
    currency: Annotated[
        Annotated[str, msgspec.Meta(min_length=3, max_length=8)],
        doc("Account currency, e.g. USD: the unit of every money field."),
    ]
    leverage: Annotated[PosInt, doc("Broker leverage of the account (1:N, N given).")]
    balance: Annotated[PosMoney, doc("Balance.", MONEY)]
    equity: Annotated[NonNegMoney, doc("Equity: balance plus floating profit.", MONEY)]
    margin: Annotated[NonNegMoney, doc("Margin in use.", MONEY)]
    free_margin: Annotated[Money, doc("Free margin: equity minus margin.", MONEY)]


# Broker servers run at most +14/-12 hours from GMT; a bigger gap is a broken clock.
MAX_SERVER_GMT_GAP = 14 * 3600


def _check_clock(server: int, gmt: int) -> None:
    if abs(server - gmt) > MAX_SERVER_GMT_GAP:
        raise ValueError(f"time.gmt: must be within 14 h of time.server ({server}), got {gmt}")


ServerClock = Annotated[PosInt, doc("Trade server time (TimeTradeServer).", SERVER_S)]
GmtClock = Annotated[
    PosInt,
    doc(
        "GMT time (TimeGMT; the Strategy Tester sends server time). The engine's clock: "
        "within 14 h of `server`.",
        GMT_S,
    ),
]


class ServerTime(_Struct):
    """The EA's clocks when it sent the message."""

    server: ServerClock
    gmt: GmtClock

    def __post_init__(self) -> None:
        _check_clock(self.server, self.gmt)


class TickTime(_Struct):
    """The tick's clocks."""

    server: ServerClock
    gmt: GmtClock
    msc: Annotated[
        NonNegInt, doc("Tick time in milliseconds (MqlTick.time_msc).", "Unix milliseconds")
    ] = 0

    def __post_init__(self) -> None:
        _check_clock(self.server, self.gmt)


class SymbolSpec(_Struct):
    """The symbol's contract specification (SymbolInfo*)."""

    name: SymbolField
    digits: Annotated[
        Annotated[int, msgspec.Meta(ge=0, le=10)], doc("Decimal digits of the price (0-10).")
    ]
    point: Annotated[Price, doc("Size of one point (SYMBOL_POINT).", PRICE)]
    tick_size: Annotated[Price, doc("Smallest price change (SYMBOL_TRADE_TICK_SIZE).", PRICE)]
    tick_value: Annotated[
        Price, doc("Value of one tick for one lot (SYMBOL_TRADE_TICK_VALUE).", MONEY)
    ]
    contract_size: Annotated[
        Price, doc("Units of the base asset in one lot (SYMBOL_TRADE_CONTRACT_SIZE).", "units")
    ]
    volume_min: Annotated[Volume, doc("Smallest order volume.", LOTS)]
    volume_step: Annotated[Volume, doc("Volume step.", LOTS)]
    volume_max: Annotated[Volume, doc("Largest order volume (>= volume_min).", LOTS)]
    base: Annotated[
        Annotated[str, msgspec.Meta(max_length=16)],
        doc("Base currency (SYMBOL_CURRENCY_BASE); for the news gate and exposure."),
    ] = ""
    quote: Annotated[
        Annotated[str, msgspec.Meta(max_length=16)],
        doc("Quote (profit) currency (SYMBOL_CURRENCY_PROFIT)."),
    ] = ""
    stops_level: Annotated[
        NonNegInt,
        doc("Minimum distance of stops from the price (SYMBOL_TRADE_STOPS_LEVEL).", "points"),
    ] = 0
    freeze_level: Annotated[
        NonNegInt, doc("Freeze distance (SYMBOL_TRADE_FREEZE_LEVEL).", "points")
    ] = 0

    def __post_init__(self) -> None:
        if self.volume_max < self.volume_min:
            raise ValueError(
                f"symbol.volume_max: must be >= volume_min ({self.volume_min}), "
                f"got {self.volume_max}"
            )


class Hello(_Struct, tag_field="type", tag="hello"):
    """EA -> sidecar on init and reconnect: who it is, the account, the symbol and its warm-up
    bars. Reply: `ack`."""

    v: VersionField
    id: IdField
    ea: Annotated[EAInfo, doc("The EA's identity.")]
    account: Annotated[HelloAccount, doc("The account.")]
    time: Annotated[ServerTime, doc("Clocks at sending.")]
    symbol: Annotated[SymbolSpec, doc("The chart symbol's specification.")]
    timeframe: Annotated[Name, doc("Timeframe of the bars, e.g. H1 (the EA's InpTimeframe).")]
    bars: Annotated[
        Annotated[list[BarRow], msgspec.Meta(max_length=5000)],
        doc(BarsDoc + " Warm-up history, at most 5,000."),
    ] = []
    token: TokenField = None

    def __post_init__(self) -> None:
        _check_bars(self.bars)


# ---------------------------------------------------------------- tick


class AccountSnapshot(_Struct):
    """The account at this tick."""

    balance: Annotated[PosMoney, doc("Balance.", MONEY)]
    equity: Annotated[NonNegMoney, doc("Equity: balance plus floating profit.", MONEY)]
    margin: Annotated[NonNegMoney, doc("Margin in use.", MONEY)]
    free_margin: Annotated[Money, doc("Free margin: equity minus margin.", MONEY)]


class Position(_Struct):
    """One open position of this EA (its magic number), any symbol."""

    ticket: Annotated[NonNegInt, doc("Position ticket (POSITION_TICKET).")]
    symbol: SymbolField
    side: Annotated[Side, doc("buy or sell.")]
    volume: Annotated[Volume, doc("Open volume.", LOTS)]
    price_open: Annotated[Price, doc("Open price.", PRICE)]
    sl: Annotated[NonNegMoney, doc("Stop loss; 0 = no stop.", PRICE)] = 0.0
    tp: Annotated[NonNegMoney, doc("Take profit; 0 = no target.", PRICE)] = 0.0
    profit: Annotated[Money, doc("Floating profit.", MONEY)] = 0.0
    swap: Annotated[Money, doc("Accumulated swap.", MONEY)] = 0.0
    time: Annotated[NonNegInt, doc("Open time.", SERVER_S)] = 0
    comment: Annotated[
        Comment, doc("Order comment: sc:<signal_id> for the sidecar's entries (<= 64 chars).")
    ] = ""


class Tick(_Struct, tag_field="type", tag="tick"):
    """EA -> sidecar on every tick: prices, the account, this EA's positions and the bars closed
    since the last tick. Reply: `verdict`."""

    v: VersionField
    id: IdField
    login: LoginField
    symbol: SymbolField
    timeframe: Annotated[Name, doc("Timeframe of the bars, as in hello.")]
    time: Annotated[TickTime, doc("Clocks of the tick.")]
    bid: Annotated[Price, doc("Bid (<= ask).", PRICE)]
    ask: Annotated[Price, doc("Ask.", PRICE)]
    account: Annotated[AccountSnapshot, doc("The account now.")]
    positions: Annotated[
        Annotated[list[Position], msgspec.Meta(max_length=200)],
        doc("This EA's open positions, every symbol (at most 200)."),
    ] = []
    bars: Annotated[
        Annotated[list[BarRow], msgspec.Meta(max_length=500)],
        doc(BarsDoc + " Those closed since the last tick sent, at most 500."),
    ] = []
    # Optional fresh tick value: it moves with the price for cross and JPY pairs.
    tick_value: Annotated[
        Price | None,
        doc(
            "Fresh tick value for one lot (it moves with the price for crosses and JPY pairs).",
            MONEY,
        ),
    ] = None
    # Sent by an EA running in the Strategy Tester: the sidecar keeps tester sessions apart from
    # live ones (the tester reports the real account's login) and never persists them.
    tester: TesterField = False
    token: TokenField = None

    def __post_init__(self) -> None:
        if self.bid > self.ask:
            raise ValueError(f"bid: must be <= ask ({self.ask}), got {self.bid}")
        _check_bars(self.bars)


# ---------------------------------------------------------------- trade


class Trade(_Struct, tag_field="type", tag="trade"):
    """EA -> sidecar per deal of this EA (OnTradeTransaction, and deals found in the history).
    Reply: `ack`, with `duplicate: true` for a deal already recorded."""

    v: VersionField
    id: IdField
    login: LoginField
    deal: Annotated[PosInt, doc("Deal ticket: the key that makes trade messages idempotent.")]
    symbol: SymbolField
    side: Annotated[Side, doc("Deal direction: buy or sell.")]
    entry: Annotated[
        Literal["in", "out", "inout", "out_by"],
        doc("DEAL_ENTRY: in (opens), out (closes), inout (reverses), out_by (close by)."),
    ]
    volume: Annotated[NonNegMoney, doc("Deal volume.", LOTS)]
    price: Annotated[NonNegMoney, doc("Deal price.", PRICE)]
    time: Annotated[NonNegInt, doc("Deal time.", SERVER_S)]
    order: Annotated[NonNegInt, doc("Order ticket.")] = 0
    position: Annotated[NonNegInt, doc("Position ticket (DEAL_POSITION_ID).")] = 0
    profit: Annotated[Money, doc("Deal profit.", MONEY)] = 0.0
    commission: Annotated[Money, doc("Commission (negative = charged).", MONEY)] = 0.0
    swap: Annotated[Money, doc("Swap.", MONEY)] = 0.0
    comment: Annotated[
        Comment, doc("Deal comment: sc:<signal_id> when it carries the sidecar's signal.")
    ] = ""
    tester: TesterField = False  # a deal of a Strategy Tester run (kept apart, never persisted)
    token: TokenField = None


# ---------------------------------------------------------------- calendar


class CalendarEvent(_Struct):
    """One event of the terminal's economic calendar."""

    id: Annotated[
        Annotated[str, msgspec.Meta(min_length=1, max_length=64)],
        doc("Event value id in the terminal's calendar."),
    ]
    time_gmt: Annotated[PosInt, doc("Release time.", GMT_S)]
    currency: Annotated[
        Annotated[str, msgspec.Meta(min_length=2, max_length=8)],
        doc("Currency the event moves, e.g. USD."),
    ]
    importance: Annotated[
        Literal["none", "low", "medium", "high"],
        doc("Importance; high-impact events open news blackouts."),
    ]
    name: Annotated[Annotated[str, msgspec.Meta(min_length=1, max_length=200)], doc("Event name.")]
    actual: Annotated[
        Money | None, doc("Actual value; null before the release.", "event's own")
    ] = None
    forecast: Annotated[Money | None, doc("Forecast value.", "event's own")] = None
    previous: Annotated[Money | None, doc("Previous value.", "event's own")] = None


class Calendar(_Struct, tag_field="type", tag="calendar"):
    """EA -> sidecar on a timer: events from the terminal's own calendar. Reply: `ack`."""

    v: VersionField
    id: IdField
    login: LoginField
    events: Annotated[
        Annotated[list[CalendarEvent], msgspec.Meta(max_length=2000)],
        doc("Calendar events (at most 2,000)."),
    ]
    source: Annotated[Literal["mt5"], doc("Where the events come from: mt5.")] = "mt5"
    token: TokenField = None


# ---------------------------------------------------------------- heartbeat


class Heartbeat(_Struct, tag_field="type", tag="heartbeat"):
    """EA -> sidecar on a timer: liveness of one chart. Reply: `ack`."""

    v: VersionField
    id: IdField
    login: LoginField
    symbol: SymbolField
    time: Annotated[ServerTime, doc("Clocks at sending.")]
    tester: TesterField = False
    token: TokenField = None


# ---------------------------------------------------------------- replies

ReplyId = Annotated[str | None, doc("The request's id (null when it could not be read).")]


class Ack(msgspec.Struct, tag_field="type", tag="ack", frozen=True, kw_only=True, gc=False):
    """Sidecar -> EA: the reply to hello, trade, calendar and heartbeat."""

    v: VersionField = PROTOCOL_VERSION
    id: ReplyId
    ok: Annotated[bool, doc("Always true.")] = True
    # a trade already recorded (idempotent by deal ticket)
    duplicate: Annotated[
        bool, doc("True for a trade whose deal was already recorded (counted once).")
    ] = False


class OpenOrder(msgspec.Struct, frozen=True, gc=False):
    """The entry to place."""

    side: Annotated[Side, doc("buy or sell.")]
    volume: Annotated[Volume, doc("Volume, floored to the volume step.", LOTS)]
    sl: Annotated[Price, doc("Stop loss.", PRICE)]
    tp: Annotated[Price, doc("Take profit.", PRICE)]
    risk_pct: Annotated[
        Annotated[float, msgspec.Meta(gt=0, le=100)],
        doc("Equity lost at the stop.", "% of equity"),
    ]
    signal_id: Annotated[
        Id, doc("sha1(login|symbol|timeframe|bar time|side|strategy)[:16]; the EA writes sc:<id>.")
    ]


class CloseOrder(msgspec.Struct, frozen=True, gc=False):
    """A position to close, wholly or in part."""

    ticket: Annotated[NonNegInt, doc("Position ticket.")]
    volume: Annotated[Volume, doc("Volume to close (the whole position or a part).", LOTS)]


class Manage(msgspec.Struct, frozen=True, gc=False):
    """Parameters of the EA's position manager, kept until the next valid verdict."""

    breakeven_r: Annotated[
        NonNegMoney, doc("Move the stop to entry (+ buffer) once profit reaches this.", "R")
    ]
    partial_r: Annotated[NonNegMoney, doc("Close partial_fraction once profit reaches this.", "R")]
    partial_fraction: Annotated[
        Annotated[float, msgspec.Meta(ge=0, le=1)],
        doc("Share of the position the partial close takes (0-1)."),
    ]
    trail_atr: Annotated[NonNegMoney, doc("ATR multiple of the trailing stop after the partial.")]
    trail_distance: Annotated[
        NonNegMoney, doc("The same trail as a price distance (trail_atr x ATR).", PRICE)
    ]
    breakeven_buffer: Annotated[
        NonNegMoney, doc("Distance beyond entry for the breakeven stop.", PRICE)
    ] = 0.0


class Verdict(msgspec.Struct, tag_field="type", tag="verdict", frozen=True, kw_only=True, gc=False):
    """Sidecar -> EA: the reply to a tick."""

    v: VersionField = PROTOCOL_VERSION
    id: ReplyId
    ok: Annotated[bool, doc("Always true.")] = True
    action: Annotated[
        Literal["open", "hold", "close", "reduce"],
        doc("open: place `open`; close / reduce: execute `close`; hold: nothing new."),
    ]
    mode: Annotated[
        Literal["active", "reducing", "halted"],
        doc("Breaker mode of the account: active, reducing (half risk) or halted (no entries)."),
    ]
    manage: Annotated[Manage, doc("Management parameters for the EA's positions.")]
    leverage_cap: Annotated[
        PosInt, doc("Effective leverage cap in force (notional / equity, 1:N, N given).")
    ]
    valid_until: Annotated[NonNegInt, doc("The EA ignores the verdict after this time.", GMT_S)]
    open: Annotated[OpenOrder | None, doc("The entry when action is open, else null.")] = None
    close: Annotated[
        list[CloseOrder], doc("Positions to close or cut when action is close or reduce.")
    ] = []
    reasons: Annotated[
        list[str],
        doc(
            "Reasons, `CODE key=value ...`: vetoes, the signal or SIGNAL_NONE with the "
            "strategy's votes, sizing and leverage (docs/engine.md); the code labels metrics."
        ),
    ] = []


class ErrorBody(msgspec.Struct, frozen=True, gc=False):
    """What was wrong."""

    code: Annotated[
        str,
        doc(
            "BAD_JSON, BAD_REQUEST, UNSUPPORTED_VERSION, UNKNOWN_TYPE, TOO_LARGE, UNAUTHORIZED, "
            "UNKNOWN_SYMBOL, STORE_WRITE_FAILED (not recorded: send it again) or INTERNAL."
        ),
    ]
    message: Annotated[str, doc("Names the field and what was expected.")]


class ErrorReply(
    msgspec.Struct, tag_field="type", tag="error", frozen=True, kw_only=True, gc=False
):
    """Sidecar -> EA: the reply to a request it refused (never silence)."""

    v: VersionField = PROTOCOL_VERSION
    id: ReplyId
    ok: Annotated[bool, doc("Always false.")] = False
    error: Annotated[ErrorBody, doc("Code and message.")]


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


# Nesting levels of objects and arrays a message may have (the protocol's own go 4 deep). A
# deeper message is BAD_JSON, whatever the stack depth of the thread that decodes it.
MAX_DEPTH = 32


def _bounded(raw: bytes | str, max_bytes: int) -> bytes:
    """The message's bytes, size-checked before anything reads them."""
    if isinstance(raw, str):
        raw = raw.encode("utf-8", errors="replace")
    if len(raw) > max_bytes:
        raise ProtocolError(TOO_LARGE, f"message: at most {max_bytes} bytes, got {len(raw)}")
    # MQL5's StringToCharArray copies the terminating NUL into the payload.
    return raw.rstrip(b"\x00 \r\n\t")


class _Envelope(msgspec.Struct, frozen=True, gc=False):
    """The top-level fields read before a message is validated (other fields are skipped)."""

    token: msgspec.Raw = msgspec.Raw(b"null")
    id: msgspec.Raw = msgspec.Raw(b"null")


_envelope_decoder = msgspec.json.Decoder(_Envelope)
_str_decoder = msgspec.json.Decoder(str | None)


def _raw_str(value: msgspec.Raw) -> str | None:
    try:
        return _str_decoder.decode(value)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError):
        return None


def read_token(
    raw: bytes | str, max_bytes: int = MAX_MESSAGE_BYTES
) -> tuple[str | None, str | None]:
    """(token, id) of a request, read without validating it, so that the token is checked
    before anything else about the message is said; (None, None) when the message is not a
    JSON object. Only the size is checked first (TOO_LARGE): nothing is parsed beyond it."""
    raw = _bounded(raw, max_bytes)
    try:
        try:
            envelope = _envelope_decoder.decode(raw)
        except UnicodeDecodeError:  # a bad byte elsewhere must not hide a good token
            envelope = _envelope_decoder.decode(raw.decode("utf-8", "replace").encode())
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None, None
    req_id = _raw_str(envelope.id)
    return _raw_str(envelope.token), req_id if req_id and len(req_id) <= 128 else None


def decode(raw: bytes | str, max_bytes: int = MAX_MESSAGE_BYTES) -> Request:
    """Parse and validate one request; raise ProtocolError naming what is wrong (and nothing
    else, whatever the bytes)."""
    raw = _bounded(raw, max_bytes)
    try:
        msg = _decoder.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        # UnicodeDecodeError: invalid UTF-8 inside a string; RecursionError: nesting deeper
        # than the decoding thread's stack allows.
        _diagnose(raw)  # always raises
        raise  # pragma: no cover - _diagnose never returns
    if msg.v != PROTOCOL_VERSION:
        raise ProtocolError(
            UNSUPPORTED_VERSION, f"v: expected {PROTOCOL_VERSION}, got {msg.v}", msg.id
        )
    return msg


def _depth(obj: Any) -> int:
    """Nesting depth of decoded JSON (1 for an object of scalars), without recursion."""
    deepest, stack = 0, [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            value = value.values()
        elif not isinstance(value, list):
            continue
        deepest = max(deepest, depth)
        if depth <= MAX_DEPTH:
            stack.extend((v, depth + 1) for v in value)
    return deepest


def _diagnose(raw: bytes) -> None:
    """Slow path for a request that failed: work out the most useful error (never returns)."""
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError(
            BAD_JSON, f"message: not valid UTF-8 (byte {raw[exc.start]:#04x} at {exc.start})"
        ) from None
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ProtocolError(BAD_JSON, f"message: expected one JSON object, {exc}") from None
    if not isinstance(obj, dict):
        raise ProtocolError(BAD_JSON, f"message: expected a JSON object, got {type(obj).__name__}")
    req_id = obj.get("id")
    req_id = req_id if isinstance(req_id, str) and 0 < len(req_id) <= 128 else None
    if _depth(obj) > MAX_DEPTH:
        raise ProtocolError(
            BAD_JSON, f"message: nested deeper than {MAX_DEPTH} levels of objects/arrays", req_id
        )
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
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        # e.g. NaN literals orjson tolerated
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
