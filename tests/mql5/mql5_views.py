"""What the EA is meant to see in a sidecar reply: the reading rules of Protocol.mqh in Python.

Shared by the protocol round-trip tests and the end-to-end test against a real sidecar.
"""

from __future__ import annotations

from typing import Any


def expected_view(msg: Any) -> dict[str, Any]:
    """What the EA is meant to see in a reply (DESIGN.md + Protocol.mqh rules)."""
    from sidecar import protocol as p

    none = {"kind": "none"}
    if isinstance(msg, p.Ack):
        return none if msg.id is None else {"kind": "ack", "id": msg.id}
    if isinstance(msg, p.ErrorReply):
        return {
            "kind": "error",
            "id": msg.id or "",
            "code": msg.error.code,
            "message": msg.error.message,
        }
    # verdicts: a null id cannot be matched, action open needs an order, at most 32 closes
    if msg.id is None or (msg.action == "open" and msg.open is None) or len(msg.close) > 32:
        return none
    o = msg.open if msg.action == "open" else None
    m = msg.manage
    return {
        "kind": "verdict",
        "id": msg.id,
        "action": msg.action,
        "mode": msg.mode,
        "open": None
        if o is None
        else {
            "side": o.side,
            "volume": o.volume,
            "sl": o.sl,
            "tp": o.tp,
            "risk_pct": o.risk_pct,
            "signal_id": o.signal_id,
        },
        "close": [[c.ticket, c.volume] for c in msg.close],
        "manage": {
            "breakeven_r": m.breakeven_r,
            "partial_r": m.partial_r,
            "partial_fraction": m.partial_fraction,
            "trail_atr": m.trail_atr,
            "trail_distance": m.trail_distance,
            "breakeven_buffer": m.breakeven_buffer,
        },
        "leverage_cap": float(msg.leverage_cap),
        "valid_until": msg.valid_until,
        "reason_total": len(msg.reasons),
        "reasons": list(msg.reasons[:16]),
    }
