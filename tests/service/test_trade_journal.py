"""Kelly statistics in the service: built from `trade` messages, kept in memory, reloaded at start.

A real Sidecar on a real SQLite file, fed the documented messages.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sidecar.config import Config
from sidecar.engine.state import TradeStats
from sidecar.service.handler import Sidecar
from sidecar.store import Store
from sidecar.testing import messages

ROWS = messages.eurusd_rows()[:311]  # bar 310 closes with an SMA cross (tests/service/...)
LOGIN = 4242
T_TRADES = int(ROWS[300][0])


def _send(sidecar: Sidecar, msg: dict[str, Any]) -> dict[str, Any]:
    reply, code = sidecar.handle(json.dumps(msg).encode())
    assert code is None, reply
    return json.loads(reply)


def _close(deal: int, position: int, profit: float, t: int) -> dict[str, Any]:
    msg = messages.trade(deal, login=LOGIN, entry="out", profit=profit, time=t)
    msg["position"] = position
    return msg


def _journal(sidecar: Sidecar) -> None:
    # 50 positions, win win win loss loss: p = 0.6, b = 2 and never three losses in a row.
    for i in range(50):
        profit = 200.0 if i % 5 < 3 else -100.0
        _send(sidecar, _close(1000 + i, 500 + i, profit, T_TRADES + i))


def _open_on_bar_310(sidecar: Sidecar) -> dict[str, Any]:
    _send(sidecar, messages.hello(login=LOGIN, bars=ROWS[:310], server=ROWS[309][0] + 3600))
    bar = ROWS[310]
    return _send(
        sidecar,
        messages.tick(
            server=bar[0] + 3600, bid=bar[4], ask=bar[4] + 0.00007, login=LOGIN, bars=[bar]
        ),
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "sidecar.sqlite"


def test_journal_feeds_kelly_and_survives_a_restart(db: Path) -> None:
    sidecar = Sidecar(Config(), Store(db))
    _journal(sidecar)
    stats = sidecar.kernel.trade_stats.stats(LOGIN)
    assert len(stats.results) == 50 and sum(stats.results) == 30 * 200 - 20 * 100
    v = _open_on_bar_310(sidecar)
    assert v["action"] == "open"
    assert any(
        r.startswith("SIZE_RISK risk_pct=2 ") for r in v["reasons"]
    )  # budget before flooring
    assert any(r.startswith("SIZE_KELLY f=0.3333 f_raw=0.4 p=0.6 b=2 n=50") for r in v["reasons"])
    sidecar.store.close()

    again = Sidecar(Config(), Store(db))  # a restart: the same statistics from the store
    assert again.kernel.trade_stats.stats(LOGIN) == stats
    again.store.close()


def test_partial_closes_are_one_result_and_duplicates_count_once(db: Path) -> None:
    sidecar = Sidecar(Config(), Store(db))
    entry = messages.trade(1, login=LOGIN, entry="in", time=T_TRADES)
    entry["position"] = 77
    _send(sidecar, entry)
    assert sidecar.kernel.trade_stats.stats(LOGIN) == TradeStats(())  # an entry is not a result
    _send(sidecar, _close(2, 77, 150.0, T_TRADES + 10))  # the partial close
    ack = _send(sidecar, _close(2, 77, 150.0, T_TRADES + 10))  # resent by the EA
    assert ack["duplicate"] is True
    _send(sidecar, _close(3, 77, -30.0, T_TRADES + 20))  # the rest, at breakeven minus costs
    _send(sidecar, _close(4, 78, -60.0, T_TRADES + 30))
    assert sidecar.kernel.trade_stats.stats(LOGIN).results == (120.0, -60.0)
    sidecar.store.close()
    reloaded = Sidecar(Config(), Store(db))
    assert reloaded.kernel.trade_stats.stats(LOGIN).results == (120.0, -60.0)
    reloaded.store.close()


def _deal(deal: int, position: int, entry: str, profit: float, commission: float, t: int):
    msg = messages.trade(
        deal, login=LOGIN, entry=entry, profit=profit, commission=commission, time=t
    )
    msg["position"] = position
    return msg


def test_entry_commissions_count_in_results_and_survive_a_restart(db: Path) -> None:
    sidecar = Sidecar(Config(), Store(db))
    _send(sidecar, _deal(1, 77, "in", 0.0, -3.5, T_TRADES))
    _send(sidecar, _deal(2, 77, "out", 5.0, -3.5, T_TRADES + 10))  # +5 gross, -2 net
    _send(sidecar, _deal(3, 78, "in", 0.0, -3.5, T_TRADES + 20))  # still open at the restart
    assert sidecar.kernel.trade_stats.stats(LOGIN).results == (-2.0,)
    sidecar.store.close()

    again = Sidecar(Config(), Store(db))
    assert again.kernel.trade_stats.stats(LOGIN).results == (-2.0,)
    _send(again, _deal(4, 78, "out", 10.0, -3.5, T_TRADES + 30))  # 78's entry cost reloaded
    assert again.kernel.trade_stats.stats(LOGIN).results == (-2.0, 3.0)
    again.store.close()


def test_cent_sums_are_exact_in_kelly_as_in_the_streak(db: Path) -> None:
    # -0.10 + 0.30 - 0.20 is -2.8e-17 in binary: a break-even position, not a tiny loss.
    sidecar = Sidecar(Config(), Store(db))
    _send(sidecar, _deal(1, 77, "in", 0.0, -0.10, T_TRADES))
    _send(sidecar, _deal(2, 77, "out", 0.30, -0.20, T_TRADES + 10))
    assert sidecar.kernel.trade_stats.stats(LOGIN).results == (0.0,)
    assert dict(sidecar.states[LOGIN].position_results)[77] == 0.0
    sidecar.store.close()


def test_below_twenty_positions_the_base_risk_applies(db: Path) -> None:
    sidecar = Sidecar(Config(), Store(db))
    for i in range(19):
        _send(sidecar, _close(10 + i, 300 + i, 200.0 if i % 5 < 3 else -100.0, T_TRADES + i))
    v = _open_on_bar_310(sidecar)
    assert any(r.startswith("SIZE_RISK risk_pct=1 ") for r in v["reasons"])
    assert not any(r.startswith("SIZE_KELLY") for r in v["reasons"])
    sidecar.store.close()
