"""`kill -9` at random moments while N terminals x M charts trade, and restarts on the same file.

The EA emulator (`sidecar/testing/ea_emulator.py`) runs charts that behave like SidecarEA: they
send hello, ticks, heartbeats and calendar pushes, open positions on `open` verdicts, close them
at their stops and targets, and queue every deal as a `trade` message until it is acknowledged.
A real `sidecar serve` process is killed with SIGKILL at a random moment of each round (the
deals in flight, the verdicts half answered), left down for a random while, and started again on
the same SQLite file and ports. Nothing tells the charts: they time out, reopen their sockets,
say hello again on UNKNOWN_SYMBOL and re-send their queues.

Afterwards:
- every `trade` a chart saw acknowledged is in the database exactly once;
- after each kill, the account state on file counts exactly the deals on file (the loss streak,
  its positions and the cooldown folded from the deals in the order they were recorded): a deal
  and the state that counts it committed together, whatever the kill interrupted; and no
  account's broker day on file ever went back;
- an account locked (daily loss) and halted before the run keeps its locks, mode and anchors
  through every restart;
- every chart was back within 2 s of each restart, by itself;
- no chart opened a position on a verdict received while the sidecar was down;
- no chart saw anything but timeouts, failed sends and UNKNOWN_SYMBOL (no INTERNAL, no
  mismatched or unreadable reply).

`SIDECAR_CRASH_ROUNDS` sets the number of kills (default 3, for CI; the issue's acceptance is
20: `SIDECAR_CRASH_ROUNDS=20 pytest -s tests/service/test_crash_restart.py`, which prints the
figures), `SIDECAR_CRASH_SEED` the random kill points (in every failure message, to replay a
run), `SIDECAR_CRASH_BACK_S` the reconnection bound (2 s).
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import time
from pathlib import Path
from typing import Any

from sidecar.config import Config
from sidecar.engine import reasons as R
from sidecar.engine.account import apply_trade, net_result, position_key
from sidecar.engine.state import AccountState
from sidecar.testing import messages as M
from sidecar.testing.ea_emulator import EAEmulator, EmulatorConfig, EmulatorResult
from sidecar.testing.server import SidecarProcess

ROUNDS = int(os.environ.get("SIDECAR_CRASH_ROUNDS", "3"))
SEED = int(os.environ.get("SIDECAR_CRASH_SEED", str(random.SystemRandom().randrange(1 << 30))))
TERMINALS, CHARTS = 2, 4
# The issue: clients back within 2 s of the restart, on their own. A chart retries every
# backoff + timeout = 1.25 s (the EA's defaults); on a machine starved of CPU a retry can miss
# the new process's handshake and lose a cycle: SIDECAR_CRASH_BACK_S relaxes the bound there.
BACK_WITHIN_S = float(os.environ.get("SIDECAR_CRASH_BACK_S", "2.0"))
START_TIMEOUT_S = 60.0  # a start can take several seconds on a loaded 2-vCPU machine

SENTINEL = 4242999  # an account the emulator never trades: locked and halted before the run
DAY_START = 1734480000  # 2024-12-18 00:00 server time
T0 = DAY_START + 36_000
ALLOWED_ERRORS = {"TIMEOUT", "SEND_FAILED", "ERROR_REPLY UNKNOWN_SYMBOL"}


def _lock_and_halt(proc: SidecarProcess) -> dict[str, Any]:
    """Day start 10,000, a high of 10,500, then 8,800: a daily-loss lock and a halt."""
    z = proc.zmq()
    try:
        assert z.send(M.hello(login=SENTINEL, server=T0))["ok"]
        for i, equity in enumerate((10000.0, 10500.0, 8800.0)):
            v = z.send(
                M.tick(T0 + 60 * i, 1.0912, 1.0913, login=SENTINEL, equity=equity, balance=1e4)
            )
        assert v["mode"] == "halted", v
        codes = {r.split(" ", 1)[0] for r in v["reasons"]}
        assert {R.MODE_HALTED, R.RISK_DAILY_LOSS} <= codes, v
    finally:
        z.close()
    return _sentinel(proc)


def _sentinel(proc: SidecarProcess) -> dict[str, Any]:
    http = proc.http()
    try:
        status, body = http.get("/v1/state")
    finally:
        http.close()
    assert status == 200, body
    (account,) = [a for a in body["accounts"] if a["login"] == SENTINEL]
    return {
        "mode": account["mode"],
        "mode_reason": account["mode_reason"],
        "anchors": account["anchors"],
        "locks": sorted(lock["lock"] for lock in account["locks"]),
    }


def _file(db: Path) -> tuple[dict[tuple[int, int], int], dict[int, list[sqlite3.Row]], dict]:
    """(deal count per (login, deal), each login's deals in the order recorded, states)."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        counts = {
            (r["login"], r["deal"]): r["n"]
            for r in conn.execute("SELECT login, deal, COUNT(*) AS n FROM trades GROUP BY 1, 2")
        }
        deals: dict[int, list[sqlite3.Row]] = {}
        for r in conn.execute("SELECT * FROM trades ORDER BY rowid"):
            deals.setdefault(r["login"], []).append(r)
        states = {
            r["login"]: json.loads(r["state"])
            for r in conn.execute("SELECT login, state FROM account_state")
        }
    finally:
        conn.close()
    return counts, deals, states


def _check_file(db: Path, where: str, days: dict[int, int]) -> int:
    """With the process dead: each emulated account's streak fields fold exactly the deals on
    file, in the order they were recorded, and its broker day never went back (`days`: the
    day on file at the previous kill, updated). Returns the number of deals on file."""
    risk = Config().risk
    counts, deals, states = _file(db)
    for login, state in states.items():
        assert state["day_key"] >= days.get(login, -1), (where, login, "broker day went back")
        days[login] = state["day_key"]
    assert set(counts.values()) <= {1}, where
    for login, rows in deals.items():
        folded = AccountState(login=login)
        for d in rows:
            folded, _ = apply_trade(
                folded,
                entry=d["entry"],
                net_profit=net_result(d["profit"], d["commission"], d["swap"]),
                position=position_key(d["position"], d["deal"]),
                server_time=d["time"],
                signal_id=None,
                gmt=0,
                risk=risk,
            )
        state = states.get(login)
        assert state is not None, f"{where}: deals of {login} on file without its state"
        for key in ("loss_streak", "cooldown_until"):
            assert state[key] == getattr(folded, key), (where, login, key)
        assert tuple(state["streak_positions"]) == folded.streak_positions, (where, login)
    return len(counts)


def test_kill_9_at_random_moments_loses_no_acknowledged_trade(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    db = tmp_path / "crash.sqlite"
    proc = SidecarProcess(db, log_path=tmp_path / "sidecar.log").start(timeout=START_TIMEOUT_S)
    sentinel = _lock_and_halt(proc)
    em = EAEmulator(
        EmulatorConfig(
            endpoint=proc.zmq_endpoint,
            terminals=TERMINALS,
            charts=CHARTS,
            rate=600.0,  # ticks/s, all charts together
            ticks_per_bar=2,  # bars close fast: many signals, entries, stops and deals
            processes=False,
        )
    )
    downs: list[tuple[float, float]] = []  # (killed, ready again) wall times
    # (killed, restarting): nothing answers in between. A new process may answer ZeroMQ a
    # little before its /health does, so verdicts after `restarting` are the new one's.
    dead: list[tuple[float, float]] = []
    deals_on_file: list[int] = []
    days: dict[int, int] = {}  # login -> broker day on file at the last kill
    em.start()
    try:
        for r in range(ROUNDS):
            # Trade a while, then kill at a random moment. At least 1.5 s: with a restart
            # taking ~1 s, restarts come > 2 s apart, as the EA re-introduces itself at once
            # at most once per 2 s (HELLO_REHELLO_MIN_SEC; else InpHelloRetrySec later).
            time.sleep(rng.uniform(1.5, 3.0))
            reconnects = em.progress()["reconnects"]
            proc.kill()
            killed = time.time()
            assert proc.proc is not None and proc.proc.returncode == -9
            deals_on_file.append(_check_file(db, f"seed {SEED} round {r}", days))
            time.sleep(rng.uniform(0.0, 1.5))  # down for a random while
            dead.append((killed, time.time()))
            proc.start(timeout=START_TIMEOUT_S)
            ready = time.time()
            downs.append((killed, ready))
            assert _sentinel(proc) == sentinel, f"seed {SEED} round {r}"
            # Every chart comes back by itself (one reconnect per chart and outage) before the
            # next round; how fast is checked below.
            deadline = time.monotonic() + 15.0
            while em.progress()["reconnects"] < reconnects + TERMINALS * CHARTS:
                if time.monotonic() > deadline:
                    break  # which charts, and what they saw, is reported below
                time.sleep(0.05)
            else:
                continue
            break
        time.sleep(BACK_WITHIN_S + 2.0)  # every chart back, queues flushed
    finally:
        result = em.stop()
        proc.stop()
    where = f"seed {SEED}"

    # Every acknowledged deal exactly once.
    counts, _, _ = _file(db)
    acked = result.acked_deal_keys()
    assert acked, "no deal was acknowledged: the run traded nothing"
    missing = sorted(k for k in acked if counts.get(k) != 1)
    assert not missing, (where, missing[:20])
    # The kills landed while deals flowed: deals kept arriving between them.
    assert deals_on_file == sorted(deals_on_file) and deals_on_file[-1] < len(counts), where
    _check_file(db, f"{where} after the run", days)

    slowest_back = _check_reconnects(result, downs, where)
    # No position opened on a verdict received while the sidecar was down.
    for opened in result.opened:
        for killed, restarting in dead:
            assert not killed <= opened.verdict_wall <= restarting, (where, opened)
    assert result.opened, "no position was opened: the run exercised no entries"
    unexpected = {k: n for k, n in result.error_counts.items() if k not in ALLOWED_ERRORS}
    assert not unexpected, (where, unexpected, result.errors[-5:])
    assert '"event":"request.internal_error"' not in proc.log(), where
    print(
        f"\ncrash test, seed {SEED}: {ROUNDS} kills, {len(acked)} deals acknowledged "
        f"({sum(d.duplicate for d in result.acked_deals)} as duplicates of a deal whose ack a kill "
        f"lost), {len(counts)} on file, 0 lost; {len(result.opened)} positions opened, none "
        f"while down; every chart back within {slowest_back:.2f} s of a restart"
    )


def _check_reconnects(
    result: EmulatorResult, downs: list[tuple[float, float]], where: str
) -> float:
    """Each restart: every chart's first good reply came within BACK_WITHIN_S of the process
    being ready, without anyone telling it. Returns the slowest chart's time."""
    slowest = 0.0
    for k, (killed, ready) in enumerate(downs):
        until = downs[k + 1][0] if k + 1 < len(downs) else float("inf")
        back = {}
        for rc in result.reconnects:
            if killed <= rc.back and rc.down_since < until and rc.back < until:
                key = (rc.login, rc.symbol)
                back[key] = min(back.get(key, rc.back), rc.back)
        if len(back) < TERMINALS * CHARTS:
            seen = [
                (round(e.wall - ready, 2), e.login, e.symbol, e.kind, e.detail[:80])
                for e in result.errors
                if e.wall >= killed and (e.login, e.symbol) not in back
            ]
            raise AssertionError(
                f"{where} restart {k} (killed {killed:.2f}, ready {ready:.2f}, errors "
                f"{result.error_counts}, {len(result.errors)} kept, reconnects "
                f"{[(r.login, r.symbol, round(r.down_since, 2), round(r.back, 2)) for r in result.reconnects]}): "
                f"only {sorted(back)} came back; the others saw "
                f"(seconds after the restart): {seen[-40:]}"
            )
        late = {key: round(t - ready, 2) for key, t in back.items() if t - ready > BACK_WITHIN_S}
        seen = [
            (round(e.wall - ready, 2), e.login, e.symbol, e.kind, e.detail[:80])
            for e in result.errors
            if killed <= e.wall <= back.get((e.login, e.symbol), 0.0)
            and (e.login, e.symbol) in late
        ]
        assert not late, (where, k, late, "what the late charts saw after the kill:", seen[-40:])
        slowest = max(slowest, *(t - ready for t in back.values()))
    return slowest
