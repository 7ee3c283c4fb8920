"""`leverage.regime` is logged when an account's regime changes (with the one before), once."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from sidecar.config import load_config
from sidecar.service.runner import build
from sidecar.testing import messages as M

T0 = 1734486000


def test_regime_changes_are_logged_once_each(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = load_config(None, env={}, overrides={"server": {"db": str(tmp_path / "s.db")}})
    sidecar = build(config)
    try:
        sidecar.handle(json.dumps(M.hello(server=T0)).encode())
        # 10,000 (normal), then 9,400: drawdown 6% > 5% -> defensive, held, then back to normal.
        equities = [10_000.0, 10_000.0, 9_400.0, 9_400.0, 9_400.0, 10_000.0]
        with caplog.at_level(logging.INFO, logger="sidecar"):
            for i, equity in enumerate(equities):
                tick = M.tick(T0 + 60 + i, 1.1, 1.1001, equity=equity, msg_id=f"t-{i}")
                _, code = sidecar.handle(json.dumps(tick).encode())
                assert code is None
                sidecar.after_reply()
        changes = [
            (r.regime, r.previous)
            for r in caplog.records
            if getattr(r, "event", None) == "leverage.regime"
        ]
        assert changes == [("normal", None), ("defensive", "normal"), ("normal", "defensive")]
    finally:
        sidecar.close()
