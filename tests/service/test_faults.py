"""Faults a trader's VPS really has, against a real `sidecar serve` process.

- The database cannot be written (the file made read-only while the sidecar runs; the disk
  full, on a small tmpfs): entries are blocked with `STORE_WRITE_FAILED` while closes,
  reductions and management parameters are still answered; a deal that cannot be written is
  not acknowledged (the EA keeps it queued and sends it again); `/health` and the log say why;
  everything recovers by itself when the fault clears, and nothing acknowledged is lost.
- The request clock jumping forward and back (a wrong VPS or broker clock, DST): locks and
  broker days behave as the README documents.
- An EA reconnecting with a new `hello` mid-session: the hello carries no positions, so no
  entry is decided on it; the next tick's reported positions, the persisted signal ids and the
  account's locks decide, as before the reconnect.

The file faults need root (the immutable flag, a tmpfs mount); they are skipped without it.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from sidecar.engine import reasons as R
from sidecar.testing import messages as M
from sidecar.testing.client import ZmqClient
from sidecar.testing.fake_eodhd import FakeEodhd
from sidecar.testing.server import SidecarProcess
from sidecar.testing.waiting import wait_for

LOGIN = 5150001
DAY_START = 1734480000  # 2024-12-18 00:00 server time: a broker day starts (offset 0)
T0 = DAY_START + 36_000  # 10:00 server time
FAULT_CONFIG = "[risk]\ndaily_loss_pct = 50.0\nreduce_on_reducing = true\n"


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _codes(verdict: dict[str, Any]) -> list[str]:
    return [r.split(" ", 1)[0] for r in verdict["reasons"]]


def _crossing_bars(t_now: int, start: float = 1.1, step: float = 0.0001) -> list[list[float]]:
    """150 hourly bars drifting down, the newest (closed at the start of t_now's hour) jumping
    up: sma_cross sees a buy on every tick of the current hour."""
    last_open = t_now // 3600 * 3600 - 3600
    rows, close = [], start
    for i in range(150):
        t = last_open - (149 - i) * 3600
        o = close
        close = o + 0.03 if i == 149 else o - step
        rows.append([t, o, max(o, close) + step / 2, min(o, close) - step / 2, close, 100, 0])
    return rows


BID = 1.1155  # just above the newest close of _crossing_bars
ASK = 1.1156


def _get(proc: SidecarProcess, path: str) -> Any:
    http = proc.http()
    try:
        status, body = http.get(path)
    finally:
        http.close()
    assert status in (200, 503), (status, body)
    return body


def _db_deals(db: Path, login: int = LOGIN) -> dict[int, int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT deal, COUNT(*) FROM trades WHERE login = ? GROUP BY deal", (login,)
        ).fetchall()
    finally:
        conn.close()
    return dict(rows)


def _db_state(db: Path, login: int = LOGIN) -> dict[str, Any]:
    import json

    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        (row,) = conn.execute("SELECT state FROM account_state WHERE login = ?", (login,))
    finally:
        conn.close()
    return dict(json.loads(row[0]))


# ------------------------------------------------------------ the database cannot be written


def _chattr(flag: str, *paths: Path) -> None:
    subprocess.run(["chattr", flag, *map(str, paths)], check=True, capture_output=True)


@pytest.fixture
def immutable(tmp_path: Path) -> Callable[..., None]:
    """chattr +i / -i: even root's open file descriptors cannot write an immutable file."""
    if not _is_root() or shutil.which("chattr") is None:
        pytest.skip("making a file read-only under a running process needs root and chattr")
    probe = tmp_path / "probe"
    probe.write_bytes(b"x")
    try:
        _chattr("+i", probe)
    except subprocess.CalledProcessError:
        pytest.skip(f"the filesystem of {tmp_path} has no immutable flag")
    _chattr("-i", probe)
    return _chattr


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs: a disk that can really be filled."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if not _is_root():
        pytest.skip("mounting a size-limited tmpfs needs root")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "tmpfs", str(mnt)],
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _fill(folder: Path) -> Path:
    """Write a ballast file until the filesystem refuses another byte."""
    ballast = folder / "ballast"
    fd = os.open(ballast, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (1 << 20, 1 << 12, 1):
            chunk = b"\0" * size
            while True:
                try:
                    os.write(fd, chunk)
                except OSError as exc:
                    assert exc.errno == errno.ENOSPC, exc
                    break
    finally:
        os.close(fd)
    return ballast


def _fault_round(
    proc: SidecarProcess,
    db: Path,
    break_db: Callable[[], None],
    mend_db: Callable[[], None],
    error: str,
) -> None:
    z = proc.zmq()
    try:
        position = M.position(501, volume=0.1, price_open=1.1150)

        def tick(n: int, equity: float = 10000.0, positions: Any = ()) -> dict[str, Any]:
            return z.send(
                M.tick(
                    T0 + n,
                    BID,
                    ASK,
                    login=LOGIN,
                    equity=equity,
                    balance=10000.0,
                    positions=list(positions),
                    msg_id=f"t-{n}",
                )
            )

        def deal(n: int) -> dict[str, Any]:
            return z.send(M.trade(n, login=LOGIN, entry="out", profit=1.0, time=T0 + n))

        assert z.send(M.hello(login=LOGIN, bars=_crossing_bars(T0), server=T0))["ok"]
        # The signal is there, the position on the symbol holds it back (nothing spent).
        v = tick(1, positions=[position])
        assert v["action"] == "hold" and R.RISK_SYMBOL_OPEN in _codes(v), v
        acked = [deal(101)]
        assert acked[0]["type"] == "ack" and not acked[0]["duplicate"]
        acked_deals = [101]

        break_db()

        # Deals go on being acknowledged while they are written; the first that cannot be is
        # refused (a full disk may still take what fits).
        refused = None
        for n in range(102, 2102):
            reply = deal(n)
            if reply["type"] == "ack":
                assert not reply["duplicate"]
                acked_deals.append(n)
                continue
            assert reply["type"] == "error" and reply["id"] == f"d-{n}", reply
            assert reply["error"]["code"] == "STORE_WRITE_FAILED", reply
            assert f"deal {n}: not recorded" in reply["error"]["message"]
            assert error in reply["error"]["message"], reply
            refused = n
            break
        assert refused is not None, "the fault never made a write fail"

        # An entry signal and no position: held, the store's reason first, the signal named.
        v = tick(2)
        assert v["type"] == "verdict" and v["action"] == "hold" and v.get("open") is None, v
        assert v["reasons"][0] == f'{R.STORE_WRITE_FAILED} error="{error}"', v["reasons"]
        assert any(r.startswith("SIGNAL_SMA_CROSS side=buy") for r in v["reasons"])
        # The same deal again: still not acknowledged while the fault lasts.
        again = deal(refused)
        assert again["type"] == "error" and again["error"]["code"] == "STORE_WRITE_FAILED"
        # Over HTTP, the same refusal is a 503 (retryable), never a 500.
        http = proc.http()
        try:
            msg = M.trade(refused, login=LOGIN, entry="out", profit=1.0, time=T0 + refused)
            status, body = http.raw("trade", json.dumps(msg).encode())
        finally:
            http.close()
        assert status == 503, (status, body)
        assert json.loads(body)["error"]["code"] == "STORE_WRITE_FAILED"
        # Management goes on: a 13% drawdown (reducing) cuts the open position as usual, and
        # the management parameters come with every verdict.
        v = tick(3, equity=8700.0, positions=[position])
        assert v["mode"] == "reducing" and v["action"] == "reduce", v
        assert v["close"] == [{"ticket": 501, "volume": 0.05}]
        assert v["reasons"][0].startswith(R.STORE_WRITE_FAILED), v["reasons"]
        assert v["manage"]["trail_distance"] > 0

        health = _get(proc, "/health")
        assert health["status"] == "degraded", health
        assert health["database"]["ok"] is True and health["database"]["writable"] is False
        assert health["database"]["unsaved_accounts"] == [LOGIN]
        assert "writes failing" in health["problems"][0] and error in health["problems"][0]
        assert "new entries blocked" in health["problems"][0]
        assert '"event":"store.write_failed"' in proc.log()
        assert '"event":"trade.not_recorded"' in proc.log()

        mend_db()

        # Nobody restarts anything: the sidecar finds out by itself.
        wait_for(
            "the database to take writes again",
            lambda: _get(proc, "/health")["database"]["writable"],
        )
        wait_for("a healthy sidecar", lambda: _get(proc, "/health")["status"] == "ok")
        assert '"event":"store.recovered"' in proc.log()
        # The reducing mode decided during the fault reached the file.
        assert _db_state(db)["mode"] == "reducing"
        # The refused deal, sent again, is recorded now (not a duplicate: it never was).
        reply = deal(refused)
        assert reply["type"] == "ack" and not reply["duplicate"], reply
        acked_deals.append(refused)
        # And the signal held back during the fault is given now (at the reducing mode's risk).
        v = tick(4, equity=8700.0)
        assert v["action"] == "open" and v["open"]["side"] == "buy", v
        assert R.MODE_REDUCING in _codes(v)
        assert R.STORE_WRITE_FAILED not in _codes(v)
    finally:
        z.close()
    # Every acknowledged deal is on file exactly once, and nothing that was refused meanwhile.
    on_disk = _db_deals(db)
    assert sorted(on_disk) == sorted(acked_deals)
    assert set(on_disk.values()) == {1}


def test_read_only_database_blocks_entries_and_recovers(
    tmp_path: Path, immutable: Callable[..., None]
) -> None:
    db = tmp_path / "ro" / "sidecar.sqlite"
    db.parent.mkdir()
    cfg = tmp_path / "faults.toml"
    cfg.write_text(FAULT_CONFIG)
    proc = SidecarProcess(db, config=cfg).start()
    files = [db, Path(f"{db}-wal")]
    try:
        _fault_round(
            proc,
            db,
            lambda: immutable("+i", *files),
            lambda: immutable("-i", *files),
            "disk I/O error",
        )
    finally:
        subprocess.run(["chattr", "-i", *map(str, files)], capture_output=True)
        proc.kill()


def test_full_disk_blocks_entries_and_recovers(tmp_path: Path, small_fs: Path) -> None:
    db = small_fs / "sidecar.sqlite"
    cfg = tmp_path / "faults.toml"
    cfg.write_text(FAULT_CONFIG)
    proc = SidecarProcess(db, config=cfg, log_path=tmp_path / "sidecar.log").start()
    ballast: list[Path] = []
    try:
        _fault_round(
            proc,
            db,
            lambda: ballast.append(_fill(small_fs)),
            lambda: ballast.pop().unlink(),
            "database or disk is full",
        )
    finally:
        proc.kill()


# ------------------------------------------------------------ EODHD failing


def test_eodhd_5xx_and_garbage_storm_never_delays_a_verdict_and_heals(tmp_path: Path) -> None:
    """tests/service/test_feed_storm.py storms 429s and timeouts; here every EODHD endpoint
    answers 500, 502, 503 and unparseable bodies for a while: every tick is still answered,
    /health names the source degraded, and it is `ok` again once EODHD is."""
    now = int(time.time())
    with FakeEodhd(now=datetime.fromtimestamp(now, UTC), events=[], news=[], sentiments={}) as fake:
        for status in (500, 502, 503):
            fake.fail("/api", status, times=None)
        fake.malformed("/api", times=None)
        cfg = tmp_path / "storm.toml"
        cfg.write_text(
            "[feeds]\ncalendar_interval_seconds = 1.0\nnews_interval_seconds = 1.0\n"
            "sentiments_interval_seconds = 1.0\nrequest_timeout_seconds = 0.5\nmax_retries = 1\n"
        )
        env = {"EODHD_API_TOKEN": fake.token, "EODHD_BASE_URL": fake.base_url}
        with SidecarProcess(tmp_path / "storm.sqlite", config=cfg, env=env) as proc:
            z = proc.zmq()
            try:
                assert z.send(M.hello(login=3, server=now))["ok"]
                replies = []
                deadline = time.monotonic() + 4.0
                while time.monotonic() < deadline or len(replies) < 300:
                    n = len(replies)
                    replies.append(z.send(M.tick(now + n, 1.1, login=3, msg_id=f"t-{n}")))
                assert all(r["type"] == "verdict" for r in replies)
                assert [r["id"] for r in replies] == [f"t-{n}" for n in range(len(replies))]
                assert any(r.status >= 500 for r in fake.requests)
                eodhd = _get(proc, "/health")["sources"]["eodhd"]
                assert eodhd["status"] == "degraded", eodhd
                fake.clear_faults()
                wait_for(
                    "EODHD back in /health",
                    lambda: _get(proc, "/health")["sources"]["eodhd"]["status"] == "ok",
                    timeout=30.0,
                )
                assert z.send(M.tick(now + 10_000, 1.1, login=3, msg_id="after"))["id"] == "after"
            finally:
                z.close()


# ------------------------------------------------------------ clocks


def _lock_day(z: ZmqClient, server: int, gmt: int, equity: tuple[float, float]) -> None:
    """Two ticks: the first anchors (or keeps) the day, the second loses more than 3%."""
    for k, e in enumerate(equity):
        v = z.send(M.tick(server + k, BID, ASK, login=LOGIN, equity=e, gmt=gmt + k))
        assert v["type"] == "verdict", v
    assert R.RISK_DAILY_LOSS in _codes(v), v


def _anchors(proc: SidecarProcess) -> dict[str, Any]:
    (account,) = [a for a in _get(proc, "/v1/state")["accounts"] if a["login"] == LOGIN]
    return dict(account["anchors"])


def test_clock_jumps_keep_locks_and_broker_days_as_documented(tmp_path: Path) -> None:
    """README, Clocks: a tick whose clock jumps back is answered, flagged DATA_CLOCK_BACKWARDS
    and moves no anchor; a new broker day takes effect on its second tick, so one tick with a
    wrong future clock cannot lift a daily-loss lock; a GMT more than 14 h from the server
    clock is refused. A GMT+2 broker here (server = gmt + 2 h)."""
    off = 7200
    proc = SidecarProcess(tmp_path / "clock.sqlite").start()
    z = proc.zmq()
    try:

        def tick(server: int, gmt: int, equity: float, n: str) -> dict[str, Any]:
            return z.send(M.tick(server, BID, ASK, login=LOGIN, equity=equity, gmt=gmt, msg_id=n))

        assert z.send(M.hello(login=LOGIN, server=T0, gmt=T0 - off))["ok"]
        _lock_day(z, T0, T0 - off, (10000.0, 9600.0))  # 4% down on day D: locked
        day_d = {"broker_day": DAY_START // 86400, "day_start_equity": 10000.0}
        assert _anchors(proc).items() >= day_d.items()

        # Forward: both clocks a day ahead for one tick (a VPS clock gone wrong). Answered,
        # still locked, the day not moved.
        v = tick(T0 + 86400, T0 - off + 86400, 9600.0, "fwd")
        assert v["action"] == "hold" and R.RISK_DAILY_LOSS in _codes(v), v
        assert _anchors(proc).items() >= day_d.items()
        # Back to the right time: flagged, still locked, anchors unchanged, the jump forgotten.
        v = tick(T0 + 120, T0 - off + 120, 9600.0, "back")
        assert R.DATA_CLOCK_BACKWARDS in _codes(v) and R.RISK_DAILY_LOSS in _codes(v), v
        assert _anchors(proc).items() >= day_d.items()
        # The broker's clock alone a day ahead (GMT right): refused outright, nothing moves.
        v = tick(T0 + 86400, T0 - off + 180, 9600.0, "broker-ahead")
        assert v["type"] == "error" and v["error"]["code"] == "BAD_REQUEST", v
        assert "time.gmt" in v["error"]["message"]
        # DST: the broker's offset becomes GMT+3 mid-day (server jumps an hour, GMT does not).
        v = tick(T0 + 3600 + 240, T0 - off + 240, 9600.0, "dst")
        assert R.RISK_DAILY_LOSS in _codes(v) and R.DATA_CLOCK_BACKWARDS not in _codes(v), v
        assert _anchors(proc).items() >= day_d.items()

        # The real next day (server 00:30 on D+1): the lock lifts on its second tick, and the
        # day starts from the first tick's equity.
        d1 = DAY_START + 86400 + 1800
        v = tick(d1, d1 - off, 9700.0, "d1-1")
        assert R.RISK_DAILY_LOSS in _codes(v), v  # the first tick of a day only announces it
        v = tick(d1 + 60, d1 - off + 60, 9700.0, "d1-2")
        assert R.RISK_DAILY_LOSS not in _codes(v), v
        day_d1 = {"broker_day": DAY_START // 86400 + 1, "day_start_equity": 9700.0}
        assert _anchors(proc).items() >= day_d1.items()
        # Lose 4% of day D+1, then the clocks jump back a whole day: flagged, the day stays
        # D+1, the lock holds even on a tick showing the old day's equity.
        _lock_day(z, d1 + 120, d1 - off + 120, (9700.0, 9300.0))
        v = tick(T0 + 600, T0 - off + 600, 10000.0, "day-back")
        assert R.DATA_CLOCK_BACKWARDS in _codes(v) and R.RISK_DAILY_LOSS in _codes(v), v
        assert _anchors(proc).items() >= day_d1.items()
        # DST back across midnight: the server clock returns from 00:40 of D+1 to 23:40 of D
        # while GMT goes on. The broker day never goes back; the lock holds.
        back = d1 + 600
        v = tick(back - 3600, back - off, 9300.0, "dst-back")
        assert R.DATA_CLOCK_BACKWARDS not in _codes(v) and R.RISK_DAILY_LOSS in _codes(v), v
        assert _anchors(proc).items() >= day_d1.items()
    finally:
        z.close()
        proc.stop()
    log = proc.log()
    assert '"event":"account.clock_backwards"' in log
    assert '"event":"account.clock_jump_ignored"' in log


def test_one_tick_with_a_wrong_future_clock_does_not_lift_a_loss_cooldown(tmp_path: Path) -> None:
    proc = SidecarProcess(tmp_path / "cooldown.sqlite").start()
    z = proc.zmq()
    try:
        assert z.send(M.hello(login=LOGIN, bars=_crossing_bars(T0), server=T0))["ok"]
        held = [M.position(9)]
        v = z.send(M.tick(T0, BID, ASK, login=LOGIN, positions=held))
        assert R.RISK_SYMBOL_OPEN in _codes(v), v
        for n in range(3):  # three losing positions: a 60-minute cooldown
            loss = M.trade(100 + n, login=LOGIN, entry="out", profit=-10.0, time=T0 + n)
            assert z.send({**loss, "position": 500 + n})["type"] == "ack"
        v = z.send(M.tick(T0 + 10, BID, ASK, login=LOGIN))
        assert v["action"] == "hold" and R.RISK_COOLDOWN in _codes(v), v
        # One tick two hours ahead (both clocks), then the right time again: still cooling.
        v = z.send(M.tick(T0 + 7200, BID, ASK, login=LOGIN))
        assert v["action"] == "hold" and R.RISK_COOLDOWN in _codes(v), v
        v = z.send(M.tick(T0 + 20, BID, ASK, login=LOGIN))
        assert v["action"] == "hold" and R.RISK_COOLDOWN in _codes(v), v
        # The real end, confirmed by its second tick, lifts it.
        end = T0 + 2 + 3600
        v = z.send(M.tick(end, BID, ASK, login=LOGIN))
        assert R.RISK_COOLDOWN in _codes(v), v
        v = z.send(M.tick(end + 1, BID, ASK, login=LOGIN))
        assert R.RISK_COOLDOWN not in _codes(v), v
    finally:
        z.close()
        proc.stop()


# ------------------------------------------------------------ hello again mid-session


def test_a_reconnecting_ea_is_judged_on_the_positions_it_reports(tmp_path: Path) -> None:
    """The EA sends `hello` again after a reconnect (terminal restart, network, the sidecar
    restarted). A hello carries no positions and gets only an ack, never an entry; the first
    tick after it reports the EA's positions, and those, the persisted signal ids and the
    account's locks decide whether anything opens."""
    proc = SidecarProcess(tmp_path / "hello.sqlite").start()
    z = proc.zmq()
    try:
        bars = _crossing_bars(T0)
        assert z.send(M.hello(login=LOGIN, bars=bars, server=T0))["ok"]
        v = z.send(M.tick(T0 + 1, BID, ASK, login=LOGIN, msg_id="t-1"))
        assert v["action"] == "open", v
        sid = v["open"]["signal_id"]
        ack = z.send(
            M.trade(9001, login=LOGIN, entry="in", time=T0 + 2, comment=f"sc:{sid}", position=777)
        )
        assert ack["type"] == "ack" and not ack["duplicate"]
        anchors = _anchors(proc)

        # The EA reconnects on a fresh socket and introduces itself again, same chart.
        z.close()
        z = proc.zmq()
        reply = z.send(M.hello(login=LOGIN, bars=bars, server=T0 + 30, msg_id="h-2"))
        assert reply["type"] == "ack" and reply["id"] == "h-2", reply
        assert _anchors(proc) == anchors  # a hello moves nothing of the account

        # It reports the position it opened: one per symbol holds the signal back.
        held = M.position(777, price_open=ASK, comment=f"sc:{sid}")
        v = z.send(M.tick(T0 + 31, BID, ASK, login=LOGIN, positions=[held], msg_id="t-2"))
        assert v["action"] == "hold" and R.RISK_SYMBOL_OPEN in _codes(v), v
        # It reports positions on symbols this sidecar never heard of (other charts not back
        # yet): they count against max_positions (3) all the same.
        others = [M.position(800 + k, symbol=s) for k, s in enumerate(("GBPUSD", "AUDUSD"))]
        v = z.send(M.tick(T0 + 32, BID, ASK, login=LOGIN, positions=[held, *others], msg_id="t-3"))
        assert R.RISK_MAX_POSITIONS in _codes(v), v
        # The position closed while the EA was away: no position reported, but the signal was
        # given and is remembered (persisted with its verdict), so it is not given twice.
        v = z.send(M.tick(T0 + 33, BID, ASK, login=LOGIN, msg_id="t-4"))
        assert v["action"] == "hold" and R.RISK_DUPLICATE_SIGNAL in _codes(v), v

        # The same after a restart of the sidecar itself (the EA re-sends hello on
        # UNKNOWN_SYMBOL): the signal id and anchors come back from the file.
        z.close()
        proc.kill()
        proc = SidecarProcess(proc.db).start()
        z = proc.zmq()
        v = z.send(M.tick(T0 + 40, BID, ASK, login=LOGIN, msg_id="t-5"))
        assert v["type"] == "error" and v["error"]["code"] == "UNKNOWN_SYMBOL", v
        assert z.send(M.hello(login=LOGIN, bars=bars, server=T0 + 41, msg_id="h-3"))["ok"]
        v = z.send(M.tick(T0 + 42, BID, ASK, login=LOGIN, positions=[held], msg_id="t-6"))
        assert v["action"] == "hold" and R.RISK_SYMBOL_OPEN in _codes(v), v
        v = z.send(M.tick(T0 + 43, BID, ASK, login=LOGIN, msg_id="t-7"))
        assert v["action"] == "hold" and R.RISK_DUPLICATE_SIGNAL in _codes(v), v
        assert _anchors(proc) == anchors
    finally:
        z.close()
        proc.stop()
