"""Python twin of the EA's hard limits (``mql5/Include/Sidecar/Guard.mqh`` and ``Sizing.mqh``).

Pure and typed, no I/O: the backtester runs every simulated entry through :func:`check_entry`
exactly as the EA does live. The golden vectors in ``shared_schema/vectors/guard`` and
``shared_schema/vectors/sizing`` are run through both implementations; the arithmetic here follows
the MQL5 code operation by operation so that boundary cases give the same answers.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

STEP_EPS = 0.0000001
PCT_EPS = 0.000000001
DAY_SECONDS = 86400
MAX_SIGNALS = 64
MAX_SIGNAL_LEN = 64
HARD_MAX_RISK_PCT = 2.0
HARD_MAX_LEVERAGE = 500.0
HARD_MAX_POSITIONS = 5
ROLL_WITNESS_SEC = 300  # GUARD_ROLL_WITNESS_SEC


def mql_round(x: float) -> float:
    """MQL5 ``MathRound``: half away from zero."""
    return math.copysign(math.floor(abs(x) + 0.5), x)


def normalize_double(x: float, digits: int) -> float:
    """MQL5 ``NormalizeDouble`` (digits clamped to 0..8)."""
    p = _POW10[max(0, min(8, digits))]
    y = x * p  # mql_round(x * p) / p, inlined: the backtester calls this on every price point
    return math.copysign(math.floor(abs(y) + 0.5), y) / p


_POW10 = tuple(10.0**d for d in range(9))


@functools.lru_cache(maxsize=256)
def step_digits(step: float) -> int:
    d = 0
    s = step
    while d < 8 and abs(s - mql_round(s)) > 0.0000001 * max(1.0, abs(s)):
        s *= 10.0
        d += 1
    return d


def floor_to_step(volume: float, step: float) -> float:
    """Largest multiple of ``step`` <= ``volume`` (within 1e-7 of a step); 0 for bad input."""
    if not (math.isfinite(volume) and math.isfinite(step)) or step <= 0.0 or volume <= 0.0:
        return 0.0
    n = math.floor(volume / step + STEP_EPS)
    return normalize_double(n * step, step_digits(step))


# ---------------------------------------------------------------- sizing


@dataclass(frozen=True)
class SizingSpec:
    tick_size: float
    tick_value: float
    volume_min: float
    volume_step: float
    volume_max: float

    def valid(self) -> bool:
        vals = (self.tick_size, self.tick_value, self.volume_min, self.volume_step, self.volume_max)
        return (
            all(math.isfinite(v) for v in vals)
            and self.tick_size > 0.0
            and self.tick_value > 0.0
            and self.volume_min > 0.0
            and self.volume_step > 0.0
            and self.volume_max >= self.volume_min
        )


@dataclass(frozen=True)
class SizingResult:
    ok: bool
    code: str  # OK, BAD_SPEC, BAD_STOP, BELOW_MIN, NO_RISK_BUDGET
    loss_per_lot: float
    raw_lots: float
    lots: float


def loss_per_lot_from_ticks(entry: float, sl: float, spec: SizingSpec) -> float:
    if (
        not spec.valid()
        or not (math.isfinite(entry) and math.isfinite(sl))
        or entry <= 0
        or sl <= 0
    ):
        return 0.0
    return abs(entry - sl) / spec.tick_size * spec.tick_value


def size_lots(risk_money: float, loss_per_lot: float, spec: SizingSpec) -> SizingResult:
    """Lots for a risk budget: floored to the step, refused below volume_min, never rounded up."""
    if not spec.valid():
        return SizingResult(False, "BAD_SPEC", loss_per_lot, 0.0, 0.0)
    if not math.isfinite(loss_per_lot) or loss_per_lot <= 0.0:
        return SizingResult(False, "BAD_STOP", loss_per_lot, 0.0, 0.0)
    if not math.isfinite(risk_money) or risk_money <= 0.0:
        return SizingResult(False, "NO_RISK_BUDGET", loss_per_lot, 0.0, 0.0)
    raw = risk_money / loss_per_lot
    lots = floor_to_step(raw, spec.volume_step)
    if lots > spec.volume_max:
        lots = floor_to_step(spec.volume_max, spec.volume_step)
    if lots < spec.volume_min:
        return SizingResult(False, "BELOW_MIN", loss_per_lot, raw, 0.0)
    return SizingResult(True, "OK", loss_per_lot, raw, lots)


def entry_price_to_tick(price: float, tick: float, digits: int, round_up: bool) -> float:
    """``SizingEntryPriceToTick``: an entry's stop or target on the tick grid, rounded toward
    the entry (buy: stop up, target down; sell: the reverse), so a stop never ends up wider than
    the one the risk was sized on. 0 for a bad price."""
    if not math.isfinite(price) or price <= 0.0:
        return 0.0
    if not math.isfinite(tick) or tick <= 0.0:
        return normalize_double(price, digits)
    n = price / tick
    k = math.ceil(n - STEP_EPS) if round_up else math.floor(n + STEP_EPS)
    return normalize_double(k * tick, digits)


def size_lots_for_risk_pct(
    equity: float, risk_pct: float, entry: float, sl: float, spec: SizingSpec
) -> SizingResult:
    loss = loss_per_lot_from_ticks(entry, sl, spec)
    money = equity * risk_pct / 100.0 if math.isfinite(equity) and math.isfinite(risk_pct) else 0.0
    return size_lots(money, loss, spec)


# ---------------------------------------------------------------- guard


@dataclass(frozen=True)
class GuardLimits:
    max_risk_pct: float = 2.0
    max_leverage: float = 500.0
    daily_loss_pct: float = 3.0
    floating_loss_pct: float = 10.0
    max_drawdown_pct: float = 15.0
    max_positions: int = 3
    max_lot: float = 0.0  # <= 0 disables
    max_spread_points: float = 0.0  # <= 0 disables
    dup_window_sec: int = 300
    day_offset_hours: float = 0.0  # broker day = server midnight + this, in [-23, 23]
    equity_floor_pct: float = 0.0  # equity <= this % of the high-water mark: flatten, stop (0 off)


def limits_errors(lim: GuardLimits) -> list[str]:
    """``GuardLimitsErrors``: the inputs the EA refuses to start with, one message each."""
    e = []
    if not 0.0 < lim.max_risk_pct <= HARD_MAX_RISK_PCT:
        e.append(f"max_risk_pct must be in (0, {HARD_MAX_RISK_PCT}], got {lim.max_risk_pct}")
    if not 1.0 <= lim.max_leverage <= HARD_MAX_LEVERAGE:
        e.append(f"max_leverage must be in [1, {HARD_MAX_LEVERAGE:g}], got {lim.max_leverage}")
    for name in ("daily_loss_pct", "floating_loss_pct", "max_drawdown_pct"):
        value = getattr(lim, name)
        if not 0.0 < value <= 100.0:
            e.append(f"{name} must be in (0, 100], got {value}")
    if not 1 <= lim.max_positions <= HARD_MAX_POSITIONS:
        e.append(f"max_positions must be in 1..{HARD_MAX_POSITIONS}, got {lim.max_positions}")
    if lim.max_lot < 0.0:
        e.append(f"max_lot must be >= 0 (0 = no extra cap), got {lim.max_lot}")
    if lim.max_spread_points < 0.0:
        e.append(f"max_spread_points must be >= 0 (0 = no cap), got {lim.max_spread_points}")
    if lim.dup_window_sec < 0:
        e.append(f"dup_window_sec must be >= 0, got {lim.dup_window_sec}")
    if not -23.0 <= lim.day_offset_hours <= 23.0:
        e.append(f"day_offset_hours must be in [-23, 23], got {lim.day_offset_hours}")
    elif abs(lim.day_offset_hours * 60.0 - mql_round(lim.day_offset_hours * 60.0)) > 0.000001:
        e.append(f"day_offset_hours must be a whole number of minutes, got {lim.day_offset_hours}")
    if not 0.0 <= lim.equity_floor_pct < 100.0:
        e.append(f"equity_floor_pct must be in [0, 100) (0 = off), got {lim.equity_floor_pct}")
    return e


@dataclass
class GuardState:
    day_start: int = 0
    day_start_equity: float = 0.0
    hwm: float = 0.0
    seen: int = 0  # server time of the last account observation
    floor_time: int = 0  # server time the equity floor was hit (0 = not hit)
    signals: list[tuple[str, int]] = field(default_factory=list)  # (signal id, server time)


@dataclass(frozen=True)
class GuardAccount:
    balance: float
    equity: float
    floating_pl: float = 0.0
    positions: int = 0  # open positions of this EA (all symbols)
    open_notional: float = 0.0
    symbol_positions: int = 0  # open positions of this EA on the verdict's symbol (one per symbol)
    open_risk: float = 0.0  # money lost further if every open stop is hit (sum of position_risk)
    no_stop: int = 0  # open positions without a stop (or that cannot be valued)


@dataclass(frozen=True)
class GuardSymbol:
    tick_size: float
    tick_value: float
    volume_min: float
    volume_step: float
    volume_max: float


@dataclass(frozen=True)
class GuardEntry:
    volume: float
    price: float
    loss_per_lot: float
    signal_id: str
    now_gmt: int
    valid_until: int
    now_server: int
    leverage_cap: float = 0.0
    spread_points: float = 0.0
    sidecar_ok: bool = True


@dataclass(frozen=True)
class GuardDecision:
    allowed: bool
    cut: bool
    volume: float
    code: str
    detail: str = ""


def day_start(server_time: int, day_offset_hours: float = 0.0) -> int:
    """Server time at which the broker day containing `server_time` started."""
    offset = int(mql_round(day_offset_hours * 3600.0))  # MathRound, as the EA does
    return server_time - (server_time - offset) % DAY_SECONDS


def roll_witnessed(state: GuardState, day: int, server_time: int) -> bool:
    """``GuardRollWitnessed``: seen shortly before the new day and again shortly after."""
    return (
        0 < state.seen < day
        and state.seen >= day - ROLL_WITNESS_SEC
        and server_time - day <= ROLL_WITNESS_SEC
    )


def day_history_needed(state: GuardState, limits: GuardLimits, server_time: int) -> bool:
    """``GuardDayHistoryNeeded``: this observation starts a day whose rollover was not witnessed."""
    day = day_start(server_time, limits.day_offset_hours)
    rolls = (day != state.day_start or state.day_start_equity <= 0.0) and day >= state.day_start
    return rolls and not roll_witnessed(state, day, server_time)


def floor_reached(limits: GuardLimits, state: GuardState, equity: float) -> bool:
    if limits.equity_floor_pct <= 0.0 or state.hwm <= 0.0 or not math.isfinite(equity):
        return False
    return equity / state.hwm * 100.0 <= limits.equity_floor_pct + PCT_EPS


def observe(
    state: GuardState,
    limits: GuardLimits,
    server_time: int,
    equity: float,
    balance: float = 0.0,
    history_ok: bool = False,
    day_closed: float = 0.0,
) -> tuple[bool, str]:
    """``GuardObserve``: roll the broker day, the high-water mark and the equity floor.

    Returns (changed, event); event is DAY_ANCHOR_EQUITY (a witnessed rollover: the equity now),
    DAY_ANCHOR_REBUILT (not witnessed: max(balance - day_closed, equity), the day-start balance
    rebuilt from the deal history), DAY_ANCHOR_NO_HISTORY (not witnessed, no history: the equity
    now) or '' (no new day)."""
    if not math.isfinite(equity) or equity <= 0.0:
        return False, ""
    changed = False
    event = ""
    day = day_start(server_time, limits.day_offset_hours)
    if (day != state.day_start or state.day_start_equity <= 0.0) and day >= state.day_start:
        anchor = equity
        event = "DAY_ANCHOR_EQUITY"
        if not roll_witnessed(state, day, server_time):
            event = "DAY_ANCHOR_NO_HISTORY"
            if (
                history_ok
                and math.isfinite(balance)
                and math.isfinite(day_closed)
                and balance > 0.0
            ):
                event = "DAY_ANCHOR_REBUILT"
                if balance - day_closed > anchor:
                    anchor = balance - day_closed
        state.day_start = day
        state.day_start_equity = anchor
        changed = True
    if equity > state.hwm:
        state.hwm = equity
        changed = True
    if limits.equity_floor_pct <= 0.0:
        if state.floor_time != 0:
            state.floor_time = 0
            changed = True
    elif state.floor_time == 0 and floor_reached(limits, state, equity):
        state.floor_time = server_time if server_time > 0 else 1
        changed = True
    if server_time > state.seen:
        state.seen = server_time
    return changed, event


def on_account(state: GuardState, limits: GuardLimits, server_time: int, equity: float) -> bool:
    """Roll the broker day (server midnight + the offset) and the high-water mark; True if
    changed. (``observe`` without a deal history.)"""
    return observe(state, limits, server_time, equity)[0]


def position_risk(
    buy: bool, volume: float, price: float, sl: float, tick_size: float, tick_value: float
) -> float:
    """``GuardPositionRisk``: money lost from `price` to the stop; 0 when the stop is at or past
    the price on the profit side; -1 when it cannot be valued (count it as without a stop)."""
    vals = (volume, price, sl, tick_size, tick_value)
    if not all(math.isfinite(v) for v in vals) or min(vals) <= 0.0:
        return -1.0
    distance = price - sl if buy else sl - price
    if distance <= 0.0:
        return 0.0
    return distance / tick_size * tick_value * volume


def signal_id_valid(signal_id: str) -> bool:
    """Printable ASCII without spaces, 1..64 characters."""
    if not 1 <= len(signal_id) <= MAX_SIGNAL_LEN:
        return False
    return all(0x21 <= ord(c) <= 0x7E for c in signal_id)


def is_duplicate(state: GuardState, limits: GuardLimits, signal_id: str, now: int) -> bool:
    return any(sid == signal_id and now - t <= limits.dup_window_sec for sid, t in state.signals)


def remember_signal(state: GuardState, limits: GuardLimits, signal_id: str, now: int) -> None:
    kept = [(sid, t) for sid, t in state.signals if now - t <= limits.dup_window_sec]
    if len(kept) >= MAX_SIGNALS:
        kept = kept[1:]
    kept.append((signal_id, now))
    state.signals = kept


def notional_per_lot(price: float, tick_size: float, tick_value: float) -> float:
    vals = (price, tick_size, tick_value)
    if not all(math.isfinite(v) for v in vals) or min(vals) <= 0.0:
        return 0.0
    return price * tick_value / tick_size


def account_lock(limits: GuardLimits, state: GuardState, account: GuardAccount) -> str:
    """Account-level lock code ('' when none): BAD_ACCOUNT, EQUITY_FLOOR, DAILY_LOSS,
    FLOATING_LOSS, DRAWDOWN."""
    a = account
    if (
        not (math.isfinite(a.equity) and math.isfinite(a.balance))
        or a.equity <= 0
        or a.balance <= 0
    ):
        return "BAD_ACCOUNT"
    if limits.equity_floor_pct > 0.0 and (
        state.floor_time > 0 or floor_reached(limits, state, a.equity)
    ):
        return "EQUITY_FLOOR"
    if state.day_start_equity > 0.0:
        pct = (state.day_start_equity - a.equity) / state.day_start_equity * 100.0
        if pct >= limits.daily_loss_pct - PCT_EPS:
            return "DAILY_LOSS"
    if math.isfinite(a.floating_pl):
        pct = -a.floating_pl / a.balance * 100.0
        if pct > limits.floating_loss_pct + PCT_EPS:
            return "FLOATING_LOSS"
    if state.hwm > 0.0:
        pct = (state.hwm - a.equity) / state.hwm * 100.0
        if pct >= limits.max_drawdown_pct - PCT_EPS:
            return "DRAWDOWN"
    return ""


def _refuse(code: str, detail: str = "") -> GuardDecision:
    return GuardDecision(False, False, 0.0, code, detail)


def check_entry(
    limits: GuardLimits,
    state: GuardState,
    account: GuardAccount,
    symbol: GuardSymbol,
    entry: GuardEntry,
) -> GuardDecision:
    """Whether a new entry may be sent and with which volume (cut to the caps, never raised)."""
    e = entry
    if not e.sidecar_ok:
        return _refuse("SIDECAR_DOWN")
    if e.now_gmt > e.valid_until:
        return _refuse("STALE_VERDICT", f"age_past_valid_until={e.now_gmt - e.valid_until}")
    lock = account_lock(limits, state, account)
    if lock:
        return _refuse(lock)
    if account.positions >= limits.max_positions:
        return _refuse("MAX_POSITIONS")
    if account.symbol_positions > 0:
        return _refuse("SYMBOL_POSITION")
    if account.no_stop > 0:
        return _refuse("OPEN_NO_STOP")  # its loss has no bound: no budget can hold it
    if limits.max_spread_points > 0.0 and (
        not math.isfinite(e.spread_points) or e.spread_points > limits.max_spread_points + PCT_EPS
    ):
        return _refuse("SPREAD")
    if not signal_id_valid(e.signal_id):
        return _refuse("BAD_SIGNAL_ID")
    if is_duplicate(state, limits, e.signal_id, e.now_server):
        return _refuse("DUPLICATE_SIGNAL")
    spec = SizingSpec(
        symbol.tick_size,
        symbol.tick_value,
        symbol.volume_min,
        symbol.volume_step,
        symbol.volume_max,
    )
    if not spec.valid():
        return _refuse("BAD_SPEC")
    npl = notional_per_lot(e.price, symbol.tick_size, symbol.tick_value)
    if npl <= 0.0:
        return _refuse("BAD_PRICE")
    if not math.isfinite(e.loss_per_lot) or e.loss_per_lot <= 0.0:
        return _refuse("BAD_STOP")
    if not math.isfinite(e.volume) or e.volume <= 0.0:
        return _refuse("BAD_VOLUME")
    step = symbol.volume_step
    vol = floor_to_step(e.volume, step)
    code = "OK"
    risk_money = account.equity * limits.max_risk_pct / 100.0
    risk_vol = floor_to_step(risk_money / e.loss_per_lot, step)
    if risk_vol < vol:
        vol, code = risk_vol, "RISK_CAP"
    cap = limits.max_leverage
    if math.isfinite(e.leverage_cap) and 0.0 < e.leverage_cap < cap:
        cap = e.leverage_cap
    open_notional = (
        account.open_notional
        if math.isfinite(account.open_notional) and account.open_notional > 0
        else 0.0
    )
    room = account.equity * cap - open_notional
    lev_vol = floor_to_step(room / npl, step) if room > 0.0 else 0.0
    if lev_vol < vol:
        vol, code = lev_vol, "LEVERAGE_CAP"
    # Open-risk budget: equity if every open stop is hit, less this trade's loss at its stop,
    # stays at or above the daily-loss level and the drawdown level (and the equity floor).
    open_risk = (
        account.open_risk if math.isfinite(account.open_risk) and account.open_risk > 0 else 0.0
    )
    worst = account.equity - open_risk
    daily_room = -1.0
    if state.day_start_equity > 0.0:
        daily_room = worst - state.day_start_equity * (1.0 - limits.daily_loss_pct / 100.0)
        v = floor_to_step(daily_room / e.loss_per_lot, step) if daily_room > 0.0 else 0.0
        if v < vol:
            vol, code = v, "DAILY_BUDGET"
    dd_room = -1.0
    if state.hwm > 0.0:
        level = state.hwm * (1.0 - limits.max_drawdown_pct / 100.0)
        if limits.equity_floor_pct > 0.0 and state.hwm * limits.equity_floor_pct / 100.0 > level:
            level = state.hwm * limits.equity_floor_pct / 100.0
        dd_room = worst - level
        v = floor_to_step(dd_room / e.loss_per_lot, step) if dd_room > 0.0 else 0.0
        if v < vol:
            vol, code = v, "DRAWDOWN_BUDGET"
    if limits.max_lot > 0.0:
        ml = floor_to_step(limits.max_lot, step)
        if ml < vol:
            vol, code = ml, "MAX_LOT"
    vmax = floor_to_step(symbol.volume_max, step)
    if vmax < vol:
        vol, code = vmax, "VOLUME_MAX"
    detail = (
        f"asked={e.volume} risk_vol={risk_vol} leverage_vol={lev_vol} leverage_cap={cap:g} "
        f"open_risk={open_risk:.2f} daily_room={daily_room:.2f} drawdown_room={dd_room:.2f}"
    )
    if vol < symbol.volume_min:
        return _refuse("BELOW_MIN" if code == "OK" else code, detail)
    return GuardDecision(True, code != "OK", vol, code, detail)
