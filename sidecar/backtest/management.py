"""What the EA does locally on every tick: ``ManagePositions`` of ``mql5/Experts/SidecarEA.mq5``
replayed against the simulated broker with the Python twin of ``Manager.mqh``.

API::

    lm = LocalManager(broker, defaults=ManageParams())      # the EA's input defaults
    lm.set_manage(symbol, verdict.manage)   # on every verdict the EA accepts (None = defaults)
    lm.set_atr(symbol, atr)                 # after each closed bar: the EA's iATR at shift 1
    lm.on_point(symbol, bid, ask, server_time) -> list[Deal]
        # one tick: ManagerDecide for each open position of the symbol, then the partial close
        # and the SL modification, in the EA's order; usable as Broker.process_bar's on_point
    ea_atr(rows, period=14) -> float        # MT5 iATR of the newest closed bar (0 = unavailable)
    ea_atr_series(high, low, close, period) # the same for every bar of a series
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence

import numpy as np

from sidecar.backtest.broker import (
    RETCODE_DONE,
    RETCODE_NO_CHANGES,
    Broker,
)
from sidecar.backtest.model import Deal
from sidecar.engine.indicators import atr as _atr
from sidecar.manager import ManageMarket, ManageParams, ManagePosition, manager_decide
from sidecar.protocol import Manage

HELD_KEPT = 1000  # a long run holds back decisions on many ticks: keep the newest
BLOCK_SECONDS = 10  # SidecarEA.mq5 ManagePositions: Block(ticket, 10) after a failed order


def params_from_manage(manage: Manage | None, defaults: ManageParams) -> ManageParams:
    """``CurrentManageParams`` (SidecarEA.mq5): a verdict's manage replaces all the defaults;
    breakeven_buffer becomes breakeven_offset (0 when absent)."""
    if manage is None:
        return defaults
    return ManageParams(
        breakeven_r=manage.breakeven_r,
        partial_r=manage.partial_r,
        partial_fraction=manage.partial_fraction,
        trail_atr=manage.trail_atr,
        trail_distance=manage.trail_distance,
        breakeven_offset=manage.breakeven_buffer,
    )


def ea_atr_series(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int) -> np.ndarray:
    """``CurrentAtr`` for every bar: MT5's iATR (a rolling mean of true ranges) of each bar as
    the newest closed one; 0 where there are too few bars."""
    return np.nan_to_num(_atr(high, low, close, period, variant="mt5"), nan=0.0)


def ea_atr(rows: Sequence[Sequence[float]], period: int = 14) -> float:
    """``CurrentAtr``: the iATR of the newest row, which is the last closed bar
    (``CopyBuffer(g_atr, 0, 1, 1)``); 0 while there are too few bars."""
    if len(rows) <= period:
        return 0.0
    tail = np.asarray([r[2:5] for r in rows[-(period + 1) :]], dtype=float)
    return float(ea_atr_series(tail[:, 0], tail[:, 1], tail[:, 2], period)[-1])


class LocalManager:
    """The EA's local management of one account's positions on the simulated broker."""

    def __init__(self, broker: Broker, defaults: ManageParams | None = None) -> None:
        self.broker = broker
        self.defaults = defaults or ManageParams()
        self.params: dict[str, ManageParams] = {}
        self.atr: dict[str, float] = {}
        # per ticket: (initial risk distance, initial volume), the EA's global variables "r", "v"
        self.anchors: dict[int, tuple[float, float]] = {}
        self.blocked_until: dict[int, int] = {}  # ticket -> server time (Block / Blocked)
        # (time, ticket, reason) of the newest HELD log lines
        self.held: deque[tuple[int, int, str]] = deque(maxlen=HELD_KEPT)

    def set_manage(self, symbol: str, manage: Manage | None) -> None:
        self.params[symbol] = params_from_manage(manage, self.defaults)

    def set_atr(self, symbol: str, atr: float) -> None:
        self.atr[symbol] = atr if atr > 0.0 else 0.0

    def on_point(self, symbol: str, bid: float, ask: float, server_time: int) -> list[Deal]:
        b = self.broker
        start = len(b.deals)
        open_tickets = b.tickets() if self.anchors else set()
        # QueueDeal deletes a position's anchors once a closing deal leaves it closed
        for gone in [t for t in self.anchors if t not in open_tickets]:
            del self.anchors[gone]
        if not b.has_positions(symbol):
            return []
        p = self.params.get(symbol, self.defaults)  # CurrentManageParams
        s = b.instruments[symbol].symbol
        m = ManageMarket(
            bid=bid,
            ask=ask,
            atr=self.atr.get(symbol, 0.0),  # CurrentAtr
            point=s.point,
            tick_size=s.tick_size,
            digits=s.digits,
            stops_level=s.stops_level,
            freeze_level=s.freeze_level,
            volume_min=s.volume_min,
            volume_step=s.volume_step,
        )
        # for(i = PositionsTotal() - 1; i >= 0; i--): the newest position first
        for view in reversed(b.positions(symbol)):
            ticket = view.ticket
            if self.blocked_until.get(ticket, 0) > server_time:  # Blocked(ticket)
                continue
            if ticket not in self.anchors:  # !GlobalVariableCheck(gv): remember r and v
                sl, po = view.sl, view.price_open
                d = (po - sl if view.side == "buy" else sl - po) if sl > 0.0 else 0.0
                self.anchors[ticket] = (d if d > 0.0 else 0.0, view.volume)
            risk, first_volume = self.anchors[ticket]
            pos = ManagePosition(
                side=view.side,
                volume=view.volume,
                price_open=view.price_open,
                sl=view.sl,
                tp=view.tp,
                risk_distance=risk,
                # pos.partial_done = pos.volume < GlobalVariableGet(gv) - m.volume_step * 0.5
                partial_done=view.volume < first_volume - s.volume_step * 0.5,
            )
            a = manager_decide(pos, m, p)
            if a.reason and a.close_volume <= 0.0 and not a.modify:
                self.held.append((server_time, ticket, a.reason))  # Log(LOG_MANAGE, "HELD")
            if a.close_volume > 0.0:
                # g_exec.Close(ticket, a.close_volume, "partial"): a netting account reduces
                # with an opposite deal commented "sc:reduce" (Executor.mqh Close)
                comment = "sc:reduce" if b.spec.mode == "netting" else ""
                r = b.close_position(ticket, a.close_volume, server_time, comment)
                if not r.ok:
                    self.blocked_until[ticket] = server_time + BLOCK_SECONDS
                    continue
                if b.position(ticket) is None:  # !PositionSelectByTicket(ticket)
                    continue
            # g_exec.Modify(ticket, a.new_sl, pos.tp, a.reason): NO_CHANGES counts as done
            if a.modify and b.modify_position(ticket, a.new_sl, view.tp) not in (
                RETCODE_DONE,
                RETCODE_NO_CHANGES,
            ):
                self.blocked_until[ticket] = server_time + BLOCK_SECONDS
        return b.deals[start:]
