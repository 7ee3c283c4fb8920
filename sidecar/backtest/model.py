"""The backtester's data model: what a run is given and what it produces.

Plain frozen dataclasses shared by the data loaders, the broker simulator, the runner, the
metrics and the report, so each of those modules depends on this file and not on the others.
Times are Unix seconds; `*_server` times are the broker's server time (what MT5 and the protocol's
bar times use), the others UTC. Money is in the account currency, volume in lots.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sidecar.protocol import SymbolSpec

Side = Literal["buy", "sell"]
AccountMode = Literal["netting", "hedging"]


@dataclass(frozen=True)
class InstrumentSpec:
    """A symbol as the broker defines it: the protocol's `SymbolSpec` (what `hello` carries)
    plus the costs and rules the EA never sends."""

    symbol: SymbolSpec
    commission_per_lot: float = 0.0  # account money per lot per side, charged as a negative
    swap_long: float = 0.0  # points per lot per night held (MT5 swap mode "in points")
    swap_short: float = 0.0
    # The weekday (0 = Monday .. 6 = Sunday) whose night is charged three times: Wednesday, as
    # MT5's default SYMBOL_SWAP_ROLLOVER3DAYS (which counts from Sunday) for forex.
    triple_swap_day: int = 2
    spread_points: int | None = None  # a fixed spread; None = each bar's own spread
    margin_rate: float = 1.0  # initial margin multiplier (MT5's SYMBOL_MARGIN_INITIAL rate)


@dataclass(frozen=True)
class AccountSpec:
    login: int = 1
    server: str = "Backtest"
    currency: str = "USD"
    balance: float = 10_000.0
    leverage: int = 100  # the broker's account leverage (margin = notional / leverage)
    mode: AccountMode = "hedging"
    swap_free: bool = False
    margin_call_pct: float = 100.0  # margin level (equity / margin, %) of a margin call
    stop_out_pct: float = 50.0  # margin level at which the broker closes the worst position
    server_offset_hours: float = 0.0  # broker server time = UTC + this


@dataclass(frozen=True)
class SeriesData:
    """Closed bars of one symbol, oldest first, as protocol rows
    `[time_server, open, high, low, close, tick_volume, spread_points]`."""

    symbol: str
    timeframe: str  # M1 .. MN1, inferred from the bar times and checked
    rows: list[list[float]]
    source: str = ""  # file it came from, for messages and the report


@dataclass(frozen=True, slots=True)
class Deal:
    """One MT5 deal, the fields of the protocol's `trade` message plus why it happened."""

    deal: int
    order: int
    position: int
    symbol: str
    side: Side  # the deal's direction (a sell deal closes a buy position)
    entry: Literal["in", "out", "inout"]
    volume: float
    price: float
    profit: float
    commission: float
    swap: float
    time: int  # server time
    comment: str
    reason: str  # "expert", "sl", "tp", "so" (stop-out), "end" (closed at the end of the data)


@dataclass(frozen=True, slots=True)
class TradeRecord:
    """One position from its first to its last deal (a partial close stays one trade)."""

    position: int
    symbol: str
    side: Side
    volume: float  # the volume opened
    entry_time: int  # UTC
    entry_price: float
    exit_time: int  # UTC of the last closing deal
    exit_price: float  # volume-weighted average of the closing deals
    sl: float  # initial stop
    tp: float  # initial target
    profit: float  # net: profit + commission + swap of every deal of the position
    commission: float
    swap: float
    exit_reason: str  # reason of the last closing deal
    signal_id: str
    reasons: tuple[str, ...]  # the opening verdict's reasons


@dataclass(frozen=True, slots=True)
class EquityPoint:
    time: int  # UTC
    balance: float
    equity: float
    margin: float
    mode: str  # breaker mode after this point's verdict: active / reducing / halted
    leverage: float  # effective leverage: open notional / equity


@dataclass(frozen=True, slots=True)
class Span:
    """A time range (UTC) with a label: breaker modes, news blackouts, daily-loss locks."""

    start: int
    end: int
    label: str


@dataclass
class DecisionStats:
    ticks: int = 0  # verdicts asked for
    signals: int = 0  # verdicts on which the strategy proposed an entry
    opened: int = 0  # entries the broker filled
    refused: dict[str, int] = field(default_factory=dict)  # reason code -> count (sidecar)
    guard_refused: dict[str, int] = field(default_factory=dict)  # EA guard code -> count
    actions: dict[str, int] = field(default_factory=dict)  # verdict action -> count
    mode_seconds: dict[str, int] = field(default_factory=dict)  # breaker mode -> seconds spent


@dataclass
class BacktestResult:
    account: AccountSpec
    instruments: dict[str, InstrumentSpec]
    timeframe: str
    start: int  # UTC of the first bar traded
    end: int  # UTC of the last bar
    bars: int  # bars replayed (all symbols)
    config: dict  # the effective sidecar configuration, for the report
    equity: list[EquityPoint]
    trades: list[TradeRecord]
    deals: list[Deal]
    modes: list[Span]  # breaker modes other than active
    blackouts: list[Span]  # news blackouts (label: currency and event)
    decisions: DecisionStats
