#!/usr/bin/env python3
"""Install the EA into a MetaTrader 5 data folder and optionally compile it with MetaEditor.

    python scripts/install_mql5.py                       # find the data folder under %APPDATA%
    python scripts/install_mql5.py --data-folder "%APPDATA%/MetaQuotes/Terminal/ABC123"
    python scripts/install_mql5.py --dry-run             # show what would be copied
    python scripts/install_mql5.py --libzmq-wheel pyzmq-25.1.2-cp311-cp311-win_amd64.whl
    python scripts/install_mql5.py --compile             # MetaEditor64.exe found through origin.txt
    python scripts/install_mql5.py --compile --metaeditor-prefix wine --metaeditor MetaEditor64.exe
    python scripts/install_mql5.py --transport http      # the EA will use WebRequest, no DLL

Copies mql5/Experts/SidecarEA.mq5 and mql5/Include/Sidecar/*.mqh into <data folder>/MQL5 and, when
asked, libzmq.dll (plus the DLLs it depends on) into MQL5/Libraries. Compiling runs MetaEditor's
command line (/compile: /include: /log:); its exit code is not trustworthy, so success means the
UTF-16 log reports zero errors and a fresh .ex5 exists. Standard library only; Windows-safe.

The EA's default transport is ZeroMQ, which needs libzmq.dll in MQL5/Libraries; the repository does
not ship it. Unless `--transport http` says the EA will use HTTP, the script warns when no
libzmq.dll is there and none is being installed (the EA would refuse to start).
"""

from __future__ import annotations

import argparse
import filecmp
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

REPO = Path(__file__).resolve().parents[1]
SOURCE = REPO / "mql5"
EA_REL = Path("Experts") / "SidecarEA.mq5"
INCLUDE_REL = Path("Include") / "Sidecar"


class InstallError(Exception):
    """A problem the operator has to fix; the message says what and how."""


@dataclass
class Action:
    kind: str  # copy, unchanged
    src: Path  # a file, or a wheel when member is set
    dst: Path
    member: str | None = None  # path inside the wheel


def find_data_folders(appdata: str | None) -> list[Path]:
    """MQL5 folders under %APPDATA%/MetaQuotes/Terminal/<hash>/MQL5."""
    if not appdata:
        return []
    root = Path(appdata) / "MetaQuotes" / "Terminal"
    if not root.is_dir():
        return []
    return sorted(p / "MQL5" for p in root.iterdir() if (p / "MQL5").is_dir())


def resolve_mql5_dir(data_folder: str | None, appdata: str | None) -> Path:
    if data_folder:
        p = Path(data_folder).expanduser()
        if p.name.upper() == "MQL5" and p.is_dir():
            return p
        if (p / "MQL5").is_dir():
            return p / "MQL5"
        raise InstallError(
            f"{p} is not a MetaTrader 5 data folder (no MQL5 folder inside). "
            "In the terminal: File > Open Data Folder shows the right path."
        )
    found = find_data_folders(appdata)
    if not found:
        where = f"{Path(appdata) / 'MetaQuotes' / 'Terminal'}" if appdata else "%APPDATA% (not set)"
        raise InstallError(
            f"no MetaTrader 5 data folder found under {where}; pass --data-folder "
            "(terminal: File > Open Data Folder)"
        )
    if len(found) > 1:
        listing = "\n  ".join(str(p.parent) for p in found)
        raise InstallError(f"several terminals found, choose one with --data-folder:\n  {listing}")
    return found[0]


def plan_copies(mql5_dir: Path) -> list[Action]:
    sources = [SOURCE / EA_REL, *sorted((SOURCE / INCLUDE_REL).glob("*.mqh"))]
    actions = []
    for src in sources:
        rel = src.relative_to(SOURCE)
        dst = mql5_dir / rel
        same = dst.is_file() and filecmp.cmp(src, dst, shallow=False)
        actions.append(Action("unchanged" if same else "copy", src, dst))
    return actions


def plan_libzmq(mql5_dir: Path, dll: str | None, wheel: str | None) -> list[Action]:
    """libzmq.dll from a file or from a pyzmq Windows wheel (pyzmq.libs/libzmq*.dll)."""
    libs = mql5_dir / "Libraries"
    if dll:
        p = Path(dll)
        if not p.is_file():
            raise InstallError(f"--libzmq: {p} does not exist")
        return [Action("copy", p, libs / "libzmq.dll")]
    if not wheel:
        return []
    w = Path(wheel)
    if not w.is_file():
        raise InstallError(f"--libzmq-wheel: {w} does not exist")
    with zipfile.ZipFile(w) as z:
        names = [n for n in z.namelist() if n.lower().endswith(".dll")]
    zmq = [n for n in names if PurePosixPath(n).name.lower().startswith("libzmq")]
    if len(zmq) != 1:
        raise InstallError(
            f"{w.name} holds no separate libzmq DLL (found: {names or 'no DLLs'}). pyzmq 26 and "
            "later link libzmq statically into zmq/backend/cython/_zmq.pyd, which the EA cannot "
            "import; use a pyzmq 25.x win_amd64 wheel (pyzmq.libs/libzmq-*.dll) or pass --libzmq "
            "with a 64-bit libzmq.dll (see docs/mt5.md)"
        )
    actions = [Action("copy", w, libs / "libzmq.dll", zmq[0])]
    # the DLLs libzmq imports under their (mangled) names, e.g. libsodium-<hash>.dll, msvcp140.dll
    for n in names:
        if n != zmq[0] and PurePosixPath(n).parent.name == PurePosixPath(zmq[0]).parent.name:
            actions.append(Action("copy", w, libs / PurePosixPath(n).name, n))
    return actions


def libzmq_warning(mql5_dir: Path, actions: list[Action], transport: str) -> str | None:
    """The warning for a ZeroMQ EA without libzmq.dll in MQL5/Libraries, or None."""
    if transport != "zmq":
        return None
    dll = mql5_dir / "Libraries" / "libzmq.dll"
    if dll.is_file() or any(a.dst == dll for a in actions):
        return None
    return (
        f"warning: no libzmq.dll in {dll.parent}. The EA's default transport (InpTransport = "
        "ZeroMQ, the only one that works in the Strategy Tester) imports it and will not start "
        "without it; this repository does not ship it. Install one with --libzmq-wheel "
        "<pyzmq-25.1.2 win_amd64 wheel> or --libzmq <64-bit libzmq.dll> (docs/mt5.md section 2), "
        "or set InpTransport = HTTP and allow the sidecar's URL for WebRequest (then pass "
        "--transport http to silence this)."
    )


def execute(actions: list[Action]) -> None:
    for a in actions:
        if a.kind != "copy":
            continue
        a.dst.parent.mkdir(parents=True, exist_ok=True)
        if a.member is not None:
            with zipfile.ZipFile(a.src) as z:
                a.dst.write_bytes(z.read(a.member))
        else:
            shutil.copyfile(a.src, a.dst)


# ---------------------------------------------------------------- compile


def read_log(path: Path) -> str:
    """MetaEditor writes UTF-16LE logs (with a BOM); accept UTF-8 too."""
    raw = path.read_bytes()
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        return raw.decode("utf-16")
    if len(raw) >= 2 and raw[1:2] == b"\x00":
        return raw.decode("utf-16-le", errors="replace")
    return raw.decode("utf-8", errors="replace")


_ERRORS = re.compile(r"(\d+)\s+error(?:s|\(s\))?\b", re.IGNORECASE)
_WARNINGS = re.compile(r"(\d+)\s+warning(?:s|\(s\))?\b", re.IGNORECASE)


def parse_log(text: str) -> tuple[int | None, int | None]:
    """(errors, warnings) from the summary line(s) of a MetaEditor log; None when absent."""
    errors = [int(m) for m in _ERRORS.findall(text)]
    warnings = [int(m) for m in _WARNINGS.findall(text)]
    return (errors[-1] if errors else None, warnings[-1] if warnings else None)


def find_metaeditor(mql5_dir: Path) -> Path | None:
    """MetaEditor64.exe next to terminal64.exe; the data folder's origin.txt names that folder."""
    origin = mql5_dir.parent / "origin.txt"
    if not origin.is_file():
        return None
    install = Path(read_log(origin).strip().lstrip("\ufeff"))
    for name in ("MetaEditor64.exe", "metaeditor64.exe", "MetaEditor.exe"):
        if (install / name).is_file():
            return install / name
    return None


def compile_ea(mql5_dir: Path, metaeditor: Path, prefix: list[str], timeout: float) -> str:
    src = mql5_dir / EA_REL
    ex5 = src.with_suffix(".ex5")
    log = src.with_suffix(".log")
    if log.exists():
        log.unlink()
    started = time.time()
    cmd = [*prefix, str(metaeditor), f"/compile:{src}", f"/include:{mql5_dir}", f"/log:{log}"]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise InstallError(f"cannot run MetaEditor: {exc}") from None
    except subprocess.TimeoutExpired:
        raise InstallError(f"MetaEditor did not finish within {timeout:.0f} s") from None
    if not log.is_file():
        raise InstallError(
            f"MetaEditor wrote no log at {log} (exit code {proc.returncode}); "
            "check the path (no spaces under Wine) and that MetaEditor runs"
        )
    text = read_log(log)
    errors, warnings = parse_log(text)
    fresh = ex5.is_file() and ex5.stat().st_mtime >= started - 2
    if errors is None:
        raise InstallError(f"no error count in {log}:\n{text[-2000:]}")
    if errors > 0 or not fresh:
        why = f"{errors} error(s)" if errors else f"no fresh {ex5.name}"
        lines = [ln for ln in text.splitlines() if "error" in ln.lower()][:20]
        raise InstallError(f"compilation failed: {why}; see {log}\n" + "\n".join(lines))
    return f"compiled {ex5} ({warnings or 0} warning(s))"


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-folder", help="terminal data folder (or its MQL5 folder)")
    ap.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    ap.add_argument("--libzmq", help="a 64-bit libzmq.dll to install into MQL5/Libraries")
    ap.add_argument("--libzmq-wheel", help="a pyzmq win_amd64 wheel to take libzmq from")
    ap.add_argument("--compile", action="store_true", help="compile with MetaEditor afterwards")
    ap.add_argument("--metaeditor", help="path to MetaEditor64.exe (default: from origin.txt)")
    ap.add_argument(
        "--metaeditor-prefix",
        action="append",
        default=[],
        help="program to run MetaEditor with, e.g. wine (repeatable)",
    )
    ap.add_argument("--timeout", type=float, default=300.0, help="compile timeout, seconds")
    ap.add_argument(
        "--transport",
        choices=("zmq", "http"),
        default="zmq",
        help="the EA's InpTransport (default zmq, as the EA): zmq checks for libzmq.dll",
    )
    args = ap.parse_args(argv)
    if args.libzmq and args.libzmq_wheel:
        ap.error("use either --libzmq or --libzmq-wheel")
    try:
        mql5_dir = resolve_mql5_dir(args.data_folder, os.environ.get("APPDATA"))
        actions = plan_copies(mql5_dir) + plan_libzmq(mql5_dir, args.libzmq, args.libzmq_wheel)
        print(f"MQL5 folder: {mql5_dir}")
        for a in actions:
            kind = "would copy" if args.dry_run and a.kind == "copy" else a.kind
            print(f"  {kind:<10} {a.dst}")
        metaeditor = None
        if args.compile:
            metaeditor = Path(args.metaeditor) if args.metaeditor else find_metaeditor(mql5_dir)
            if metaeditor is None:
                raise InstallError(
                    "MetaEditor64.exe not found through origin.txt; pass --metaeditor"
                )
        warning = libzmq_warning(mql5_dir, actions, args.transport)
        if args.dry_run:
            if metaeditor is not None:
                print(f"  would compile with {metaeditor}")
            if warning:
                print(warning, file=sys.stderr)
            return 0
        execute(actions)
        if warning:
            print(warning, file=sys.stderr)
        if metaeditor is not None:
            print(compile_ea(mql5_dir, metaeditor, args.metaeditor_prefix, args.timeout))
        return 0
    except InstallError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
