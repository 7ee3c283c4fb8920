"""Compile the MQL5 logic modules with g++ (through the shim) and run the golden vectors.

The .mqh files under mql5/Include/Sidecar are compiled as C++17 with -Wall -Wextra -Werror;
any warning fails the build. The drivers read their inputs with the Protocol module's own JSON
parser and print results as JSON lines; every vector case is compared with its expectation.
"""

from __future__ import annotations

import copy
import json
import math
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
INCLUDE = ROOT / "mql5" / "Include"
SHIM = Path(__file__).resolve().parent / "shim"
SRC = Path(__file__).resolve().parent / "src"
VECTORS = ROOT / "shared_schema" / "vectors"

CXX = shutil.which("g++")
FLAGS = [
    "-std=c++17",
    "-O1",
    "-Wall",
    "-Wextra",
    "-Werror",
    "-Wshadow",
    "-Wconversion",
    "-Wno-sign-conversion",
]

pytestmark = pytest.mark.skipif(CXX is None, reason="g++ is required for the MQL5 module tests")


def _compile(src: Path, out: Path) -> Path:
    cmd = [CXX, *FLAGS, "-I", str(SHIM), "-I", str(INCLUDE), "-o", str(out), str(src)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    assert proc.returncode == 0 and proc.stderr.strip() == "", (
        f"g++ failed or warned for {src.name}:\n{proc.stderr}"
    )
    return out


@pytest.fixture(scope="session")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("mql5-build")


@pytest.fixture(scope="session")
def vectors_bin(build_dir: Path) -> Path:
    return _compile(SRC / "vectors_driver.cpp", build_dir / "vectors_driver")


@pytest.fixture(scope="session")
def unit_bin(build_dir: Path) -> Path:
    return _compile(SRC / "unit_tests.cpp", build_dir / "unit_tests")


def deep_merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def load_cases(module: str) -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """(case id, op, merged input, expectation) for every case of every file of a module."""
    cases = []
    for path in sorted((VECTORS / module).glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        assert doc["module"] == module
        for case in doc["cases"]:
            merged = deep_merge(doc["defaults"], case.get("given", {}))
            cases.append((f"{path.stem}: {case['name']}", doc["op"], merged, case["expect"]))
    assert cases, f"no vectors for {module}"
    return cases


def run_driver(binary: Path, lines: list[str]) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [str(binary)], input="\n".join(lines) + "\n", capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = [json.loads(x) for x in proc.stdout.splitlines() if x.strip()]
    assert len(out) == len(lines)
    return out


def assert_matches(case_id: str, got: dict[str, Any], expect: dict[str, Any]) -> list[str]:
    errors = []
    for key, want in expect.items():
        have = got.get(key)
        if isinstance(want, (bool, str)) or want is None:
            ok = have == want
        else:
            ok = isinstance(have, (int, float)) and math.isclose(
                have, want, rel_tol=1e-9, abs_tol=1e-9
            )
        if not ok:
            errors.append(f"{case_id}: {key} = {have!r}, expected {want!r}")
    return errors


@pytest.mark.parametrize("module", ["guard", "sizing", "manager"])
def test_vectors(vectors_bin: Path, module: str) -> None:
    cases = load_cases(module)
    lines = [json.dumps({"module": module, "op": op, "input": inp}) for _, op, inp, _ in cases]
    results = run_driver(vectors_bin, lines)
    errors: list[str] = []
    for (case_id, _, _, expect), got in zip(cases, results, strict=True):
        errors += assert_matches(case_id, got, expect)
    assert not errors, "\n".join(errors)


def test_vector_files_cover_boundaries() -> None:
    names = [c[0] for c in load_cases("guard")]
    for rule in (
        "daily loss",
        "floating loss",
        "drawdown",
        "positions open",
        "spread",
        "same signal",
        "max lot",
        "risk cap",
        "leverage room",
        "valid",
    ):
        assert sum(rule in n for n in names) >= 3, f"fewer than 3 boundary cases for {rule}"


def test_unit_checks(unit_bin: Path) -> None:
    proc = subprocess.run([str(unit_bin)], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "checks passed" in proc.stdout
