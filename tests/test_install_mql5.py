"""scripts/install_mql5.py against a fake MetaTrader 5 data-folder tree and a fake MetaEditor."""

from __future__ import annotations

import importlib.util
import os
import sys
import textwrap
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "install_mql5", ROOT / "scripts" / "install_mql5.py"
    )
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules["install_mql5"] = mod
    spec.loader.exec_module(mod)
    return mod


inst = _load()

SOURCES = [
    ROOT / "mql5" / "Experts" / "SidecarEA.mq5",
    *sorted((ROOT / "mql5" / "Include" / "Sidecar").glob("*.mqh")),
]


def make_terminal(appdata: Path, name: str, install_dir: Path | None = None) -> Path:
    data = appdata / "MetaQuotes" / "Terminal" / name
    for sub in ("Experts", "Include", "Libraries", "Files"):
        (data / "MQL5" / sub).mkdir(parents=True)
    if install_dir is not None:
        (data / "origin.txt").write_bytes(str(install_dir).encode("utf-16"))
    return data


@pytest.fixture
def appdata(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "Roaming"
    monkeypatch.setenv("APPDATA", str(root))
    return root


def installed(data: Path) -> list[Path]:
    mql5 = data / "MQL5"
    return [
        mql5 / "Experts" / "SidecarEA.mq5",
        *[mql5 / "Include" / "Sidecar" / p.name for p in SOURCES[1:]],
    ]


def test_finds_the_single_terminal_and_copies(
    appdata: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_terminal(appdata, "D0E8209F77C8CF37AD8BF550E51FF075")
    assert inst.main([]) == 0
    for src, dst in zip(SOURCES, installed(data), strict=True):
        assert dst.read_bytes() == src.read_bytes()
    assert "copy" in capsys.readouterr().out
    # a second run finds everything in place
    assert inst.main([]) == 0
    out = capsys.readouterr().out
    assert "unchanged" in out and " copy " not in out


def test_dry_run_changes_nothing(appdata: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = make_terminal(appdata, "ABC")
    assert inst.main(["--dry-run"]) == 0
    assert "would copy" in capsys.readouterr().out
    assert not any(p.exists() for p in installed(data))


def test_several_terminals_need_a_choice(appdata: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a = make_terminal(appdata, "AAA")
    b = make_terminal(appdata, "BBB")
    assert inst.main([]) == 2
    err = capsys.readouterr().err
    assert str(a) in err and str(b) in err and "--data-folder" in err
    # the data folder or its MQL5 folder both work
    assert inst.main(["--data-folder", str(b)]) == 0
    assert all(p.exists() for p in installed(b))
    assert inst.main(["--data-folder", str(a / "MQL5")]) == 0
    assert all(p.exists() for p in installed(a))


def test_missing_data_folder_is_explained(
    tmp_path: Path, appdata: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert inst.main([]) == 2
    assert "no MetaTrader 5 data folder" in capsys.readouterr().err
    assert inst.main(["--data-folder", str(tmp_path / "nowhere")]) == 2
    assert "Open Data Folder" in capsys.readouterr().err


def test_libzmq_from_a_wheel_with_its_dependencies(tmp_path: Path, appdata: Path) -> None:
    data = make_terminal(appdata, "ABC")
    wheel = tmp_path / "pyzmq-25.1.2-cp311-cp311-win_amd64.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("pyzmq.libs/libzmq-v141-mt-4_3_4-0a6f51ca.dll", b"ZMQ")
        z.writestr("pyzmq.libs/libsodium-ac42d648.dll", b"SODIUM")
        z.writestr("zmq/backend/cython/socket.cp311-win_amd64.pyd", b"PYD")
    assert inst.main(["--libzmq-wheel", str(wheel)]) == 0
    libs = data / "MQL5" / "Libraries"
    assert (libs / "libzmq.dll").read_bytes() == b"ZMQ"
    assert (libs / "libsodium-ac42d648.dll").read_bytes() == b"SODIUM"
    assert not (libs / "socket.cp311-win_amd64.pyd").exists()


def test_wheel_without_libzmq_is_refused(
    tmp_path: Path, appdata: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_terminal(appdata, "ABC")
    wheel = tmp_path / "pyzmq-27.3.0-cp312-abi3-win_amd64.whl"
    with zipfile.ZipFile(wheel, "w") as z:
        z.writestr("zmq/backend/cython/_zmq.pyd", b"PYD")
    assert inst.main(["--libzmq-wheel", str(wheel)]) == 2
    assert "statically" in capsys.readouterr().err


def test_libzmq_from_a_file(tmp_path: Path, appdata: Path) -> None:
    data = make_terminal(appdata, "ABC")
    dll = tmp_path / "libzmq-mt-4_3_5.dll"
    dll.write_bytes(b"DLL")
    assert inst.main(["--libzmq", str(dll)]) == 0
    assert (data / "MQL5" / "Libraries" / "libzmq.dll").read_bytes() == b"DLL"


FAKE_METAEDITOR = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    args = dict(a[1:].split(":", 1) for a in sys.argv[1:] if ":" in a)
    mode = Path(__file__).with_suffix(".mode").read_text()
    src = Path(args["compile"])
    assert Path(args["include"]).name == "MQL5"
    errors = 1 if mode == "error" else 0
    if mode != "nolog":
        Path(args["log"]).write_bytes(
            ("\\ufeff" + src.name + " : information: compiling\\r\\n"
             f"Result: {errors} errors, 2 warnings, 180 msec elapsed\\r\\n").encode("utf-16-le"))
    if mode in ("ok", "exit1"):
        src.with_suffix(".ex5").write_bytes(b"EX5")
    sys.exit(1 if mode == "exit1" else 0)
    """
)


@pytest.fixture
def metaeditor(tmp_path: Path) -> Path:
    install = tmp_path / "Program Files" / "MetaTrader 5"
    install.mkdir(parents=True)
    script = install / "MetaEditor64.exe"  # a Python script run through --metaeditor-prefix
    script.write_text(FAKE_METAEDITOR)
    return script


def _compile(mode: str, metaeditor: Path, extra: list[str]) -> int:
    metaeditor.with_suffix(".mode").write_text(mode)
    return inst.main(["--compile", "--metaeditor-prefix", sys.executable, *extra])


@pytest.mark.parametrize(
    ("mode", "rc"), [("ok", 0), ("exit1", 0), ("error", 2), ("noex5", 2), ("nolog", 2)]
)
def test_compile_success_is_zero_errors_and_a_fresh_ex5(
    appdata: Path, metaeditor: Path, mode: str, rc: int, capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_terminal(appdata, "ABC", install_dir=metaeditor.parent)
    # MetaEditor64.exe is found through origin.txt (UTF-16) -> no --metaeditor needed
    assert _compile(mode, metaeditor, []) == rc
    out, err = capsys.readouterr()
    if rc == 0:
        assert "compiled" in out and "2 warning(s)" in out
        assert (data / "MQL5" / "Experts" / "SidecarEA.ex5").exists()
    else:
        assert "error:" in err


def test_stale_ex5_is_not_success(appdata: Path, metaeditor: Path) -> None:
    data = make_terminal(appdata, "ABC")
    old = data / "MQL5" / "Experts" / "SidecarEA.ex5"
    old.write_bytes(b"OLD")
    os.utime(old, (1_000_000_000, 1_000_000_000))
    assert _compile("noex5", metaeditor, ["--metaeditor", str(metaeditor)]) == 2


def test_log_parsing() -> None:
    assert inst.parse_log("Result: 0 errors, 3 warnings, 120 msec elapsed") == (0, 3)
    assert inst.parse_log("x.mq5(1,2) : error 256: undeclared\n1 error(s), 0 warning(s)") == (1, 0)
    assert inst.parse_log("nothing here") == (None, None)


# ------------------------------------------------------------------ libzmq.dll warning


def test_warns_when_the_zeromq_transport_has_no_libzmq_dll(
    tmp_path: Path, appdata: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = make_terminal(appdata, "ABC")
    libs = data / "MQL5" / "Libraries"
    # The default transport is ZeroMQ and the repository ships no DLL: warned, still installed.
    assert inst.main([]) == 0
    err = capsys.readouterr().err
    assert "warning: no libzmq.dll in" in err and str(libs) in err
    assert "--libzmq-wheel" in err and "InpTransport = HTTP" in err
    assert all(p.exists() for p in installed(data))
    assert inst.main(["--dry-run"]) == 0  # the plan says it too
    assert "warning: no libzmq.dll" in capsys.readouterr().err
    # HTTP needs no DLL.
    assert inst.main(["--transport", "http"]) == 0
    assert "libzmq" not in capsys.readouterr().err
    # A DLL installed now, or already in place: no warning.
    dll = tmp_path / "libzmq-mt-4_3_5.dll"
    dll.write_bytes(b"DLL")
    assert inst.main(["--dry-run", "--libzmq", str(dll)]) == 0
    assert "warning" not in capsys.readouterr().err
    assert inst.main(["--libzmq", str(dll)]) == 0
    assert "warning" not in capsys.readouterr().err
    assert inst.main([]) == 0
    assert "warning" not in capsys.readouterr().err
    assert (libs / "libzmq.dll").is_file()
