"""The service log under a flood of garbage: diagnosable, but bounded."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from sidecar.config import Config
from sidecar.service.handler import INVALID_LOG_LINES, Sidecar
from sidecar.store import Store


def test_a_flood_of_invalid_requests_logs_a_bounded_number_of_lines(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Every invalid request is answered and counted, but only the first lines of a burst are
    logged; one closing line says how many were left out."""
    sidecar = Sidecar(Config(), Store(tmp_path / "s.sqlite"))
    caplog.set_level(logging.WARNING, logger="sidecar.service")
    try:
        for n in range(200):
            reply, code = sidecar.handle(b'{"v":1,"type":"tick","id":"x%d"' % n, "zmq")
            assert code == "BAD_JSON" and b'"BAD_JSON"' in reply
    finally:
        sidecar.close()
    events = [getattr(r, "event", None) for r in caplog.records]
    assert events.count("request.invalid") == INVALID_LOG_LINES
    summary = [
        r for r in caplog.records if getattr(r, "event", None) == "request.invalid_suppressed"
    ]
    assert len(summary) == 1 and summary[0].suppressed == 200 - INVALID_LOG_LINES
    assert "left out" in summary[0].getMessage()
