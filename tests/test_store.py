"""SQLite store: idempotent trades, state round trip, bounded journal, reopen from disk."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from sidecar.engine.state import AccountState
from sidecar.store import Store


def _trade(
    deal: int,
    login: int = 1,
    entry: str = "out",
    profit: float = -1.0,
    time: int = 100,
    position: int = 0,
) -> dict:
    return {
        "login": login,
        "deal": deal,
        "order_id": 0,
        "position": position,
        "symbol": "EURUSD",
        "side": "buy",
        "entry": entry,
        "volume": 0.1,
        "price": 1.1,
        "profit": profit,
        "commission": 0.0,
        "swap": 0.0,
        "time": time,
        "comment": "",
        "received_gmt": 0,
    }


def test_trades_are_idempotent_by_login_and_deal(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    assert store.insert_trade(_trade(1)) is True
    assert store.insert_trade(_trade(1)) is False
    assert store.insert_trade(_trade(1, login=2)) is True  # another account's deal 1
    assert [t["deal"] for t in store.trades(login=1)] == [1]
    store.close()


def test_position_deals_are_the_newest_closed_positions_and_the_open_entries(
    tmp_path: Path,
) -> None:
    store = Store(tmp_path / "s.sqlite")
    # Positions 1..5 opened then closed in turn (deal 10p opens p, 10p+1 closes it); position 3
    # also has a partial close; position 6 is still open; deals 90 and 91 have no position id
    # (each its own position, 90 an entry).
    for p in range(1, 7):
        store.insert_trade(_trade(10 * p, entry="in", time=100 * p, position=p))
        if p < 6:
            store.insert_trade(_trade(10 * p + 1, time=100 * p + 50, position=p))
    store.insert_trade(_trade(32, time=360, position=3))
    store.insert_trade(_trade(90, entry="in", time=150))
    store.insert_trade(_trade(91, time=555))
    deals = store.position_deals(1, closed=4, opened=1)
    # the newest four closed: 91 (t=555), 5, 4, 3; the newest open entry: 60 (90 is older)
    assert [d["deal"] for d in deals] == [30, 31, 32, 40, 41, 50, 51, 91, 60]
    assert set(deals[0]) == set(_trade(0))  # the stored row, nothing added
    opened = store.position_deals(1, closed=0, opened=5)
    assert [d["deal"] for d in opened] == [90, 60]
    assert store.position_deals(2, closed=4, opened=5) == []  # another account
    store.close()


def test_position_deals_reads_a_bounded_window_of_the_newest_deals(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    store.insert_trade(_trade(1, entry="in", time=1, position=1))
    for p in range(2, 22):  # 20 positions opened and closed while position 1 stays open
        store.insert_trade(_trade(10 * p, entry="in", time=10 * p, position=p))
        store.insert_trade(_trade(10 * p + 1, time=10 * p + 5, position=p))
    store.insert_trade(_trade(999, time=1000, position=1))
    # closed=2 reads the newest 5 x 2 deals: position 1's entry is older than that window.
    deals = store.position_deals(1, closed=2, opened=0)
    assert [d["deal"] for d in deals] == [210, 211, 999]
    store.close()


def test_state_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    state = AccountState(
        login=7,
        day_key=20000,
        day_start_equity=1000.0,
        hwm=1100.0,
        mode="halted",
        mode_reason="drawdown 15%",
        daily_lock_day=20000,
        loss_streak=3,
        cooldown_until=123,
        recent_signals=(("abc", 5), ("def", 6)),
        reduced_tickets=(501, 502),
        last_gmt=9,
        position_results=((501, -12.5), (-90017, 3.0)),
        streak_positions=(501,),
    )
    store = Store(path)
    store.save_state(state)
    store.close()
    again = Store(path)
    assert again.load_states() == {7: state}
    again.close()


def test_journal_is_written_in_the_background_and_bounded(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite", journal_retention=100)
    for i in range(1000):
        store.journal(
            1, "EURUSD" if i % 2 else "GBPUSD", i, f"t-{i}", "hold", "active", b'{"n":%d}' % i
        )
    rows = store.decisions(limit=1000)  # flushes the writer first
    assert len(rows) == 100  # every commit prunes back to the retention
    assert rows[0]["request_id"] == "t-999" and rows[0]["verdict"] == {"n": 999}
    assert all(r["symbol"] == "EURUSD" for r in store.decisions("EURUSD", limit=5))
    store.close()


def test_journal_keeps_every_row_of_a_large_batch_in_order(tmp_path: Path) -> None:
    # 1234 rows reach the writer in one batch: several multi-row INSERTs and a partial last one.
    store = Store(tmp_path / "s.sqlite", journal_retention=10_000)
    for i in range(1234):
        store.journal(7, "EURUSD", 1000 + i, f"t-{i}", "hold", "active", b'{"n":%d}' % i)
    rows = store.decisions(limit=5000)
    assert len(rows) == 1234
    assert [r["request_id"] for r in rows] == [f"t-{i}" for i in reversed(range(1234))]
    assert rows[-1] == {**rows[-1], "login": 7, "gmt": 1000, "verdict": {"n": 0}}
    store.close()


def test_database_is_in_wal_mode_with_a_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    Store(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == "1"
    conn.close()


def test_calendar_upsert_deduplicates_by_source_and_id(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    ev = {
        "id": "840030016",
        "time_gmt": 1000,
        "currency": "USD",
        "importance": "high",
        "name": "NFP",
        "actual": None,
        "forecast": 200.0,
        "previous": 227.0,
    }
    store.upsert_calendar("mt5", [ev], 1)
    store.upsert_calendar("mt5", [{**ev, "actual": 250.0}], 2)
    rows = store.calendar_events(0, 2000)
    assert len(rows) == 1 and rows[0]["actual"] == 250.0
    store.close()


def test_a_written_behind_state_never_overwrites_a_newer_synchronous_one(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    store = Store(path)
    rising = AccountState(login=1, hwm=10_100.0, equity=10_100.0)
    locked = AccountState(login=1, hwm=10_100.0, equity=9_700.0, daily_lock_day=5, day_key=5)
    store.save_state_soon(rising)  # queued for the writer thread
    store.save_state(locked)  # committed now, later in sequence
    store.decisions(limit=1)  # flush the writer
    store.close()
    again = Store(path)
    assert again.load_states()[1] == locked
    again.save_state_soon(AccountState(login=1, hwm=10_200.0, equity=10_200.0))
    again.decisions(limit=1)
    assert again.load_states()[1].hwm == 10_200.0  # sequence continues after a restart
    again.close()


def test_a_deal_and_the_state_counting_it_commit_together(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    streak = AccountState(login=1, loss_streak=3, cooldown_until=5000)
    # Make the state write fail inside the transaction (as a crash or a locked disk would).
    store._conn.execute(
        "CREATE TEMP TRIGGER refuse BEFORE INSERT ON account_state "
        "BEGIN SELECT RAISE(ABORT, 'disk trouble'); END"
    )
    try:
        store.record_trade(_trade(7), streak)
    except sqlite3.DatabaseError as exc:
        assert "disk trouble" in str(exc)
    else:
        raise AssertionError("the failing state write must fail the deal too")
    assert store.trades(login=1) == []  # the deal was rolled back with it
    store._conn.execute("DROP TRIGGER refuse")
    assert store.record_trade(_trade(7), streak) is True  # the EA's resend is not a duplicate
    assert store.load_states()[1].loss_streak == 3
    assert store.record_trade(_trade(7), streak) is False
    store.close()
