"""Immutable state the engine reads and returns: per-account risk state and per-tick snapshot.

`AccountState` is what the store persists (anchors, breaker mode, locks, loss streak, recent
signal ids). The engine never mutates it; it returns a new one, and the service saves it when it
differs. `Snapshot` is everything else `decide` needs besides the request.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import msgspec

from sidecar.engine.rounding import round9
from sidecar.engine.strategies.base import Signal
from sidecar.protocol import SymbolSpec

ACTIVE, REDUCING, HALTED = "active", "reducing", "halted"


class AccountState(msgspec.Struct, frozen=True, gc=False):
    """A msgspec struct: a copy per tick through `evolve` costs ~0.3 µs (a frozen dataclass's
    copy cost ~2 µs, and this runs on every tick)."""

    login: int
    day_key: int = -1  # broker day number of `day_start_equity`
    day_start_equity: float = 0.0
    hwm: float = 0.0  # equity high-water mark
    mode: str = ACTIVE
    mode_reason: str = ""
    mode_since: int = 0  # GMT seconds
    daily_lock_day: int = -1  # the broker day on which the daily-loss lock holds
    loss_streak: int = 0  # consecutive losing positions (see account.apply_trade)
    cooldown_until: int = 0  # server seconds; no entries before this
    # Consecutive ticks at or past `cooldown_until` (0, 1, 2): the cooldown lifts on the second,
    # so one tick with a wrong future clock cannot lift it (as a new broker day needs two ticks).
    cooldown_past: int = 0
    recent_signals: tuple[tuple[str, int], ...] = ()  # (signal id, GMT seconds seen)
    reduced_tickets: tuple[int, ...] = ()  # positions already cut in the current reducing spell
    last_gmt: int = 0  # the previous request's GMT time (clock-jump detection)
    # A broker day ahead of `day_key` seen on one tick only: it rolls the day when a second tick
    # confirms it, so a single tick with a wrong clock cannot lift the daily-loss lock.
    pending_day: int = -1
    pending_equity: float = 0.0  # the anchor that day will take (see account.observe)
    pending_rebuilt: bool = False  # ... rebuilt from the deal history (an unwitnessed rollover)
    equity: float = 0.0  # last seen, for /v1/state
    balance: float = 0.0
    # Net result so far (profit + commission + swap) of the newest positions with a closing deal,
    # as (position key, money), the most recently closed last: a position closed in parts is
    # judged as one trade by the loss streak.
    position_results: tuple[tuple[int, float], ...] = ()
    streak_positions: tuple[int, ...] = ()  # positions counted in the current loss streak
    # Net result (profit + commission + swap) of the known deals of broker day `closed_day`, the
    # newest day with a deal: rebuilds a day's anchor when its rollover was not seen.
    closed_day: int = -1
    closed_day_pnl: float = 0.0
    floor_hit: int = 0  # GMT seconds the equity floor was hit (0 = not): halted until a resume

    @property
    def drawdown_pct(self) -> float:
        # Rounded so that binary noise never decides a boundary (1 - 9000/10000 is 0.0999...).
        return round9(100.0 * (1.0 - self.equity / self.hwm)) if self.hwm > 0 else 0.0

    @property
    def daily_pnl(self) -> float:
        return self.equity - self.day_start_equity if self.day_start_equity > 0 else 0.0

    def evolve(self, **changes: Any) -> AccountState:
        """A copy with `changes` applied (an unknown field name raises TypeError)."""
        return msgspec.structs.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return msgspec.structs.asdict(self)

    def same_risk_state(self, other: AccountState) -> bool:
        """True when no lock, mode, anchor day, streak or signal id changed: those must be
        persisted before the reply. (A rising high-water mark alone is written behind.)"""
        return (
            self.day_key == other.day_key
            and self.mode == other.mode
            and self.daily_lock_day == other.daily_lock_day
            and self.floor_hit == other.floor_hit
            and self.loss_streak == other.loss_streak
            and self.cooldown_until == other.cooldown_until
            and self.recent_signals == other.recent_signals
            and self.reduced_tickets == other.reduced_tickets
            # By identity: only a trade replaces these (and saves at once); a tick passes them on.
            and self.position_results is other.position_results
            and self.streak_positions is other.streak_positions
        )


@dataclass(frozen=True)
class Analysis:
    """What the strategy made of the closed bars (computed once per new bar, not per tick)."""

    bar_time: int | None
    bars: int
    min_bars: int
    signal: Signal | None
    atr: float  # ATR of the newest closed bar (0 when not enough bars)
    # Percentile (0..100) of that ATR within its last `sizing.volatility_window` values; None
    # until the history holds a full window (a partial window would rank differently).
    atr_pct: float | None = None
    # Without a signal (and past the warm-up): the strategy's note on how close the bar came, its
    # votes and deciding values (`votes=macd:+1,rsi:0,bb:0 adx=18.2<25`), which the verdict carries
    # as `SIGNAL_NONE <note>`; empty otherwise. Bounded by `reasons.clip_note`.
    note: str = ""


@dataclass(frozen=True)
class TradeStats:
    """Net results (account money) of the newest closed positions of one login, oldest first.

    Kept in memory by the service and updated per closing deal, so sizing never queries the
    database on a tick.
    """

    results: tuple[float, ...] = ()


class Snapshot(msgspec.Struct, frozen=True, gc=False):
    """Everything `decide` needs besides the request (built once per tick: a msgspec struct)."""

    account: AccountState
    symbol: SymbolSpec
    analysis: Analysis
    # Extra entry blocks supplied by feeds (news blackouts, sentiment) as reason strings, and
    # whether they call for defensive leverage. Filled by the feeds layer; empty without it.
    feed_blocks: tuple[str, ...] = ()
    feed_defensive: tuple[str, ...] = ()
    # Reasons to flatten this symbol now (e.g. NEWS_CLOSE ahead of a high-impact event).
    feed_close: tuple[str, ...] = ()
    # Account money per 1.0 price move per lot (tick_value / tick_size) of every symbol this
    # account introduced with `hello`: converts other symbols' positions to account currency.
    value_per_price: Mapping[str, float] = msgspec.field(default_factory=dict)
    # The journal behind fractional-Kelly sizing and the profit-phase leverage regime.
    trades: TradeStats = msgspec.field(default_factory=TradeStats)
