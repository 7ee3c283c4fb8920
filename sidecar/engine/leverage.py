"""Leverage regimes and effective leverage: pure functions of the account, positions and journal.

Effective leverage = total open notional in account currency, the new trade included, divided by
equity. The regime picks the cap: `defensive` when the account is under stress (a loss streak,
drawdown beyond the defensive level, news blackout or negative sentiment from the feeds),
`profit` when equity stands at its high-water mark and the journal shows a positive Kelly edge,
`normal` otherwise. No configuration can lift a cap above HARD_LEVERAGE_CEILING.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import msgspec

from sidecar.config import HARD_LEVERAGE_CEILING, LeverageConfig, RiskConfig
from sidecar.engine.kelly import KellyEstimate
from sidecar.engine.sizing import floor_to_step
from sidecar.engine.state import AccountState
from sidecar.protocol import Position

DEFENSIVE, NORMAL, PROFIT = "defensive", "normal", "profit"


class Regime(msgspec.Struct, frozen=True, gc=False):
    name: str
    cap: int  # the "N" of 1:N
    why: tuple[str, ...] = ()


def regime(
    state: AccountState,
    risk: RiskConfig,
    lev: LeverageConfig,
    feed_defensive: Iterable[str] = (),
    kelly: KellyEstimate | None = None,
) -> Regime:
    why: list[str] = []
    if state.drawdown_pct > risk.drawdown_defensive_pct:
        why.append(f"drawdown>{risk.drawdown_defensive_pct}%")
    if state.loss_streak >= risk.loss_streak:
        why.append(f"losses>={risk.loss_streak}")
    why.extend(feed_defensive)
    if why:
        return Regime(DEFENSIVE, min(lev.defensive, HARD_LEVERAGE_CEILING), tuple(why))
    at_hwm = state.hwm > 0 and state.equity >= state.hwm
    if at_hwm and kelly is not None and kelly.edge:
        return Regime(
            PROFIT, min(lev.profit, HARD_LEVERAGE_CEILING), ("hwm", f"kelly_f={kelly.f:.4g}")
        )
    return Regime(NORMAL, min(lev.normal, HARD_LEVERAGE_CEILING))


def open_notional(
    positions: Iterable[Position], value_per_price: Mapping[str, float], own: float
) -> float:
    """Account-currency notional of open positions; `own` values symbols no hello introduced."""
    return sum(p.volume * p.price_open * value_per_price.get(p.symbol, own) for p in positions)


def effective_leverage(notional: float, equity: float) -> float:
    return notional / equity if equity > 0 else float("inf")


def fit_volume(cap: int, equity: float, open_notional: float, per_lot: float, step: float) -> float:
    """The largest volume (floored to the step) that keeps notional / equity within the cap."""
    room = max(cap * equity - open_notional, 0.0)
    return floor_to_step(room / per_lot, step) if per_lot > 0 else 0.0
