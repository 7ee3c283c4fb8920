"""SQLite store: idempotent trades, state round trip, bounded journal, reopen from disk."""

from __future__ import annotations

import json
import sqlite3
import time
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


HOLD = ["SIGNAL_NONE", "LEVERAGE_CAP regime=normal cap=300"]


def _verdict(action: str, reasons: list[str], n: int = 0) -> bytes:
    return json.dumps({"type": "verdict", "action": action, "reasons": reasons, "n": n}).encode()


def test_journal_is_written_in_the_background_and_bounded(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite", journal_retention=100)
    for i in range(1000):  # every verdict an open: each is a row of its own
        reasons = [f"SIGNAL_SMA_CROSS side=buy n={i}"]
        store.journal(
            1,
            "EURUSD" if i % 2 else "GBPUSD",
            i,
            f"t-{i}",
            "open",
            "active",
            _verdict("open", reasons, i),
            reasons,
        )
    rows = store.decisions(limit=1000)  # flushes the writer first
    assert len(rows) == 100  # every commit prunes back to the retention
    assert rows[0]["request_id"] == "t-999" and rows[0]["verdict"]["n"] == 999
    assert all(r["symbol"] == "EURUSD" for r in store.decisions("EURUSD", limit=5))
    store.close()


def test_journal_keeps_every_row_of_a_large_batch_in_order(tmp_path: Path) -> None:
    # 1234 rows reach the writer in one batch: several multi-row INSERTs and a partial last one.
    store = Store(tmp_path / "s.sqlite", journal_retention=10_000)
    for i in range(1234):
        store.journal(7, "EURUSD", 1000 + i, f"t-{i}", "close", "active", b'{"n":%d}' % i)
    rows = store.decisions(limit=5000)
    assert len(rows) == 1234
    assert [r["request_id"] for r in rows] == [f"t-{i}" for i in reversed(range(1234))]
    assert rows[-1] == {**rows[-1], "login": 7, "gmt": 1000, "verdict": {"n": 0}, "count": 1}
    store.close()


def test_holds_collapse_into_runs_while_their_reason_codes_stay_the_same(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    gmt = 1_700_000_000
    for i in range(5000):  # many batches: the run is inserted once, then updated
        reasons = [f"SIGNAL_NONE votes=macd:+1 adx={i % 20}<25", *HOLD[1:]]
        store.journal(1, "EURUSD", gmt + i, f"h-{i}", "hold", "active", _verdict("hold", reasons))
        if i % 1000 == 0:
            time.sleep(0.06)
    rows = store.decisions(limit=10)
    assert len(rows) == 1
    run = rows[0]
    assert (run["kind"], run["count"], run["gmt"], run["last_gmt"]) == (
        "hold",
        5000,
        gmt,
        gmt + 4999,
    )
    assert run["request_id"] == "h-0" and run["last_request_id"] == "h-4999"
    assert run["codes"] == ["SIGNAL_NONE", "LEVERAGE_CAP"] and run["regime"] == "normal"
    assert run["verdict"]["reasons"][0].endswith("adx=0<25")
    assert run["last_verdict"]["reasons"][0].endswith("adx=19<25")
    # Another symbol runs on its own; different codes start a new run; an open ends it.
    store.journal(1, "GBPUSD", gmt + 5000, "g", "hold", "active", _verdict("hold", HOLD))
    warm = ["DATA_WARMUP bars=10 need=50"]
    store.journal(1, "EURUSD", gmt + 5001, "w", "hold", "active", _verdict("hold", warm))
    opened = ["SIGNAL_SMA_CROSS side=buy", "SIZE_RISK risk_pct=1"]
    store.journal(1, "EURUSD", gmt + 5002, "o", "open", "active", _verdict("open", opened))
    store.journal(1, "EURUSD", gmt + 5003, "w2", "hold", "active", _verdict("hold", warm))
    rows = store.decisions(limit=10)
    assert [(r["symbol"], r["kind"], r["count"]) for r in reversed(rows)] == [
        ("EURUSD", "hold", 5000),
        ("GBPUSD", "hold", 1),
        ("EURUSD", "hold", 1),
        ("EURUSD", "verdict", 1),
        ("EURUSD", "hold", 1),
    ]
    store.close()


def test_refusals_locks_and_changes_of_mode_and_regime(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    store = Store(path)
    signal_a = "SIGNAL_SMA_CROSS side=buy votes=sma:+1"
    signal_b = "SIGNAL_SMA_CROSS side=sell votes=sma:-1"
    cap = "LEVERAGE_CAP regime=normal cap=300"

    def refused(sig: str) -> list[str]:
        return ["RISK_COOLDOWN losses=3", sig, cap]

    locked = ["RISK_DAILY_LOSS pnl=-300", "SIGNAL_NONE", cap]
    halted = ["MODE_HALTED drawdown_pct=16", "SIGNAL_NONE", "LEVERAGE_CAP regime=defensive cap=100"]
    seq = [
        ("active", refused(signal_a)),
        ("active", refused(signal_a)),
        ("active", refused(signal_b)),  # another signal refused: a refusal of its own
        ("active", locked),
        ("active", locked),
        ("halted", halted),
        ("halted", halted),
    ]
    for i, (mode, reasons) in enumerate(seq):
        store.journal(9, "EURUSD", 1000 + i, f"t-{i}", "hold", mode, _verdict("hold", reasons))
    rows = store.decisions(limit=20)
    assert [(r["kind"], r["count"], r["detail"]) for r in reversed(rows)] == [
        ("refusal", 2, None),
        ("refusal", 1, None),
        ("lock", 2, None),
        ("mode", 1, {"from": "active", "to": "halted"}),
        ("regime", 1, {"from": "normal", "to": "defensive"}),
        ("lock", 2, None),
    ]
    assert [r["kind"] for r in store.decisions(reason="RISK_COOLDOWN", limit=9)] == ["refusal"] * 2
    assert len(store.decisions(kind="lock", login=9, since=1003, until=1004, limit=9)) == 1
    store.close()
    # After a restart the writer knows the last mode and regime from the file.
    again = Store(path)
    again.journal(9, "EURUSD", 2000, "x", "hold", "active", _verdict("hold", HOLD))
    rows = again.decisions(limit=3)
    assert [(r["kind"], r["detail"]) for r in rows] == [
        ("hold", None),
        ("regime", {"from": "defensive", "to": "normal"}),
        ("mode", {"from": "halted", "to": "active"}),
    ]
    again.close()


def test_journal_keeps_the_last_retention_days(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite", retention_days=30)
    now = int(time.time())
    for i, age_days in enumerate((45, 31, 29, 1)):
        gmt = now - age_days * 86400
        store.journal(1, "EURUSD", gmt, f"t-{i}", "open", "active", _verdict("open", [], i))
        store.decisions(limit=1)  # one batch each
    store.journal(1, "EURUSD", now, "t-now", "open", "active", _verdict("open", []))
    assert [r["request_id"] for r in store.decisions(limit=10)] == ["t-now", "t-3", "t-2"]
    store.close()


def test_a_schema_1_journal_is_upgraded_in_place(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    conn.executescript(
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
        "INSERT INTO meta VALUES ('schema_version', '1');"
        "CREATE TABLE decisions (id INTEGER PRIMARY KEY AUTOINCREMENT, login INTEGER NOT NULL, "
        "symbol TEXT NOT NULL, gmt INTEGER NOT NULL, request_id TEXT, action TEXT NOT NULL, "
        "mode TEXT NOT NULL, verdict TEXT NOT NULL);"
        "INSERT INTO decisions (login, symbol, gmt, request_id, action, mode, verdict) "
        "VALUES (3, 'EURUSD', 1000, 'old', 'hold', 'active', '{\"reasons\": []}');"
    )
    conn.commit()
    conn.close()
    store = Store(path)
    old = store.decisions(limit=5)
    assert old == [{**old[0], "kind": "verdict", "count": 1, "last_gmt": 1000, "codes": []}]
    store.journal(3, "EURUSD", 1001, "new", "hold", "active", _verdict("hold", HOLD))
    assert [r["id"] for r in store.decisions(limit=5)] == [2, 1]
    store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == "2"
    conn.close()


def test_database_is_in_wal_mode_with_a_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    Store(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == "2"
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


def test_writes_refused_by_a_full_database_fail_cleanly_and_work_again(tmp_path: Path) -> None:
    """A full disk (here SQLite's own page limit, a real SQLITE_FULL) makes SQLite end the
    transaction by itself: the error must be the real one (not ROLLBACK's "no transaction is
    active") and the connection must not be left inside a transaction, or every later write
    would fail long after the disk has room again."""
    store = Store(tmp_path / "s.sqlite")
    pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
    store._conn.execute(f"PRAGMA max_page_count = {pages}")
    events = [
        {
            "id": f"e{i}",
            "time_gmt": 1000 + i,
            "currency": "USD",
            "importance": "high",
            "name": "x" * 200,
            "actual": None,
            "forecast": None,
            "previous": None,
        }
        for i in range(200)
    ]
    recorded: list[int] = []
    failures: list[str] = []
    for deal in range(1, 500):
        try:
            if store.record_trade({**_trade(deal), "comment": "c" * 200}, None):
                recorded.append(deal)
        except sqlite3.Error as exc:
            failures.append(str(exc))
            break
    try:
        store.upsert_calendar("mt5", events, 1)
    except sqlite3.Error as exc:
        failures.append(str(exc))
    assert len(failures) == 2, failures
    assert all("full" in f for f in failures), failures
    assert not store._conn.in_transaction

    store._conn.execute("PRAGMA max_page_count = 1073741823")  # room again
    store.probe_write()
    assert store.record_trade(_trade(9999), None) is True
    assert store.upsert_calendar("mt5", events, 2) == 200
    deals = {t["deal"] for t in store.trades(login=1, limit=1000)}
    assert deals == {*recorded, 9999}
    store.close()
