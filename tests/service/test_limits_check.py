"""The EA's hard limits (hello `ea.limits`) against the sidecar's configuration (issue 16).

A looser one is logged (`ea.limits_looser`) and /health lists it and turns degraded; an EA that
does not send them (older than the field) is accepted and /health says `limits_status: unknown`,
not degraded. The cases are the golden vectors the MQL5 hello builder is tested against too
(shared_schema/vectors/protocol/hello_limits.json).
"""

from __future__ import annotations

import copy
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
VECTORS = Path(__file__).resolve().parents[2] / "shared_schema" / "vectors" / "protocol"
DOC = json.loads((VECTORS / "hello_limits.json").read_text(encoding="utf-8"))


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


CASES = [
    pytest.param(_merge(DOC["defaults"], c.get("given", {})), c["expect"], id=c["name"])
    for c in DOC["cases"]
]


def _sidecar(tmp_path: Path, overrides: dict[str, Any] | None = None) -> Sidecar:
    config = load_config(
        None,
        env={},
        overrides=_merge({"server": {"db": str(tmp_path / "s.db")}}, overrides or {}),
    )
    sidecar = build(config)
    sidecar.news_configured = True  # only the limits may degrade /health here
    return sidecar


def _hello(sidecar: Sidecar, limits: dict[str, Any] | None, symbol: str = "EURUSD") -> None:
    msg = M.hello(server=T0, spec={**M.EURUSD_SPEC, "name": symbol})
    if limits is not None:
        msg["ea"]["limits"] = limits
    reply, code = sidecar.handle(json.dumps(msg).encode())
    assert code is None and json.loads(reply)["type"] == "ack", reply


def _eas(health: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["symbol"]: e for e in health["eas"]}


def test_vectors_cover_every_limit() -> None:
    looser = {name for c in DOC["cases"] for name in c["expect"]["looser"]}
    assert looser == set(DOC["defaults"]["ea_limits"])


@pytest.mark.parametrize(("inp", "expect"), CASES)
def test_golden_vectors(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, inp: dict[str, Any], expect: dict[str, Any]
) -> None:
    sidecar = _sidecar(tmp_path, inp["sidecar"])
    try:
        with caplog.at_level(logging.INFO, logger="sidecar"):
            _hello(sidecar, inp["ea_limits"])
        health = sidecar.health()
        ea = _eas(health)["EURUSD"]
        assert ea["limits_status"] == expect["limits_status"]
        assert ea["limits"] == inp["ea_limits"]
        got = [x["limit"] for x in ea.get("limits_looser", [])]
        assert got == expect["looser"]
        warned = [r for r in caplog.records if getattr(r, "event", None) == "ea.limits_looser"]
        if expect["looser"]:
            assert health["status"] == "degraded"
            assert len(health["problems"]) == len(expect["looser"])
            assert all("looser than the sidecar's" in p for p in health["problems"])
            assert [[x["limit"] for x in r.looser] for r in warned] == [expect["looser"]]
            assert warned[0].levelno == logging.WARNING
        else:
            assert health["status"] == "ok", health["problems"]
            assert warned == []
    finally:
        sidecar.close()


def test_health_names_the_values_and_the_config_key(tmp_path: Path) -> None:
    sidecar = _sidecar(tmp_path, {"risk": {"equity_floor_pct": 90.0}})
    try:
        limits = {**DOC["defaults"]["ea_limits"], "daily_loss_pct": 5.0}
        _hello(sidecar, limits)
        health = sidecar.health()
        assert health["ea_limits"] == {
            "max_risk_pct": 2.0,
            "max_leverage": 500,
            "daily_loss_pct": 3.0,
            "floating_loss_pct": 10.0,
            "max_drawdown_pct": 15.0,
            "max_positions": 3,
            "equity_floor_pct": 90.0,
        }
        assert _eas(health)["EURUSD"]["limits_looser"] == [
            {"limit": "daily_loss_pct", "ea": 5.0, "sidecar": 3.0, "config": "risk.daily_loss_pct"},
            {
                "limit": "equity_floor_pct",
                "ea": 0.0,
                "sidecar": 90.0,
                "config": "risk.equity_floor_pct",
            },
        ]
        assert health["problems"] == [
            "ea 12345678/EURUSD: EA hard limit daily_loss_pct 5 is looser than the sidecar's "
            "(above risk.daily_loss_pct 3)",
            "ea 12345678/EURUSD: EA hard limit equity_floor_pct 0 is looser than the sidecar's "
            "(below risk.equity_floor_pct 90)",
        ]
    finally:
        sidecar.close()


def test_an_older_ea_without_limits_is_accepted_and_unknown_not_degraded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sidecar = _sidecar(tmp_path, {"risk": {"equity_floor_pct": 90.0}})
    try:
        with caplog.at_level(logging.INFO, logger="sidecar"):
            _hello(sidecar, None)
        health = sidecar.health()
        assert health["status"] == "ok", health["problems"]
        ea = _eas(health)["EURUSD"]
        assert ea["limits_status"] == "unknown"
        assert "limits" not in ea and "limits_looser" not in ea
        events = [getattr(r, "event", None) for r in caplog.records]
        assert "ea.limits_unknown" in events and "ea.limits_looser" not in events
    finally:
        sidecar.close()


def test_a_heartbeat_keeps_the_limits_and_a_corrected_hello_clears_them(tmp_path: Path) -> None:
    sidecar = _sidecar(tmp_path)
    try:
        loose = {**DOC["defaults"]["ea_limits"], "max_positions": 5}
        _hello(sidecar, loose, "EURUSD")
        _hello(sidecar, DOC["defaults"]["ea_limits"], "USDJPY")
        hb = M.heartbeat(M.hello()["account"]["login"], "EURUSD", T0 + 60, msg_id="hb-1")
        _, code = sidecar.handle(json.dumps(hb).encode())
        assert code is None
        eas = _eas(sidecar.health())
        assert eas["EURUSD"]["limits_status"] == "looser"
        assert eas["USDJPY"]["limits_status"] == "ok"
        _hello(sidecar, DOC["defaults"]["ea_limits"], "EURUSD")  # the input fixed, re-attached
        assert sidecar.health()["status"] == "ok"
    finally:
        sidecar.close()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("daily_loss_pct", 0.0),
        ("daily_loss_pct", 150.0),
        ("max_positions", 0),
        ("max_positions", 2.5),
        ("max_leverage", 0.5),
        ("equity_floor_pct", 100.0),
        ("max_risk_pct", "2"),
    ],
)
def test_a_bad_limit_is_refused_naming_the_field(tmp_path: Path, field: str, value: object) -> None:
    sidecar = _sidecar(tmp_path)
    try:
        msg = M.hello(server=T0)
        msg["ea"]["limits"] = {**DOC["defaults"]["ea_limits"], field: value}
        reply, status = sidecar.handle(json.dumps(msg).encode())
        assert status == "BAD_REQUEST"
        assert f"ea.limits.{field}" in json.loads(reply)["error"]["message"]
    finally:
        sidecar.close()


def test_a_partial_limits_object_is_refused(tmp_path: Path) -> None:
    sidecar = _sidecar(tmp_path)
    try:
        msg = M.hello(server=T0)
        msg["ea"]["limits"] = {
            k: v for k, v in DOC["defaults"]["ea_limits"].items() if k != "max_positions"
        }
        reply, status = sidecar.handle(json.dumps(msg).encode())
        assert status == "BAD_REQUEST"
        assert "max_positions" in json.loads(reply)["error"]["message"]
    finally:
        sidecar.close()
