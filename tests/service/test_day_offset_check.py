"""The EA's broker-day offset (hello `ea.day_offset_hours`) must match the sidecar's.

Otherwise the EA's daily-loss hard limit and the sidecar's daily lock reset at different hours:
the sidecar logs `ea.day_offset_mismatch` and /health reports the EA and turns degraded.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from sidecar.config import load_config
from sidecar.service.handler import Sidecar
from sidecar.service.runner import build
from sidecar.testing import messages as M

T0 = 1734486000


def _sidecar(tmp_path: Path, offset: float) -> Sidecar:
    config = load_config(
        None,
        env={},
        overrides={
            "server": {"db": str(tmp_path / "s.db")},
            "broker": {"day_offset_hours": offset},
        },
    )
    sidecar = build(config)
    sidecar.news_configured = True  # only the offset may degrade /health here
    return sidecar


def _hello(sidecar: Sidecar, offset: float | None, symbol: str = "EURUSD") -> None:
    msg = M.hello(server=T0, spec={**M.EURUSD_SPEC, "name": symbol})
    if offset is not None:
        msg["ea"]["day_offset_hours"] = offset
    reply, code = sidecar.handle(json.dumps(msg).encode())
    assert code is None and json.loads(reply)["type"] == "ack"


def _eas(health: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["symbol"]: e for e in health["eas"]}


def test_a_matching_offset_is_reported_and_healthy(tmp_path: Path) -> None:
    sidecar = _sidecar(tmp_path, 2.0)
    try:
        _hello(sidecar, 2.0)
        health = sidecar.health()
        assert health["status"] == "ok"
        assert health["broker"] == {"day_offset_hours": 2.0}
        ea = _eas(health)["EURUSD"]
        assert ea["day_offset_hours"] == 2.0 and ea["day_offset_matches"] is True
    finally:
        sidecar.close()


def test_a_different_offset_is_logged_and_degrades_health(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sidecar = _sidecar(tmp_path, 0.0)
    try:
        with caplog.at_level(logging.WARNING, logger="sidecar"):
            _hello(sidecar, 2.0, "EURUSD")
            _hello(sidecar, 0.0, "USDJPY")
        warned = [
            r for r in caplog.records if getattr(r, "event", None) == "ea.day_offset_mismatch"
        ]
        assert [(r.symbol, r.ea_day_offset_hours, r.sidecar_day_offset_hours) for r in warned] == [
            ("EURUSD", 2.0, 0.0)
        ]
        health = sidecar.health()
        assert health["status"] == "degraded"
        eas = _eas(health)
        assert eas["EURUSD"]["day_offset_matches"] is False
        assert eas["USDJPY"]["day_offset_matches"] is True

        # A heartbeat keeps what the hello said; a corrected hello (the EA's input changed and
        # the EA re-attached) clears it.
        hb = {
            "v": 1,
            "type": "heartbeat",
            "id": "hb-1",
            "login": M.hello()["account"]["login"],
            "symbol": "EURUSD",
            "time": {"server": T0 + 60, "gmt": T0 + 60},
        }
        _, code = sidecar.handle(json.dumps(hb).encode())
        assert code is None
        assert _eas(sidecar.health())["EURUSD"]["day_offset_matches"] is False
        _hello(sidecar, 0.0, "EURUSD")
        assert sidecar.health()["status"] == "ok"
    finally:
        sidecar.close()


def test_offsets_a_whole_day_apart_start_the_day_at_the_same_hour(tmp_path: Path) -> None:
    sidecar = _sidecar(tmp_path, -1.0)
    try:
        _hello(sidecar, 23.0)  # 23:00 server time on both sides
        health = sidecar.health()
        assert health["status"] == "ok"
        assert _eas(health)["EURUSD"]["day_offset_matches"] is True
    finally:
        sidecar.close()


def test_an_ea_that_does_not_say_is_not_judged(tmp_path: Path) -> None:
    sidecar = _sidecar(tmp_path, 2.0)
    try:
        _hello(sidecar, None)
        health = sidecar.health()
        assert health["status"] == "ok"
        assert "day_offset_matches" not in _eas(health)["EURUSD"]
    finally:
        sidecar.close()


@pytest.mark.parametrize("offset", [23.5, -24.0, "2"])
def test_a_bad_offset_is_refused_naming_the_field(tmp_path: Path, offset: object) -> None:
    sidecar = _sidecar(tmp_path, 0.0)
    try:
        msg = M.hello(server=T0)
        msg["ea"]["day_offset_hours"] = offset
        reply, status = sidecar.handle(json.dumps(msg).encode())
        assert status == "BAD_REQUEST"
        error = json.loads(reply)["error"]
        assert error["code"] == "BAD_REQUEST"
        assert "ea.day_offset_hours" in error["message"]
    finally:
        sidecar.close()
