"""Headless Chromium for the tests that open our pages as a trader would (Debian's `chromium`;
`CHROMIUM=/path` picks another build). A missing browser fails the test: CI installs it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path


def chromium() -> str:
    for candidate in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome"):
        if candidate and shutil.which(candidate):
            return str(shutil.which(candidate))
    raise RuntimeError(
        "Chromium not found: install the Debian package `chromium` (apt-get install -y chromium) "
        "or set CHROMIUM=/path/to/chrome. The page tests need a real headless browser."
    )


def run_chromium(
    target: str,
    profile: Path,
    *args: str,
    window: tuple[int, int] = (1280, 2400),
    budget_ms: int = 5000,
) -> subprocess.CompletedProcess[str]:
    """Open `target` (a URL) headless with a fresh profile; `args` add `--dump-dom` or
    `--screenshot=FILE`. `budget_ms` of virtual time lets the page's scripts and fetches run."""
    cmd = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-extensions",
        "--hide-scrollbars",
        "--force-device-scale-factor=1",
        f"--user-data-dir={profile}",
        f"--window-size={window[0]},{window[1]}",
        f"--virtual-time-budget={budget_ms}",
        "--enable-logging=stderr",
        "--v=0",
        *args,
        target,
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"chromium failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return proc
