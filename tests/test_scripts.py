"""scripts/bootstrap.sh installs only when constraints.txt / pyproject.toml (or the extra) changed.

Each test works on a copy of the three files it reads, with a real venv created without pip: a
bootstrap that tries to install fails there (no pip, no package index), so a successful run is
proof that nothing was installed. The first real install (network, ~20 s) is not repeated here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OFFLINE = {"PIP_INDEX_URL": "http://127.0.0.1:9/simple", "PIP_NO_INDEX": "1"}

pytestmark = pytest.mark.skipif(
    sys.platform == "win32" or shutil.which("bash") is None, reason="bash scripts (Linux/macOS)"
)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "bootstrap.sh", tmp_path / "scripts")
    shutil.copy(ROOT / "scripts" / "serve.sh", tmp_path / "scripts")
    shutil.copy(ROOT / "constraints.txt", tmp_path)
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(tmp_path / ".venv")], check=True
    )
    return tmp_path


def _bootstrap(project: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    out = subprocess.run(
        ["bash", str(project / "scripts" / "bootstrap.sh"), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **OFFLINE},
    )
    return out, time.monotonic() - started


def test_a_second_start_installs_nothing_and_needs_no_network(project: Path) -> None:
    stamp = project / ".venv" / ".sidecar-install"
    out, _ = _bootstrap(project, "--check")
    assert out.returncode == 1 and "install needed" in out.stdout
    # No stamp yet: a real install is attempted (and fails offline, leaving no stamp behind).
    out, _ = _bootstrap(project)
    assert out.returncode != 0 and "bootstrap: installing" in out.stdout
    assert not stamp.exists()

    # As after a successful first install.
    out, _ = _bootstrap(project, "--mark-installed")
    assert out.returncode == 0, out.stderr
    recorded = stamp.read_text()
    out, seconds = _bootstrap(project)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "installing" not in out.stdout + out.stderr  # pip was not run (there is none)
    assert seconds < 5
    assert stamp.read_text() == recorded
    out, _ = _bootstrap(project, "--check")
    assert out.returncode == 0 and "up to date (runtime)" in out.stdout


def test_changed_constraints_install_again(project: Path) -> None:
    assert _bootstrap(project, "--mark-installed")[0].returncode == 0
    assert _bootstrap(project, "--check")[0].returncode == 0
    constraints = project / "constraints.txt"
    constraints.write_text(constraints.read_text().replace("orjson==", "orjson==0.0.1\n#"))
    out, _ = _bootstrap(project, "--check")
    assert out.returncode == 1 and "install needed" in out.stdout
    out, _ = _bootstrap(project)
    assert out.returncode != 0 and "bootstrap: installing" in out.stdout  # offline: pip fails
    assert _bootstrap(project, "--check")[0].returncode == 1  # still due next time


def test_pyproject_and_the_dev_extra_count_too(project: Path) -> None:
    assert _bootstrap(project, "--mark-installed")[0].returncode == 0
    # A runtime-only install does not cover the dev extra ...
    out, _ = _bootstrap(project, "--check", "dev")
    assert out.returncode == 1 and "install needed (dev)" in out.stdout
    # ... a dev install covers both.
    assert _bootstrap(project, "--mark-installed", "dev")[0].returncode == 0
    assert _bootstrap(project, "--check", "dev")[0].returncode == 0
    assert _bootstrap(project, "--check")[0].returncode == 0
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text() + "\n# changed\n")
    assert _bootstrap(project, "--check")[0].returncode == 1
    assert _bootstrap(project, "--check", "dev")[0].returncode == 1
    out, _ = _bootstrap(project, "nonsense")
    assert out.returncode == 2 and "unknown extra" in out.stderr
