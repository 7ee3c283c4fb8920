"""`sidecar backup`: a consistent copy of the live database while a real sidecar serves.

A real `sidecar serve` runs on a temporary SQLite file while a client thread, playing the EA,
keeps sending ticks and `trade` messages over ZeroMQ (each deal acknowledged). Mid-stream,
`python -m sidecar backup` copies the database. The copy must hold every deal acknowledged before
the backup started, the account state, pass `PRAGMA integrity_check`, and be one snapshot (a prefix
of the deal stream, with the account state that counts exactly those deals); restored under a new
`sidecar serve`, its deals are served by `GET /v1/trades`. The stream must go on while the copy is
made. Then the refusals: an existing target without --force, a missing source, a folder that
cannot be written or does not exist, a full disk; each exits 2 naming the path and leaves no file.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from sidecar import backup as B
from sidecar import cli
from sidecar.protocol import Ack, Verdict, decode_reply
from sidecar.store import Store
from sidecar.testing import messages as M
from sidecar.testing.server import SidecarProcess

LOGIN = 5151001
DAY_START = 1734480000  # 2024-12-18 00:00 server time
T0 = DAY_START + 36_000  # 10:00 server time
BEFORE = 300  # deals acknowledged before the backup starts


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sidecar", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def _deal(deal: int) -> dict[str, Any]:
    """Entries carry a signal id (persisted with the account state in the deal's transaction)."""
    if deal % 2:
        return M.trade(deal, login=LOGIN, entry="in", time=DAY_START + deal, comment=f"sc:s{deal}")
    return M.trade(deal, login=LOGIN, entry="out", profit=5.0, time=DAY_START + deal)


class EaStream(threading.Thread):
    """The EA: a tick, then a deal until acknowledged, again and again. `acked` holds every
    acknowledged deal in order, `ack_times` the moment (monotonic) each ack arrived."""

    def __init__(self, proc: SidecarProcess) -> None:
        super().__init__(name="ea-stream", daemon=True)
        self.proc = proc
        self.acked: list[int] = []
        self.ack_times: list[float] = []
        self.error: BaseException | None = None
        self.halt = threading.Event()

    def run(self) -> None:
        z = self.proc.zmq(timeout_ms=10_000)
        try:
            assert z.send(M.hello(login=LOGIN, server=T0))["type"] == "ack"
            deal = 0
            while not self.halt.is_set():
                deal += 1
                tick = M.tick(
                    T0 + deal, 1.09121, 1.09128, login=LOGIN, equity=10000.0, msg_id=f"t-{deal}"
                )
                verdict = decode_reply(z.raw(json.dumps(tick).encode()))
                assert isinstance(verdict, Verdict), verdict
                ack = decode_reply(z.raw(json.dumps(_deal(deal)).encode()))
                assert isinstance(ack, Ack) and ack.ok and not ack.duplicate, ack
                assert ack.id == f"d-{deal}", ack
                self.acked.append(deal)
                self.ack_times.append(time.monotonic())
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            z.close()

    def wait_for(self, n: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.acked) < n:
            assert self.error is None, self.error
            assert time.monotonic() < deadline, f"only {len(self.acked)} deals acknowledged"
            time.sleep(0.01)

    def finish(self) -> None:
        self.halt.set()
        self.join(30)
        assert self.error is None, self.error


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[tuple[SidecarProcess, EaStream]]:
    proc = SidecarProcess(tmp_path / "live" / "sidecar.sqlite")
    Path(proc.db).parent.mkdir()
    proc.start()
    stream = EaStream(proc)
    try:
        stream.start()
        yield proc, stream
    finally:
        stream.halt.set()
        stream.join(30)
        proc.stop()


def _snapshot_checks(copy: Path, before: list[int]) -> set[int]:
    """Integrity, every deal acknowledged before the backup, and one snapshot: a prefix of the
    stream whose account state folded in exactly its last entry. Returns the copy's deals."""
    conn = sqlite3.connect(copy)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # one file
    finally:
        conn.close()
    store = Store(copy)
    try:
        deals = {t["deal"] for t in store.trades(LOGIN, limit=1_000_000)}
        states = store.load_states()
    finally:
        store.close()
    missing = sorted(set(before) - deals)
    assert not missing, f"acknowledged before the backup, missing from it: {missing[:20]}"
    assert deals == set(range(1, len(deals) + 1)), "not one snapshot of the stream"
    assert LOGIN in states, "the account state is not in the backup"
    last_in = max(d for d in deals if d % 2)
    assert f"s{last_in}" in {sid for sid, _ in states[LOGIN].recent_signals}
    later = {f"s{d}" for d in range(len(deals) + 1, len(deals) + 3)}
    assert not later & {sid for sid, _ in states[LOGIN].recent_signals}
    return deals


def _served_deals(proc: SidecarProcess) -> set[int]:
    http = proc.http()
    out: set[int] = set()
    try:
        path = f"/v1/trades?login={LOGIN}&limit=1000"
        while True:
            status, body = http.get(path)
            assert status == 200, body
            out.update(t["deal"] for t in body["trades"])
            if not body["next"]:
                return out
            path = f"/v1/trades?login={LOGIN}&limit=1000&cursor={body['next']}"
    finally:
        http.close()


def test_backup_while_serving_then_restore(
    serving: tuple[SidecarProcess, EaStream], tmp_path: Path
) -> None:
    proc, stream = serving
    target = tmp_path / "backups" / "sidecar-backup.sqlite"
    target.parent.mkdir()
    stream.wait_for(BEFORE)
    before = list(stream.acked)  # every deal acknowledged before the backup starts
    started = time.monotonic()
    run = _cli("backup", str(target), "--db", proc.db)
    ended = time.monotonic()
    stream.wait_for(len(stream.acked) + 50)  # the stream goes on after the backup too
    stream.finish()
    assert run.returncode == 0, run.stderr

    # The sidecar answered all along: acks kept arriving while the backup ran, without a stall.
    times = [t for t in stream.ack_times if started <= t <= ended]
    assert times, "no deal was acknowledged while the backup ran"
    gaps = [b - a for a, b in zip([started, *times], [*times, ended], strict=True)]
    assert max(gaps) < 2.0, f"the sidecar stalled {max(gaps):.2f} s during the backup"

    # Only the finished copy is left next to it (no temporary file).
    assert sorted(p.name for p in target.parent.iterdir()) == [target.name]
    restored = tmp_path / "restored" / "sidecar.sqlite"
    restored.parent.mkdir()
    shutil.copyfile(target, restored)

    deals = _snapshot_checks(target, before)
    assert len(deals) >= BEFORE
    # What it printed: the paths, the size, the check, the row counts.
    out = run.stdout
    assert str(target) in out and str(Path(proc.db).absolute()) in out, out
    assert f"size: {target.stat().st_size} bytes" in out, out
    assert "integrity_check: ok" in out, out
    assert f"trades {len(deals)}," in out and "account_state 1," in out, out
    assert "decisions " in out, out

    # Restore: a new sidecar on the copied file serves those deals and the account.
    second = SidecarProcess(restored).start()
    try:
        assert _served_deals(second) == deals
        http = second.http()
        try:
            status, body = http.get("/v1/state")
        finally:
            http.close()
        assert status == 200
        assert LOGIN in {a["login"] for a in body["accounts"]}
    finally:
        second.stop()


def test_many_small_steps_copy_one_snapshot_while_deals_stream(
    serving: tuple[SidecarProcess, EaStream], tmp_path: Path
) -> None:
    """One page per step with a pause between steps: the sidecar commits deals in between, and
    the copy is still the database as it was when the backup began (no restart, no mix)."""
    proc, stream = serving
    stream.wait_for(BEFORE)
    before = list(stream.acked)
    result = B.backup_database(proc.db, tmp_path / "steps.sqlite", pages=1, pause=0.002)
    acked_during = len(stream.acked) - len(before)
    stream.finish()
    assert result.steps == result.pages > 1
    assert result.integrity == "ok"
    assert acked_during > 0, "no deal was committed while the copy was made"
    deals = _snapshot_checks(tmp_path / "steps.sqlite", before)
    assert result.tables["trades"] == len(deals)


# ---------------------------------------------------------------- refusals


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """A closed sidecar database with a few hundred deals (about 1 MB)."""
    path = tmp_path / "src" / "sidecar.sqlite"
    store = Store(path)
    try:
        for deal in range(1, 2001):
            row = _deal(deal)
            row = {k: row[k] for k in ("login", "deal", "position", "symbol", "side", "entry")}
            store.insert_trade(
                {**row, "order_id": deal, "volume": 0.1, "price": 1.1, "profit": 0.0,
                 "commission": 0.0, "swap": 0.0, "time": DAY_START + deal, "comment": "x" * 300,
                 "received_gmt": DAY_START}
            )  # fmt: skip
    finally:
        store.close()
    return path


def _files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_an_existing_target_is_kept_unless_force(source: Path, tmp_path: Path) -> None:
    target = tmp_path / "out" / "backup.sqlite"
    target.parent.mkdir()
    target.write_bytes(b"an older backup")
    run = _cli("backup", str(target), "--db", str(source))
    assert run.returncode == 2, run
    assert str(target) in run.stderr and "--force" in run.stderr, run.stderr
    assert target.read_bytes() == b"an older backup"
    assert _files(target.parent) == ["backup.sqlite"]

    run = _cli("backup", str(target), "--db", str(source), "--force")
    assert run.returncode == 0, run.stderr
    assert "trades 2000," in run.stdout, run.stdout
    assert _files(target.parent) == ["backup.sqlite"]
    with contextlib.closing(sqlite3.connect(target)) as conn:
        assert conn.execute("SELECT COUNT(*) FROM trades").fetchone() == (2000,)


def test_a_missing_source_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "sidecar.sqlite"
    target = tmp_path / "backup.sqlite"
    run = _cli("backup", str(target), "--db", str(missing))
    assert run.returncode == 2, run
    assert str(missing) in run.stderr and "not found" in run.stderr, run.stderr
    assert not target.exists() and not missing.exists()


def test_a_missing_source_from_the_config_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "configured.sqlite"
    config = tmp_path / "sidecar.toml"
    config.write_text(f"[server]\ndb = {json.dumps(str(missing))}\n", encoding="utf-8")
    run = _cli("backup", str(tmp_path / "backup.sqlite"), "--config", str(config))
    assert run.returncode == 2, run
    assert str(missing) in run.stderr, run.stderr
    assert _files(tmp_path) == ["sidecar.toml"]


@pytest.fixture
def readonly_folder(tmp_path: Path) -> Iterator[Path]:
    """A folder this process cannot create files in: permissions, else (root) immutable."""
    folder = tmp_path / "readonly"
    folder.mkdir()
    os.chmod(folder, 0o555)
    immutable = False
    if _writable(folder) and shutil.which("chattr"):
        immutable = (
            subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode == 0
        )
    try:
        if _writable(folder):
            pytest.skip("no folder this process cannot write to (root without chattr, Windows)")
        yield folder
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(folder)], capture_output=True)
        os.chmod(folder, 0o755)


def _writable(folder: Path) -> bool:
    probe = folder / "probe"
    try:
        probe.write_bytes(b"")
    except OSError:
        return False
    probe.unlink()
    return True


def test_an_unwritable_folder_is_named(source: Path, readonly_folder: Path) -> None:
    target = readonly_folder / "backup.sqlite"
    run = _cli("backup", str(target), "--db", str(source))
    assert run.returncode == 2, run
    assert str(target) in run.stderr and "cannot write" in run.stderr, run.stderr
    assert _files(readonly_folder) == []


def test_a_missing_folder_is_named(source: Path, tmp_path: Path) -> None:
    target = tmp_path / "no-such-folder" / "backup.sqlite"
    run = _cli("backup", str(target), "--db", str(source))
    assert run.returncode == 2, run
    assert str(target.parent) in run.stderr and "does not exist" in run.stderr, run.stderr
    assert not target.parent.exists()


def test_a_full_disk_leaves_nothing(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """The disk fills up in the middle of the copy (SQLite's own SQLITE_FULL, "database or disk
    is full", made by capping the copy's page count): a message, exit 2, no file left."""
    target = tmp_path / "out" / "backup.sqlite"
    target.parent.mkdir()
    connect = sqlite3.connect

    def small_disk(database: Any, *args: Any, **kwargs: Any) -> sqlite3.Connection:
        conn = connect(database, *args, **kwargs)
        if str(database).endswith(".partial"):
            conn.execute("PRAGMA max_page_count = 40")  # the source has about 250 pages
        return conn

    monkeypatch.setattr(B.sqlite3, "connect", small_disk)
    with pytest.raises(B.BackupError) as caught:
        B.backup_database(source, target)
    assert "disk full" in str(caught.value) and str(target) in str(caught.value)
    assert caught.value.exit_code == 2
    assert _files(target.parent) == []

    assert cli.main(["backup", str(target), "--db", str(source)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: disk full writing ") and str(target) in err, err
    assert _files(target.parent) == []


def test_a_full_disk_is_seen_before_copying(
    source: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Less free space than the database's size: refused before a byte is written."""
    target = tmp_path / "backup.sqlite"
    monkeypatch.setattr(B.shutil, "disk_usage", lambda path: SimpleNamespace(free=4096))
    with pytest.raises(B.BackupError) as caught:
        B.backup_database(source, target)
    assert "disk full" in str(caught.value) and str(target) in str(caught.value)
    assert not target.exists() and _files(tmp_path) == ["src"]
