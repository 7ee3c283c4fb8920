"""Builders for protocol messages (tests, benchmark, demos): the documented field names only."""

from __future__ import annotations

from typing import Any

EURUSD_SPEC: dict[str, Any] = {
    "name": "EURUSD",
    "base": "EUR",
    "quote": "USD",
    "digits": 5,
    "point": 0.00001,
    "tick_size": 0.00001,
    "tick_value": 1.0,
    "contract_size": 100000,
    "volume_min": 0.01,
    "volume_step": 0.01,
    "volume_max": 100.0,
    "stops_level": 0,
    "freeze_level": 0,
}
USDJPY_SPEC: dict[str, Any] = {
    # USD account: one 0.001 JPY tick on 100,000 USD is 100 JPY = 100/150 USD at 150.00.
    "name": "USDJPY",
    "base": "USD",
    "quote": "JPY",
    "digits": 3,
    "point": 0.001,
    "tick_size": 0.001,
    "tick_value": 100.0 / 150.0,
    "contract_size": 100000,
    "volume_min": 0.01,
    "volume_step": 0.01,
    "volume_max": 100.0,
    "stops_level": 0,
    "freeze_level": 0,
}
XAUUSD_SPEC: dict[str, Any] = {
    # 100 oz per lot, 0.01 tick = 1 USD per lot.
    "name": "XAUUSD",
    "base": "XAU",
    "quote": "USD",
    "digits": 2,
    "point": 0.01,
    "tick_size": 0.01,
    "tick_value": 1.0,
    "contract_size": 100,
    "volume_min": 0.01,
    "volume_step": 0.01,
    "volume_max": 50.0,
    "stops_level": 0,
    "freeze_level": 0,
}


def hello(
    login: int = 12345678,
    spec: dict[str, Any] | None = None,
    bars: list[list[float]] | None = None,
    timeframe: str = "H1",
    server: int = 1734486000,
    gmt: int | None = None,
    balance: float = 10000.0,
    tester: bool = False,
    msg_id: str = "h-1",
) -> dict[str, Any]:
    return {
        "v": 1,
        "type": "hello",
        "id": msg_id,
        "token": None,
        "ea": {"name": "SidecarEA", "version": "1.0.0", "magic": 20251218, "tester": tester},
        "account": {
            "login": login,
            "server": "Demo-Server",
            "currency": "USD",
            "leverage": 3000,
            "balance": balance,
            "equity": balance,
            "margin": 0.0,
            "free_margin": balance,
        },
        "time": {"server": server, "gmt": server if gmt is None else gmt},
        "symbol": dict(spec or EURUSD_SPEC),
        "timeframe": timeframe,
        "bars": bars or [],
    }


def tick(
    server: int,
    bid: float,
    ask: float | None = None,
    login: int = 12345678,
    symbol: str = "EURUSD",
    timeframe: str = "H1",
    equity: float = 10000.0,
    balance: float | None = None,
    positions: list[dict[str, Any]] | None = None,
    bars: list[list[float]] | None = None,
    gmt: int | None = None,
    msg_id: str = "t-1",
) -> dict[str, Any]:
    return {
        "v": 1,
        "type": "tick",
        "id": msg_id,
        "login": login,
        "symbol": symbol,
        "timeframe": timeframe,
        "time": {"server": server, "gmt": server if gmt is None else gmt, "msc": server * 1000},
        "bid": bid,
        "ask": bid if ask is None else ask,
        "account": {
            "balance": balance if balance is not None else equity,
            "equity": equity,
            "margin": 0.0,
            "free_margin": equity,
        },
        "positions": positions or [],
        "bars": bars or [],
    }


def position(
    ticket: int,
    symbol: str = "EURUSD",
    side: str = "buy",
    volume: float = 0.1,
    price_open: float = 1.1,
    profit: float = 0.0,
    comment: str = "",
) -> dict[str, Any]:
    return {
        "ticket": ticket,
        "symbol": symbol,
        "side": side,
        "volume": volume,
        "price_open": price_open,
        "sl": 0.0,
        "tp": 0.0,
        "profit": profit,
        "swap": 0.0,
        "time": 0,
        "comment": comment,
    }


def trade(
    deal: int,
    login: int = 12345678,
    entry: str = "in",
    profit: float = 0.0,
    time: int = 1734480000,
    comment: str = "",
    symbol: str = "EURUSD",
    msg_id: str | None = None,
    position: int | None = None,
    commission: float = 0.0,
) -> dict[str, Any]:
    return {
        "v": 1,
        "type": "trade",
        "id": msg_id or f"d-{deal}",
        "login": login,
        "deal": deal,
        "order": deal + 1000,
        "position": deal // 2 + 1 if position is None else position,
        "symbol": symbol,
        "side": "buy",
        "entry": entry,
        "volume": 0.1,
        "price": 1.1,
        "profit": profit,
        "commission": commission,
        "swap": 0.0,
        "time": time,
        "comment": comment,
    }


def heartbeat(
    login: int = 12345678,
    symbol: str = "EURUSD",
    server: int = 1734480000,
    gmt: int | None = None,
    msg_id: str = "b-1",
) -> dict[str, Any]:
    return {
        "v": 1,
        "type": "heartbeat",
        "id": msg_id,
        "login": login,
        "symbol": symbol,
        "time": {"server": server, "gmt": server if gmt is None else gmt},
    }


def calendar_event(
    time_gmt: int,
    event_id: str = "840030016",
    currency: str = "USD",
    importance: str = "high",
    name: str = "Nonfarm Payrolls",
    forecast: float | None = 200.0,
    previous: float | None = 227.0,
) -> dict[str, Any]:
    """One event of the terminal's calendar (MqlCalendarValue as the EA sends it)."""
    return {
        "id": event_id,
        "time_gmt": time_gmt,
        "currency": currency,
        "importance": importance,
        "name": name,
        "actual": None,
        "forecast": forecast,
        "previous": previous,
    }


def calendar(
    events: list[dict[str, Any]], login: int = 12345678, msg_id: str = "c-1"
) -> dict[str, Any]:
    return {
        "v": 1,
        "type": "calendar",
        "id": msg_id,
        "login": login,
        "source": "mt5",
        "events": events,
    }


def eurusd_rows() -> list[list[float]]:
    """backtesting.py's real EURUSD H1 bars as protocol bar rows (a dev dependency)."""
    from backtesting.test import EURUSD

    rows = []
    for ts, (o, h, lo, c, v) in zip(
        EURUSD.index, EURUSD[["Open", "High", "Low", "Close", "Volume"]].to_numpy(), strict=True
    ):
        rows.append([int(ts.timestamp()), float(o), float(h), float(lo), float(c), float(v), 0.0])
    return rows
