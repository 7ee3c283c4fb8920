"""A deterministic MetaTrader 5 broker for the backtester: quotes, market orders, SL/TP, swaps,
margin and stop-out, in hedging or netting mode. No I/O, no wall clock: time is what the caller
passes (server time, Unix seconds). The rules are written out in ``docs/backtest.md``
("Broker simulator").

API::

    broker = Broker(account: AccountSpec, instruments: Mapping[str, InstrumentSpec])

    # market data
    broker.set_quote(symbol, bid, ask, server_time) -> list[Deal]
        A jump to a new price (a new tick, a bar's open): charges the swaps of every server
        midnight passed, fills each SL/TP already crossed AT THIS PRICE (a gap fills at the
        quote, not at the level), then stops out while the margin level <= stop_out_pct.
    broker.process_bar(symbol, row, *, bar_close_time, include_open=True, on_point=None)
        -> list[Deal]
        Walks one bar `[time, open, high, low, close, tick_volume, spread]`: the open (a jump,
        skipped with include_open=False when the caller already sent it through set_quote), then
        the adverse extreme of the symbol's net position, the other extreme and the close as
        continuous moves (a level crossed inside a move fills exactly at the level). A position
        whose SL and TP are both inside the bar's range closes at its SL first. After each point
        `on_point(symbol, bid, ask, server_time)` runs (the EA's per-tick management).
    broker.quote(symbol) -> Quote | None

    # trading (retcodes: see RETCODE_*; deals are also appended to broker.deals)
    broker.market_order(symbol, side, volume, sl=0.0, tp=0.0, comment="", server_time=None)
        -> OrderResult
    broker.close_position(ticket, volume=0.0, server_time=None, comment="") -> OrderResult
        volume <= 0 or >= the position's volume closes it all, less is a partial close
    broker.modify_position(ticket, sl, tp) -> int (retcode)
    broker.close_all(server_time, reason="end") -> list[Deal]

    # state
    broker.positions(symbol=None) -> list[PositionView]   (by ticket; .to_protocol())
    broker.account() -> AccountView   (.to_protocol() -> the tick's AccountSnapshot)
    broker.deals: list[Deal]
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from sidecar.backtest.model import AccountSpec, Deal, InstrumentSpec, Side
from sidecar.backtest.symbols import tick_value_at
from sidecar.guard import mql_round, normalize_double, step_digits
from sidecar.protocol import AccountSnapshot, Position

RETCODE_DONE = 10009
RETCODE_INVALID = 10013  # unknown symbol, bad side, bad price/volume number
RETCODE_INVALID_VOLUME = 10014
RETCODE_INVALID_STOPS = 10016
RETCODE_NO_MONEY = 10019
RETCODE_PRICE_OFF = 10021  # no quote for the symbol yet
RETCODE_NO_CHANGES = 10025
RETCODE_FROZEN = 10029
RETCODE_POSITION_CLOSED = 10036  # unknown (or already closed) position ticket

DAY = 86400
MONEY_DIGITS = 2  # deal and position money is rounded to cents, as MT5 shows it

OnPoint = Callable[[str, float, float, int], object]


@dataclass(frozen=True)
class Quote:
    bid: float
    ask: float
    time: int  # server time


@dataclass(frozen=True)
class PositionView:
    ticket: int  # = the position identifier = the ticket of the order that opened it
    symbol: str
    side: Side
    volume: float
    price_open: float
    sl: float  # 0 = none
    tp: float  # 0 = none
    time: int  # server time of the opening deal
    comment: str
    swap: float  # accumulated, not yet booked to the balance
    commission: float  # paid on the position's deals so far (already in the balance)
    profit: float  # floating, at the current closing price (bid for buys, ask for sells)
    price_current: float
    margin: float

    def to_protocol(self) -> Position:
        return Position(
            ticket=self.ticket,
            symbol=self.symbol,
            side=self.side,
            volume=self.volume,
            price_open=self.price_open,
            sl=self.sl,
            tp=self.tp,
            profit=self.profit,
            swap=self.swap,
            time=self.time,
            comment=self.comment[:64],
        )


@dataclass(frozen=True)
class AccountView:
    balance: float
    equity: float  # balance + floating
    margin: float
    free_margin: float  # equity - margin
    margin_level: float  # equity / margin * 100; 0 without positions (as MT5 shows it)
    floating: float  # profit + swap of the open positions
    margin_call: bool  # margin level below AccountSpec.margin_call_pct
    notional: float  # open notional at current prices (price x tick_value / tick_size x lots)

    def to_protocol(self) -> AccountSnapshot:
        return AccountSnapshot(
            balance=self.balance,
            equity=self.equity,
            margin=self.margin,
            free_margin=self.free_margin,
        )


@dataclass(frozen=True)
class OrderResult:
    retcode: int
    deals: tuple[Deal, ...] = ()
    order: int = 0  # the order ticket (0 when refused)
    position: int = 0  # the position opened, changed or closed
    message: str = ""  # why it was refused

    @property
    def ok(self) -> bool:
        return self.retcode == RETCODE_DONE


@dataclass
class _Pos:
    ticket: int
    symbol: str
    side: Side
    volume: float
    price_open: float
    sl: float
    tp: float
    time: int
    comment: str
    margin: float
    swap: float = 0.0
    commission: float = 0.0


def _money(x: float) -> float:
    """NormalizeDouble(x, 2), inlined: half away from zero (this runs several times a bar)."""
    y = x * 100.0
    return (math.floor(y + 0.5) if y >= 0.0 else -math.floor(0.5 - y)) / 100.0


def _other(side: Side) -> Side:
    return "sell" if side == "buy" else "buy"


def weekday(server_time: int) -> int:
    """0 = Monday .. 6 = Sunday of a server time (1970-01-01 was a Thursday)."""
    return (server_time // DAY + 3) % 7


class Broker:
    """One simulated MT5 trading account. See the module docstring for the API."""

    def __init__(self, account: AccountSpec, instruments: Mapping[str, InstrumentSpec]) -> None:
        if account.mode not in ("hedging", "netting"):
            raise ValueError(f"account.mode: expected hedging or netting, got {account.mode!r}")
        if account.leverage <= 0:
            raise ValueError(f"account.leverage: expected > 0, got {account.leverage}")
        for name, inst in instruments.items():
            s = inst.symbol
            if s.name != name:
                raise ValueError(f"instruments[{name!r}]: the spec is named {s.name!r}")
            if not (s.point > 0 and s.tick_size > 0 and s.tick_value > 0 and s.volume_step > 0):
                raise ValueError(f"instruments[{name!r}]: point, tick size/value, step must be > 0")
        self.spec = account
        self.instruments: dict[str, InstrumentSpec] = dict(instruments)
        # Symbols whose tick value does not move with their price (quote = account currency).
        self._fixed_per_price = {
            name: inst.symbol.tick_value / inst.symbol.tick_size
            for name, inst in self.instruments.items()
            if inst.symbol.quote.upper() == account.currency.upper()
            or inst.symbol.base.upper() != account.currency.upper()
        }
        self.balance = float(account.balance)
        self.deals: list[Deal] = []
        self._positions: dict[int, _Pos] = {}
        self._quotes: dict[str, Quote] = {}
        self._clock: int | None = None  # latest server time seen (rollovers)
        self._next_order = 1
        self._next_deal = 1

    # ------------------------------------------------------------ state

    def quote(self, symbol: str) -> Quote | None:
        return self._quotes.get(symbol)

    def tickets(self) -> set[int]:
        return set(self._positions)

    def has_positions(self, symbol: str | None = None) -> bool:
        return any(symbol is None or p.symbol == symbol for p in self._positions.values())

    def positions(self, symbol: str | None = None) -> list[PositionView]:
        return [self._view(p) for p in self._sorted(symbol)]

    def position(self, ticket: int) -> PositionView | None:
        p = self._positions.get(ticket)
        return self._view(p) if p else None

    def account(self) -> AccountView:
        if not self._positions:  # flat: most bars of most runs
            b = self.balance
            return AccountView(b, b, 0.0, b, 0.0, 0.0, False, 0.0)
        floating = 0.0
        notional = 0.0
        margin = 0.0
        for p in self._positions.values():
            price = self._close_price(p)
            floating += self._profit(p, price) + p.swap
            notional += self._notional(p.symbol, price, p.volume)
            margin += p.margin
        floating = _money(floating)
        margin = _money(margin)
        equity = _money(self.balance + floating)
        level = equity / margin * 100.0 if margin > 0.0 else 0.0
        return AccountView(
            balance=self.balance,
            equity=equity,
            margin=margin,
            free_margin=_money(equity - margin),
            margin_level=level,
            floating=floating,
            margin_call=margin > 0.0 and level < self.spec.margin_call_pct,
            notional=notional,
        )

    # ------------------------------------------------------------ market data

    def set_quote(self, symbol: str, bid: float, ask: float, server_time: int) -> list[Deal]:
        self._inst(symbol)
        if not (bid > 0.0 and ask >= bid):
            raise ValueError(f"{symbol}: expected 0 < bid <= ask, got bid={bid} ask={ask}")
        start = len(self.deals)
        self._advance(server_time)
        self._quotes[symbol] = Quote(bid, ask, server_time)
        self._fill_stops(symbol, None, bid, ask, server_time)
        self._stop_out(server_time)
        return self.deals[start:]

    def ask_for(self, symbol: str, bid: float, spread_points: float) -> float:
        """The ask of a bar price: bid + the fixed spread, or the bar's own spread, in points."""
        s = self._inst(symbol)
        pts = s.spread_points if s.spread_points is not None else spread_points
        return normalize_double(bid + pts * s.symbol.point, s.symbol.digits)

    def process_bar(
        self,
        symbol: str,
        row: Sequence[float],
        *,
        bar_close_time: int,
        include_open: bool = True,
        on_point: OnPoint | None = None,
    ) -> list[Deal]:
        start = len(self.deals)
        if not self._positions and on_point is None and not include_open and symbol in self._quotes:
            # Flat account and nobody to tell: no stop to fill or stop-out to check; only the
            # clock (swaps are charged on positions only) and the closing quote move.
            _, c, spread, _, t3 = self._check_bar(symbol, row, bar_close_time)
            self._advance(t3)
            self._quotes[symbol] = Quote(c, self.ask_for(symbol, c, spread), t3)
            return []
        for bid, ask, t in self.bar_path(
            symbol, row, bar_close_time=bar_close_time, include_open=include_open, on_point=on_point
        ):
            self.move_to(symbol, bid, ask, t, on_point)
        return self.deals[start:]

    def bar_path(
        self,
        symbol: str,
        row: Sequence[float],
        *,
        bar_close_time: int,
        include_open: bool = True,
        on_point: OnPoint | None = None,
    ) -> list[tuple[float, float, int]]:
        """Start one bar: the open (a jump, unless the caller already quoted it), a position
        whose SL and TP both lie inside the bar closed at its SL; then the rest of the walk as
        (bid, ask, time) points for `move_to`: the extreme against the symbol's net position,
        the other extreme, the close. `process_bar` walks them at once; a runner with several
        symbols interleaves the points of their bars so that time never goes back."""
        o, c, spread, (t1, t2), t3 = self._check_bar(symbol, row, bar_close_time)
        h, lo = float(row[2]), float(row[3])
        if include_open or symbol not in self._quotes:
            self.set_quote(symbol, o, self.ask_for(symbol, o, spread), int(row[0]))
            if on_point:
                on_point(symbol, o, self.ask_for(symbol, o, spread), int(row[0]))
        # both SL and TP inside the bar: the SL is taken to have come first
        self._advance(t1)
        for p in self._sorted(symbol):
            if p.sl <= 0.0 or p.tp <= 0.0:
                continue
            if p.side == "buy":
                both = lo <= p.sl and h >= p.tp
            else:
                both = self.ask_for(symbol, h, spread) >= p.sl and (
                    self.ask_for(symbol, lo, spread) <= p.tp
                )
            if both:
                self._close(p, p.volume, p.sl, t1, "sl")
        net = sum(p.volume if p.side == "buy" else -p.volume for p in self._sorted(symbol))
        first, second = (lo, h) if net >= 0.0 else (h, lo)
        return [
            (price, self.ask_for(symbol, price, spread), t)
            for price, t in ((first, t1), (second, t2), (c, t3))
        ]

    def move_to(
        self, symbol: str, bid: float, ask: float, t: int, on_point: OnPoint | None = None
    ) -> None:
        """A continuous move of `symbol` to (bid, ask) at `t`: levels crossed on the way fill at
        the level, then the stop-out check and `on_point` (the EA's tick)."""
        self._advance(t)
        prev = self._quotes[symbol]
        self._quotes[symbol] = Quote(bid, ask, t)
        self._fill_stops(symbol, prev, bid, ask, t)
        self._stop_out(t)
        if on_point:
            on_point(symbol, bid, ask, t)

    def _check_bar(
        self, symbol: str, row: Sequence[float], bar_close_time: int
    ) -> tuple[float, float, float, tuple[int, int], int]:
        """(open, close, spread, (t1, t2), t3) of a valid bar: the extremes at a third and two
        thirds of it, the close a second before it ends."""
        self._inst(symbol)
        t0 = int(row[0])
        o, h, lo, c = (float(x) for x in row[1:5])
        spread = float(row[6]) if len(row) > 6 else 0.0
        if not (lo <= min(o, c) and h >= max(o, c) and lo > 0.0):
            raise ValueError(f"{symbol} bar {t0}: expected 0 < low <= open, close <= high")
        if bar_close_time <= t0:
            raise ValueError(f"{symbol} bar {t0}: bar_close_time {bar_close_time} <= bar time")
        span = bar_close_time - t0
        t1, t2, t3 = t0 + span // 3, t0 + 2 * span // 3, bar_close_time - 1
        return o, c, spread, (min(max(t1, t0), t3), min(max(t2, t0), t3)), t3

    # ------------------------------------------------------------ trading

    def market_order(
        self,
        symbol: str,
        side: Side,
        volume: float,
        sl: float = 0.0,
        tp: float = 0.0,
        comment: str = "",
        server_time: int | None = None,
    ) -> OrderResult:
        inst = self.instruments.get(symbol)
        if inst is None:
            return OrderResult(RETCODE_INVALID, message=f"unknown symbol {symbol!r}")
        if side not in ("buy", "sell"):
            return OrderResult(RETCODE_INVALID, message=f"side: expected buy or sell, got {side!r}")
        q = self._quotes.get(symbol)
        if q is None:
            return OrderResult(RETCODE_PRICE_OFF, message=f"no quote for {symbol}")
        if not self._volume_ok(inst, volume):
            return OrderResult(RETCODE_INVALID_VOLUME, message=self._volume_msg(inst, volume))
        s = inst.symbol
        volume = normalize_double(volume, step_digits(s.volume_step))
        sl = normalize_double(sl, s.digits) if sl > 0.0 else 0.0
        tp = normalize_double(tp, s.digits) if tp > 0.0 else 0.0
        t = q.time if server_time is None else server_time
        price = q.ask if side == "buy" else q.bid
        have = self._netting_position(symbol)
        # the side the position has after the deal decides where the stops must be
        result_side = side
        if have is not None and have.side != side and have.volume > volume + 1e-9:
            result_side = have.side
        if (sl or tp) and not self._stops_ok(inst, result_side, q, sl, tp):
            return OrderResult(
                RETCODE_INVALID_STOPS,
                message=f"sl={sl} tp={tp}: must be on the {result_side} side of "
                f"bid={q.bid} ask={q.ask}, at least {s.stops_level} points away",
            )
        free = self.account().free_margin
        if have is None:
            need = self._margin(symbol, price, volume)
        elif have.side == side:
            total = have.volume + volume
            avg = (have.price_open * have.volume + price * volume) / total
            need = self._margin(symbol, avg, total) - have.margin
        elif volume > have.volume + 1e-9:
            rest = normalize_double(volume - have.volume, step_digits(s.volume_step))
            need = self._margin(symbol, price, rest) - have.margin
        else:
            need = 0.0  # a reduce or a close only frees margin
        if need > 0.0 and need > free + 1e-9:
            return OrderResult(
                RETCODE_NO_MONEY, message=f"margin {need:.2f} needed, free margin {free:.2f}"
            )
        order = self._order()
        if have is None:
            p = self._open(order, symbol, side, volume, price, sl, tp, t, comment, order)
            return OrderResult(RETCODE_DONE, (self.deals[-1],), order, p.ticket)
        if have.side == side:
            d = self._deal(have, side, "in", volume, price, 0.0, volume, 0.0, t, comment, order)
            total = normalize_double(have.volume + volume, step_digits(s.volume_step))
            have.price_open = (have.price_open * have.volume + price * volume) / total
            have.volume = total
            have.margin = self._margin(symbol, have.price_open, total)
            have.sl, have.tp = sl or have.sl, tp or have.tp
            return OrderResult(RETCODE_DONE, (d,), order, have.ticket)
        if volume <= have.volume + 1e-9:
            d = self._close(have, min(volume, have.volume), price, t, "expert", comment, order)
            if have.ticket in self._positions and (sl or tp):
                have.sl, have.tp = sl or have.sl, tp or have.tp
            return OrderResult(RETCODE_DONE, (d,), order, have.ticket)
        # a reversal: one "inout" deal closes the position and opens the rest the other way
        rest = normalize_double(volume - have.volume, step_digits(s.volume_step))
        profit = self._profit(have, price, have.volume)
        swap = have.swap
        d = self._deal(have, side, "inout", volume, price, profit, volume, swap, t, comment, order)
        self.balance = _money(self.balance + profit + d.commission + swap)
        have.side, have.volume, have.price_open, have.time = side, rest, price, t
        have.sl, have.tp, have.swap, have.commission = sl, tp, 0.0, d.commission
        have.comment = comment
        have.margin = self._margin(symbol, price, rest)
        return OrderResult(RETCODE_DONE, (d,), order, have.ticket)

    def close_position(
        self, ticket: int, volume: float = 0.0, server_time: int | None = None, comment: str = ""
    ) -> OrderResult:
        p = self._positions.get(ticket)
        if p is None:
            return OrderResult(RETCODE_POSITION_CLOSED, message=f"no open position {ticket}")
        inst = self.instruments[p.symbol]
        q = self._quotes[p.symbol]
        if self._frozen(inst, p, q):
            return OrderResult(
                RETCODE_FROZEN, message=f"position {ticket}: price within the freeze level"
            )
        full = volume <= 0.0 or volume >= p.volume - 1e-7
        if not full and not self._volume_ok(inst, volume):
            return OrderResult(RETCODE_INVALID_VOLUME, message=self._volume_msg(inst, volume))
        vol = p.volume if full else normalize_double(volume, step_digits(inst.symbol.volume_step))
        order = self._order()
        t = q.time if server_time is None else server_time
        d = self._close(p, vol, self._close_price(p), t, "expert", comment, order)
        return OrderResult(RETCODE_DONE, (d,), order, ticket)

    def modify_position(self, ticket: int, sl: float, tp: float) -> int:
        p = self._positions.get(ticket)
        if p is None:
            return RETCODE_POSITION_CLOSED
        inst = self.instruments[p.symbol]
        digits = inst.symbol.digits
        sl = normalize_double(sl, digits) if sl > 0.0 else 0.0
        tp = normalize_double(tp, digits) if tp > 0.0 else 0.0
        if sl == p.sl and tp == p.tp:
            return RETCODE_NO_CHANGES
        q = self._quotes[p.symbol]
        if self._frozen(inst, p, q):
            return RETCODE_FROZEN
        if not self._stops_ok(inst, p.side, q, sl, tp):
            return RETCODE_INVALID_STOPS
        p.sl, p.tp = sl, tp
        return RETCODE_DONE

    def close_all(self, server_time: int, reason: str = "end") -> list[Deal]:
        """Close every open position at its symbol's current price (the end of the data)."""
        start = len(self.deals)
        for p in self._sorted(None):
            self._close(p, p.volume, self._close_price(p), server_time, reason)
        return self.deals[start:]

    # ------------------------------------------------------------ internals

    def _inst(self, symbol: str) -> InstrumentSpec:
        inst = self.instruments.get(symbol)
        if inst is None:
            raise KeyError(f"unknown symbol {symbol!r}; known: {sorted(self.instruments)}")
        return inst

    def _sorted(self, symbol: str | None) -> list[_Pos]:
        # By ticket: tickets only grow and a position keeps its ticket, so the dict's insertion
        # order already is ticket order (no sort on every price point).
        return [p for p in self._positions.values() if symbol is None or p.symbol == symbol]

    def _netting_position(self, symbol: str) -> _Pos | None:
        if self.spec.mode != "netting":
            return None
        found = self._sorted(symbol)
        return found[0] if found else None

    def _order(self) -> int:
        n = self._next_order
        self._next_order += 1
        return n

    def _per_price(self, symbol: str, price: float) -> float:
        """Account money per 1.0 price move per lot at `price`: the tick value moves with the
        price when the account currency is the symbol's base (USDJPY on a USD account)."""
        fixed = self._fixed_per_price.get(symbol)
        if fixed is not None:
            return fixed
        inst = self.instruments[symbol]
        return tick_value_at(inst, price, self.spec.currency) / inst.symbol.tick_size

    def _notional(self, symbol: str, price: float, volume: float) -> float:
        return price * self._per_price(symbol, price) * volume

    def _margin(self, symbol: str, price: float, volume: float) -> float:
        rate = self.instruments[symbol].margin_rate
        return _money(self._notional(symbol, price, volume) / self.spec.leverage * rate)

    def _close_price(self, p: _Pos) -> float:
        q = self._quotes[p.symbol]
        return q.bid if p.side == "buy" else q.ask

    def _profit(self, p: _Pos, price: float, volume: float | None = None) -> float:
        vol = p.volume if volume is None else volume
        diff = price - p.price_open if p.side == "buy" else p.price_open - price
        return _money(diff * self._per_price(p.symbol, price) * vol)

    def _view(self, p: _Pos) -> PositionView:
        price = self._close_price(p)
        return PositionView(
            ticket=p.ticket,
            symbol=p.symbol,
            side=p.side,
            volume=p.volume,
            price_open=p.price_open,
            sl=p.sl,
            tp=p.tp,
            time=p.time,
            comment=p.comment,
            swap=p.swap,
            commission=p.commission,
            profit=self._profit(p, price),
            price_current=price,
            margin=p.margin,
        )

    @staticmethod
    def _volume_ok(inst: InstrumentSpec, volume: float) -> bool:
        s = inst.symbol
        if not (math.isfinite(volume) and volume > 0.0):
            return False
        n = volume / s.volume_step
        on_step = abs(n - mql_round(n)) <= 1e-7 * max(1.0, abs(n))
        return on_step and s.volume_min - 1e-9 <= volume <= s.volume_max + 1e-9

    @staticmethod
    def _volume_msg(inst: InstrumentSpec, volume: float) -> str:
        s = inst.symbol
        return (
            f"volume {volume}: expected {s.volume_min}..{s.volume_max} in steps of {s.volume_step}"
        )

    @staticmethod
    def _stops_ok(inst: InstrumentSpec, side: Side, q: Quote, sl: float, tp: float) -> bool:
        """SL/TP on the right side of the closing price, at least stops_level points away."""
        s = inst.symbol
        eps = s.point * 1e-3
        need = s.stops_level * s.point - eps
        px = q.bid if side == "buy" else q.ask
        sign = 1.0 if side == "buy" else -1.0
        for level, away in ((sl, sign * (px - sl)), (tp, sign * (tp - px))):
            if level > 0.0 and not (away > eps and away >= need):
                return False
        return True

    @staticmethod
    def _frozen(inst: InstrumentSpec, p: _Pos, q: Quote) -> bool:
        """Within the freeze level of the SL or TP: no close, no modification (MT5 10029)."""
        s = inst.symbol
        freeze = s.freeze_level * s.point
        if freeze <= 0.0:
            return False
        px = q.bid if p.side == "buy" else q.ask
        sign = 1.0 if p.side == "buy" else -1.0
        eps = s.point * 1e-3
        if p.sl > 0.0 and sign * (px - p.sl) <= freeze + eps:
            return True
        return p.tp > 0.0 and sign * (p.tp - px) <= freeze + eps

    def _deal(
        self,
        p: _Pos,
        side: Side,
        entry: Literal["in", "out", "inout"],
        volume: float,
        price: float,
        profit: float,
        commission_volume: float,
        swap: float,
        t: int,
        comment: str,
        order: int,
        reason: str = "expert",
    ) -> Deal:
        commission = _money(-self.instruments[p.symbol].commission_per_lot * commission_volume)
        d = Deal(
            deal=self._next_deal,
            order=order,
            position=p.ticket,
            symbol=p.symbol,
            side=side,
            entry=entry,
            volume=volume,
            price=price,
            profit=profit,
            commission=commission,
            swap=swap,
            time=t,
            comment=comment,
            reason=reason,
        )
        self._next_deal += 1
        self.deals.append(d)
        if entry == "in":
            self.balance = _money(self.balance + commission)
        p.commission = _money(p.commission + commission)
        return d

    def _open(
        self,
        ticket: int,
        symbol: str,
        side: Side,
        volume: float,
        price: float,
        sl: float,
        tp: float,
        t: int,
        comment: str,
        order: int,
    ) -> _Pos:
        p = _Pos(
            ticket,
            symbol,
            side,
            volume,
            price,
            sl,
            tp,
            t,
            comment,
            self._margin(symbol, price, volume),
        )
        self._positions[ticket] = p
        self._deal(p, side, "in", volume, price, 0.0, volume, 0.0, t, comment, order)
        return p

    def _close(
        self,
        p: _Pos,
        volume: float,
        price: float,
        t: int,
        reason: str,
        comment: str | None = None,
        order: int | None = None,
    ) -> Deal:
        """An "out" deal for `volume` of `p` at `price`; books profit, commission and swap."""
        s = self.instruments[p.symbol].symbol
        full = volume >= p.volume - 1e-9
        profit = self._profit(p, price, volume)
        swap = p.swap if full else _money(p.swap * volume / p.volume)
        if comment is None:
            comment = f"[{reason} {price:.{s.digits}f}]" if reason in ("sl", "tp") else ""
            if reason == "so":
                comment = f"[so {self.account().margin_level:.2f}%]"
        d = self._deal(
            p,
            _other(p.side),
            "out",
            volume,
            price,
            profit,
            volume,
            swap,
            t,
            comment,
            self._order() if order is None else order,
            reason,
        )
        self.balance = _money(self.balance + profit + d.commission + swap)
        if full:
            del self._positions[p.ticket]
        else:
            p.swap = _money(p.swap - swap)
            p.volume = normalize_double(p.volume - volume, step_digits(s.volume_step))
            p.margin = self._margin(p.symbol, p.price_open, p.volume)
        return d

    def _fill_stops(self, symbol: str, prev: Quote | None, bid: float, ask: float, t: int) -> None:
        """SL/TP of `symbol`'s positions crossed on the way from `prev` to (bid, ask).

        prev None: a jump, every crossed level fills at the new price. Otherwise a continuous
        move: a level passed on the way fills at the level (at the previous price when it was
        already beyond it), in the order the move reaches the levels."""
        hits: list[tuple[float, int, _Pos, float, str]] = []
        for p in self._sorted(symbol):
            buy = p.side == "buy"
            px = bid if buy else ask
            start = (prev.bid if buy else prev.ask) if prev else px
            sl_hit = p.sl > 0.0 and (px <= p.sl if buy else px >= p.sl)
            tp_hit = p.tp > 0.0 and (px >= p.tp if buy else px <= p.tp)
            if not (sl_hit or tp_hit):
                continue
            level = p.sl if sl_hit else p.tp
            if prev is None:
                fill = px
            elif (start <= level) if (buy == sl_hit) else (start >= level):
                fill = start  # already at or beyond the level before this move
            else:
                fill = level
            hits.append((abs(fill - start), p.ticket, p, fill, "sl" if sl_hit else "tp"))
        for _, _, p, fill, reason in sorted(hits, key=lambda h: (h[0], h[1])):
            if p.ticket in self._positions:
                self._close(p, p.volume, fill, t, reason)

    def _stop_out(self, t: int) -> None:
        """While margin level <= stop_out_pct: close the position with the largest loss."""
        while self._positions:
            acc = self.account()
            if acc.margin <= 0.0 or acc.margin_level > self.spec.stop_out_pct:
                return
            worst = min(
                self._sorted(None),
                key=lambda p: (self._profit(p, self._close_price(p)) + p.swap, p.ticket),
            )
            self._close(worst, worst.volume, self._close_price(worst), t, "so")

    def _advance(self, t: int) -> None:
        """Move the clock to `t`, charging the swap of every server midnight passed."""
        if self._clock is None:
            self._clock = t
            return
        midnight = (self._clock // DAY + 1) * DAY
        while midnight <= t:
            self._rollover(midnight)
            midnight += DAY
        self._clock = max(self._clock, t)

    def _rollover(self, midnight: int) -> None:
        if self.spec.swap_free:
            return
        night = weekday(midnight - DAY)  # the day whose night ends at this midnight
        for p in self._sorted(None):
            inst = self.instruments[p.symbol]
            if night == inst.triple_swap_day:
                nights = 3
            elif night in (5, 6):  # Saturday and Sunday nights: covered by the triple day
                nights = 0
            else:
                nights = 1
            if not nights:
                continue
            pts = inst.swap_long if p.side == "buy" else inst.swap_short
            per_price = self._per_price(p.symbol, self._close_price(p))
            charge = _money(pts * inst.symbol.point * per_price * p.volume * nights)
            p.swap = _money(p.swap + charge)
