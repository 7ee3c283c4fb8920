"""Polling for a condition in tests and benchmarks that drive real processes."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_for(what: str, probe: Callable[[], Any], timeout: float = 30.0, every: float = 0.1) -> Any:
    """`probe()`'s first truthy value; AssertionError naming `what` after `timeout` seconds.
    The timeout is only a ceiling for a broken run: a passing one returns as soon as it can."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)
