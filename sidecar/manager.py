"""Python twin of the EA's local trade management (``mql5/Include/Sidecar/Manager.mqh``).

Pure and typed, no I/O: the backtester runs :func:`manager_decide` on every simulated price point
exactly as the EA runs ``ManagerDecide`` on every tick (partial close, breakeven, ATR trailing).
The golden vectors in ``shared_schema/vectors/manager`` are run through both implementations; the
arithmetic here follows the MQL5 code operation by operation (same rounding helpers as
:mod:`sidecar.guard`) so that boundary cases give the same answers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sidecar.guard import floor_to_step, normalize_double, step_digits

SIDE_BUY = "buy"
SIDE_SELL = "sell"
# R multiples are compared with this tolerance so that "exactly 1R" fires despite binary prices.
R_EPS = 0.000000001


@dataclass(frozen=True)
class ManageParams:
    """``ManageParams`` with ``ManageParamsDefaults``."""

    breakeven_r: float = 1.0  # move SL to entry (+offset) at this many R; <= 0 disables
    partial_r: float = 1.0  # close partial_fraction at this many R; <= 0 disables
    partial_fraction: float = 0.5  # (0, 1); anything else disables the partial close
    trail_atr: float = 2.0  # trailing distance in ATRs; <= 0 -> trail_distance
    trail_distance: float = 0.0  # trailing distance in price units; <= 0 disables trailing
    breakeven_offset: float = 0.0  # price units beyond entry for the breakeven stop (>= 0)


@dataclass(frozen=True)
class ManagePosition:
    side: str  # "buy" / "sell" (MANAGER_SIDE_BUY / MANAGER_SIDE_SELL)
    volume: float
    price_open: float
    sl: float = 0.0  # 0 = none
    tp: float = 0.0  # 0 = none
    risk_distance: float = 0.0  # |open - initial SL|; <= 0 = unknown (derived from a loss-side sl)
    partial_done: bool = False


@dataclass(frozen=True)
class ManageMarket:
    bid: float
    ask: float
    atr: float  # in price units; <= 0 = unavailable
    point: float
    tick_size: float
    digits: int
    stops_level: int = 0  # points
    freeze_level: int = 0  # points
    volume_min: float = 0.01
    volume_step: float = 0.01


@dataclass(frozen=True)
class ManageAction:
    close_volume: float  # > 0: close this much now
    modify: bool  # True: move the SL to new_sl (TP unchanged)
    new_sl: float
    reason: str  # codes of what fired / was held back, space separated


def _add(reason: str, code: str) -> str:
    return f"{reason} {code}" if reason else code


def stop_to_tick(price: float, tick: float, digits: int, side: str) -> float:
    """``ManagerStopToTick``: the price on the tick grid, away from the market."""
    if tick <= 0.0:
        return normalize_double(price, digits)
    n = price / tick
    k = math.floor(n + 0.0000001) if side == SIDE_BUY else math.ceil(n - 0.0000001)
    return normalize_double(k * tick, digits)


def manager_decide(pos: ManagePosition, m: ManageMarket, p: ManageParams) -> ManageAction:
    """``ManagerDecide``: what to do with one position at one price (bid/ask)."""
    close_volume = 0.0
    reason = ""
    if (
        not (m.bid > 0.0 and m.ask > 0.0 and m.point > 0.0 and pos.price_open > 0.0)
        or not (pos.volume > 0.0)
        or pos.side not in (SIDE_BUY, SIDE_SELL)
    ):
        return ManageAction(0.0, False, pos.sl, "BAD_INPUT")
    buy = pos.side == SIDE_BUY
    close_px = m.bid if buy else m.ask  # the price that closes the position
    profit = close_px - pos.price_open if buy else pos.price_open - close_px
    risk = pos.risk_distance
    if risk <= 0.0 and pos.sl > 0.0:
        d = pos.price_open - pos.sl if buy else pos.sl - pos.price_open
        if d > 0.0:
            risk = d
    r_mult = profit / risk if risk > 0.0 else 0.0
    freeze = m.freeze_level * m.point
    # stops_level 0 often means a floating level: keep at least the current spread away
    stops = max(m.stops_level * m.point, m.ask - m.bid)
    # Freeze level: no close and no modification while the price is within it of SL or TP.
    frozen = False
    if freeze > 0.0:
        if pos.sl > 0.0 and (close_px - pos.sl if buy else pos.sl - close_px) <= freeze:
            frozen = True
        if pos.tp > 0.0 and (pos.tp - close_px if buy else close_px - pos.tp) <= freeze:
            frozen = True
    partial_enabled = p.partial_r > 0.0 and 0.0 < p.partial_fraction < 1.0
    part = floor_to_step(pos.volume * p.partial_fraction, m.volume_step)
    rest = normalize_double(pos.volume - part, step_digits(m.volume_step))
    partial_possible = part >= m.volume_min and rest >= m.volume_min
    # 1. partial close
    if partial_enabled and not pos.partial_done and risk > 0.0 and r_mult >= p.partial_r - R_EPS:
        if not partial_possible:
            reason = _add(reason, "PARTIAL_TOO_SMALL")
        elif frozen:
            reason = _add(reason, "PARTIAL_FROZEN")
        else:
            close_volume = part
            reason = _add(reason, "PARTIAL")
    # 2. stop candidates: breakeven and trailing; the best improvement wins
    cand = 0.0
    have = False
    why = ""
    if p.breakeven_r > 0.0 and risk > 0.0 and r_mult >= p.breakeven_r - R_EPS:
        off = p.breakeven_offset if p.breakeven_offset > 0.0 else 0.0
        cand = pos.price_open + off if buy else pos.price_open - off
        have = True
        why = "BREAKEVEN"
    dist = 0.0
    if p.trail_atr > 0.0 and m.atr > 0.0:
        dist = p.trail_atr * m.atr
    elif p.trail_distance > 0.0:
        dist = p.trail_distance
    # ATR trailing starts after the partial close, or at once when there is none to wait for
    trail_active = (
        pos.partial_done
        or close_volume > 0.0
        or not partial_enabled
        or not partial_possible
        or risk <= 0.0
    )
    if dist > 0.0 and trail_active:
        t = close_px - dist if buy else close_px + dist
        # trail only on the profit side of the entry
        if (t > pos.price_open) if buy else (t < pos.price_open):
            if not have or ((t > cand) if buy else (t < cand)):
                cand = t
                why = "TRAIL"
            have = True
    if not have:
        return ManageAction(close_volume, False, pos.sl, reason)
    # stops level: the new stop must be at least stops_level away from the closing price
    if (close_px - cand < stops) if buy else (cand - close_px < stops):
        cand = close_px - stops if buy else close_px + stops
        why += "_CLAMPED"
    if (cand >= close_px) if buy else (cand <= close_px):
        return ManageAction(close_volume, False, pos.sl, _add(reason, why + "_NO_ROOM"))
    cand = stop_to_tick(cand, m.tick_size, m.digits, pos.side)
    tick = m.tick_size if m.tick_size > 0.0 else m.point
    improves = pos.sl <= 0.0 or (
        cand >= pos.sl + tick * 0.5 if buy else cand <= pos.sl - tick * 0.5
    )
    if not improves:
        return ManageAction(close_volume, False, pos.sl, reason)
    if frozen:
        return ManageAction(close_volume, False, pos.sl, _add(reason, why + "_FROZEN"))
    return ManageAction(close_volume, True, cand, _add(reason, why))
