"""Strategy Tester sessions are kept apart from live ones on the same account login.

The tester reports the real account's login, so a backtest run through the same sidecar must not
move the live account's anchors, locks, bar history or trade journal, and must not be persisted.
"""

from __future__ import annotations

import json
from pathlib import Path

from sidecar.config import Config
from sidecar.service.handler import Sidecar
from sidecar.store import Store
from sidecar.testing import messages

LOGIN = 777
T = 1734480000


def _send(sidecar: Sidecar, message: dict) -> dict:
    reply, _ = sidecar.handle(json.dumps(message).encode())
    sidecar.after_reply()
    return json.loads(reply)


def _tester(message: dict) -> dict:
    return {**message, "tester": True}


def test_a_backtest_on_the_live_login_does_not_touch_the_live_account(tmp_path: Path) -> None:
    path = tmp_path / "live.sqlite"
    live = Sidecar(Config(), Store(path))
    assert _send(live, messages.hello(login=LOGIN, balance=500.0, server=T))["ok"]
    assert (
        _send(live, messages.tick(server=T + 1, bid=1.1, login=LOGIN, equity=500.0))["mode"]
        == "active"
    )

    # A tester run on the same login with a 10,000 deposit, then a 20% drawdown there.
    hello = messages.hello(login=LOGIN, balance=10_000.0, server=T, tester=True)
    assert _send(live, hello)["ok"]
    assert _send(live, _tester(messages.tick(server=T + 2, bid=1.1, login=LOGIN, equity=10_000.0)))
    halted = _send(live, _tester(messages.tick(server=T + 3, bid=1.1, login=LOGIN, equity=8_000.0)))
    assert halted["mode"] == "halted"

    # The live account is untouched: not halted, anchors of its own.
    after = _send(live, messages.tick(server=T + 4, bid=1.1, login=LOGIN, equity=500.0))
    assert after["mode"] == "active" and not any("MODE_HALTED" in r for r in after["reasons"])
    account = live.state_report()["accounts"][0]
    assert account["anchors"]["high_water_mark"] == 500.0
    tester_account = live.tester_book.state_report()["accounts"][0]
    assert tester_account["mode"] == "halted"

    # Deal tickets of a tester run (they restart at low numbers) never collide with live ones.
    assert (
        _send(live, messages.trade(2, login=LOGIN, entry="out", profit=-5.0))["duplicate"] is False
    )
    tester_deal = _tester(messages.trade(2, login=LOGIN, entry="out", profit=-7.0))
    assert _send(live, tester_deal)["duplicate"] is False
    assert [t["profit"] for t in live.store.trades(login=LOGIN)] == [-5.0]
    live.close()

    # Nothing of the tester run was persisted.
    reopened = Store(path)
    assert reopened.load_states()[LOGIN].hwm == 500.0
    assert [t["profit"] for t in reopened.trades(login=LOGIN)] == [-5.0]
    reopened.close()


def test_each_tester_run_starts_clean(tmp_path: Path) -> None:
    live = Sidecar(Config(), Store(tmp_path / "live.sqlite"))
    hello = messages.hello(login=LOGIN, balance=10_000.0, server=T, tester=True)
    _send(live, hello)
    _send(live, _tester(messages.tick(server=T + 1, bid=1.1, login=LOGIN, equity=10_000.0)))
    assert (
        _send(live, _tester(messages.tick(server=T + 2, bid=1.1, login=LOGIN, equity=8_000.0)))[
            "mode"
        ]
        == "halted"
    )
    assert (
        _send(live, _tester(messages.trade(2, login=LOGIN, entry="out", profit=-1.0)))["duplicate"]
        is False
    )

    _send(live, hello)  # the next run
    fresh = _send(live, _tester(messages.tick(server=T + 1, bid=1.1, login=LOGIN, equity=10_000.0)))
    assert fresh["mode"] == "active"
    assert (
        _send(live, _tester(messages.trade(2, login=LOGIN, entry="out", profit=-1.0)))["duplicate"]
        is False
    )
    live.close()


def test_untrusted_messages_cannot_grow_memory_without_bound(tmp_path: Path) -> None:
    from sidecar.kernel import MAX_SYMBOLS
    from sidecar.service.handler import MAX_HEARTBEATS

    sidecar = Sidecar(Config(), Store(tmp_path / "s.sqlite"))
    for n in range(MAX_SYMBOLS + 5):
        spec = {**messages.EURUSD_SPEC, "name": f"SYM{n}"}
        assert _send(sidecar, messages.hello(login=1, spec=spec, server=T))["ok"]
    assert len(sidecar.symbols) == MAX_SYMBOLS
    # The oldest were evicted: their EA is told to introduce itself again, and can.
    tick = messages.tick(server=T + 1, bid=1.1, login=1, symbol="SYM0")
    assert _send(sidecar, tick)["error"]["code"] == "UNKNOWN_SYMBOL"
    _send(sidecar, messages.hello(login=1, spec={**messages.EURUSD_SPEC, "name": "SYM0"}, server=T))
    assert _send(sidecar, tick)["type"] == "verdict"
    for n in range(MAX_HEARTBEATS + 5):
        hb = {
            "v": 1,
            "type": "heartbeat",
            "id": f"b{n}",
            "login": 2,
            "symbol": f"S{n}",
            "time": {"server": T, "gmt": T},
        }
        assert _send(sidecar, hb)["ok"]
    assert len(sidecar.heartbeats) == MAX_HEARTBEATS
    assert len(sidecar.health()["eas"]) == MAX_HEARTBEATS
    sidecar.close()
