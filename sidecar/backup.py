"""`sidecar backup`: a consistent copy of the live SQLite database while the sidecar runs.

The copy is made with SQLite's online backup API (`sqlite3.Connection.backup`), a few MiB per
step with a short pause between steps. On a WAL database (the sidecar's) the source connection
holds one read transaction for the whole copy, so every step reads the same snapshot: the copy is
the database as it was at that instant (every deal acknowledged before it included), the backup
never restarts however busy the sidecar is, and the sidecar's writes never wait for it (in WAL
mode a reader blocks no writer; only checkpoints pause until the copy ends). The source is opened
read-only and never modified.

The copy goes to a temporary file next to the target, is switched to a self-contained rollback
journal file (no `-wal` to carry along), checked with `PRAGMA integrity_check`, flushed to disk and
only then renamed into place with `os.replace` (atomic on POSIX and Windows). Any failure removes
the temporary file: the target is either the complete, checked copy or untouched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

PAGES_PER_STEP = 1024  # 4 MiB per step with SQLite's default 4 KiB pages
PAUSE_SECONDS = 0.005  # between steps: the copy's I/O comes in short bursts
# The sidecar's tables, the ones the summary names first (deals, account states, journal).
MAIN_TABLES = ("trades", "account_state", "decisions")
_COMPANIONS = ("-journal", "-wal", "-shm")  # files SQLite keeps next to a database


class BackupError(Exception):
    """A backup that could not be made; the message names the path and the cause. Nothing was
    written to the target. `exit_code`: 2 (input, target or disk problem), 1 (the copy failed
    its integrity check)."""

    def __init__(self, message: str, exit_code: int = 2) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class BackupResult:
    source: Path
    target: Path
    snapshot_gmt: float  # when the snapshot was taken (epoch seconds)
    size: int  # bytes of the copy
    pages: int
    page_size: int
    steps: int
    seconds: float
    integrity: str  # "ok"
    tables: dict[str, int]  # table -> rows in the copy


def backup_database(
    source: str | Path,
    target: str | Path,
    *,
    force: bool = False,
    pages: int = PAGES_PER_STEP,
    pause: float = PAUSE_SECONDS,
) -> BackupResult:
    """Copy the SQLite database `source` to `target`; raise BackupError on any problem."""
    started = time.monotonic()
    src_path = Path(source).absolute()
    dst_path = Path(target).absolute()
    _check_source(src_path)
    _check_target(src_path, dst_path, force)
    src = _open_source(src_path)
    tmp: Path | None = None
    try:
        snapshot_gmt, page_count, page_size = _begin_snapshot(src, src_path)
        tmp = _temporary(src_path, dst_path)
        _check_space(dst_path, page_count * page_size)
        steps = _copy(src, tmp, dst_path, pages, pause)
        src.close()
        integrity, tables = _verify(tmp, dst_path)
        _flush(tmp, dst_path)
        try:
            os.replace(tmp, dst_path)
        except OSError as exc:
            raise _os_error(exc, dst_path) from None
        tmp = None
        _flush_folder(dst_path.parent)
    except sqlite3.Error as exc:
        raise _sqlite_error(exc, src_path, dst_path) from None
    finally:
        src.close()
        if tmp is not None:
            _remove(tmp)
    return BackupResult(
        source=src_path,
        target=dst_path,
        snapshot_gmt=snapshot_gmt,
        size=dst_path.stat().st_size,
        pages=page_count,
        page_size=page_size,
        steps=steps,
        seconds=time.monotonic() - started,
        integrity=integrity,
        tables=tables,
    )


def summary(result: BackupResult) -> str:
    """What was copied: size, integrity and every table's row count (the sidecar's first)."""
    when = datetime.fromtimestamp(result.snapshot_gmt, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    order = [t for t in MAIN_TABLES if t in result.tables]
    order += sorted(t for t in result.tables if t not in MAIN_TABLES)
    rows = ", ".join(f"{t} {result.tables[t]}" for t in order)
    return "\n".join(
        (
            f"copied {result.source} -> {result.target} (snapshot at {when})",
            f"size: {result.size} bytes ({result.pages} pages of {result.page_size} bytes, "
            f"{result.steps} step{'s' if result.steps != 1 else ''}, {result.seconds:.2f} s)",
            f"integrity_check: {result.integrity}",
            f"tables (rows): {rows}",
        )
    )


# ---------------------------------------------------------------- checks before copying


def _check_source(path: Path) -> None:
    if not path.exists():
        raise BackupError(f"source database {path} not found (check server.db or --db)")
    if not path.is_file():
        raise BackupError(f"source database {path} is not a file")


def _check_target(source: Path, target: Path, force: bool) -> None:
    if target.exists() or target.is_symlink():
        if target.is_dir():
            raise BackupError(f"{target} is a folder; give the backup's file name")
        with contextlib.suppress(OSError):
            if os.path.samefile(source, target):
                raise BackupError(f"{target} is the source database itself")
        if not force:
            raise BackupError(f"{target} already exists; not overwritten (--force replaces it)")
        for suffix in ("-wal", "-journal"):
            companion = Path(f"{target}{suffix}")
            if companion.exists():
                # SQLite would replay it into the new file on the next open.
                raise BackupError(
                    f"{companion} exists: {target} is in use or was not closed cleanly; "
                    "not replaced (stop what uses it, or choose another path)"
                )
    folder = target.parent
    if not folder.is_dir():
        raise BackupError(f"cannot write {target}: folder {folder} does not exist")


def _check_space(target: Path, needed: int) -> None:
    try:
        free = shutil.disk_usage(target.parent).free
    except OSError:
        return
    if free < needed:
        raise BackupError(
            f"disk full: {target} needs about {needed} bytes, {free} free in {target.parent}"
        )


# ---------------------------------------------------------------- the copy


def _open_source(path: Path) -> sqlite3.Connection:
    """Read-only (the live file is never written, a missing one never created)."""
    try:
        return sqlite3.connect(
            f"{path.as_uri()}?mode=ro", uri=True, isolation_level=None, timeout=10.0
        )
    except sqlite3.Error as exc:
        raise BackupError(f"cannot open source database {path}: {exc}") from None


def _begin_snapshot(src: sqlite3.Connection, path: Path) -> tuple[float, int, int]:
    """Start the read transaction every step will read from (WAL); the size to copy."""
    try:
        wal = src.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
        if wal:  # in rollback mode a held read lock would block writers for the whole copy
            src.execute("BEGIN")
        names = {r[0] for r in src.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        page_count = src.execute("PRAGMA page_count").fetchone()[0]
        page_size = src.execute("PRAGMA page_size").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"source database {path}: {exc}") from None
    if "trades" not in names:
        raise BackupError(f"{path} is not a sidecar database (no trades table)")
    return time.time(), int(page_count), int(page_size)


def _temporary(source: Path, target: Path) -> Path:
    """An empty file next to the target (same file system: the rename is atomic), readable
    as widely as the source database is (mkstemp's default is the owner only)."""
    try:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".partial", dir=target.parent)
    except OSError as exc:
        raise BackupError(
            f"cannot write {target}: {exc.strerror or exc} ({target.parent})"
        ) from None
    os.close(fd)
    with contextlib.suppress(OSError):
        shutil.copymode(source, name)
    return Path(name)


def _copy(src: sqlite3.Connection, tmp: Path, target: Path, pages: int, pause: float) -> int:
    steps = 0

    def progress(status: int, remaining: int, total: int) -> None:
        nonlocal steps
        steps += 1
        if remaining and pause > 0:
            time.sleep(pause)  # between steps, outside SQLite: the sidecar runs freely

    dst = sqlite3.connect(tmp, isolation_level=None)
    try:
        src.backup(dst, pages=max(1, pages), progress=progress)
        # The copy carries the source's WAL flag; make it one self-contained file.
        dst.execute("PRAGMA journal_mode=DELETE").fetchone()
    finally:
        dst.close()
    return steps


def _verify(tmp: Path, target: Path) -> tuple[str, dict[str, int]]:
    conn = sqlite3.connect(tmp, isolation_level=None)
    try:
        problems = [r[0] for r in conn.execute("PRAGMA integrity_check")]
        if problems != ["ok"]:
            shown = "; ".join(problems[:5])
            raise BackupError(
                f"the copy failed its integrity check ({shown}); {target} not written "
                "(the source database may be damaged: run PRAGMA integrity_check on it)",
                exit_code=1,
            )
        names = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' "
                "ORDER BY name"
            )
        ]
        tables = {n: conn.execute(f'SELECT COUNT(*) FROM "{n}"').fetchone()[0] for n in names}
    finally:
        conn.close()
    return "ok", tables


def _flush(tmp: Path, target: Path) -> None:
    """The copy's bytes on disk before the rename makes it the target."""
    try:
        with open(tmp, "r+b") as f:
            os.fsync(f.fileno())
    except OSError as exc:
        raise _os_error(exc, target) from None


def _flush_folder(folder: Path) -> None:
    """The rename itself on disk (POSIX; Windows has no directory handles to sync)."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _remove(tmp: Path) -> None:
    for path in (tmp, *(Path(f"{tmp}{s}") for s in _COMPANIONS)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


# ---------------------------------------------------------------- error messages


def _os_error(exc: OSError, target: Path) -> BackupError:
    import errno

    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return BackupError(f"disk full writing {target} (in {target.parent}); nothing written")
    return BackupError(f"cannot write {target}: {exc.strerror or exc}")


def _sqlite_error(exc: sqlite3.Error, source: Path, target: Path) -> BackupError:
    text = str(exc)
    if "database or disk is full" in text:
        return BackupError(f"disk full writing {target} (in {target.parent}); nothing written")
    if isinstance(exc, sqlite3.OperationalError) and "unable to open" in text:
        return BackupError(f"cannot write {target}: {text}")
    return BackupError(f"backup of {source} to {target} failed: {text}")
