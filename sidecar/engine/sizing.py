"""Fixed-fractional sizing from the symbol spec: lots = risk money / loss per lot at the stop.

Lots are floored to the volume step and capped at the volume max; below the volume min the trade
is refused, never rounded up (rounding up would silently risk more than the budget).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sidecar.protocol import SymbolSpec


@dataclass(frozen=True)
class Size:
    volume: float  # 0.0 when refused
    raw_volume: float  # before flooring and capping
    loss_per_lot: float  # account money lost per lot at the stop
    capped: bool = False
    below_min: bool = False


def step_decimals(step: float) -> int:
    """Decimals needed to print a volume step exactly (0.01 -> 2, 0.5 -> 1, 1 -> 0)."""
    for d in range(9):
        if abs(round(step, d) - step) < 1e-12:
            return d
    return 8


def floor_to_step(volume: float, step: float) -> float:
    # The epsilon absorbs binary noise (0.3 / 0.1 = 2.9999999999999996 must give 3 steps).
    steps = math.floor(volume / step + 1e-9)
    return round(steps * step, step_decimals(step))


def loss_per_lot(sl_distance: float, spec: SymbolSpec, tick_value: float | None = None) -> float:
    """Account money lost by one lot moving `sl_distance` against the position."""
    return sl_distance / spec.tick_size * (tick_value or spec.tick_value)


def size_position(
    equity: float,
    risk_pct: float,
    sl_distance: float,
    spec: SymbolSpec,
    tick_value: float | None = None,
) -> Size:
    per_lot = loss_per_lot(sl_distance, spec, tick_value)
    raw = equity * risk_pct / 100.0 / per_lot if per_lot > 0 else 0.0
    volume = floor_to_step(raw, spec.volume_step)
    capped = volume > spec.volume_max
    if capped:
        volume = floor_to_step(spec.volume_max, spec.volume_step)
    if volume < spec.volume_min - 1e-12:
        return Size(0.0, raw, per_lot, capped, below_min=True)
    return Size(volume, raw, per_lot, capped)


def notional_per_lot(price: float, spec: SymbolSpec, tick_value: float | None = None) -> float:
    """Account-currency notional of one lot: price x value of one price unit per lot.

    tick_value / tick_size already converts the quote currency into the account currency, so
    this holds for EURUSD (=100,000 x price), USDJPY on a USD account (=100,000) and XAUUSD.
    """
    return price * (tick_value or spec.tick_value) / spec.tick_size
