"""The Python twin of the EA's Manager runs the same golden vectors as the MQL5 module."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any

import pytest

from sidecar import manager as mg

VECTORS = Path(__file__).resolve().parents[1] / "shared_schema" / "vectors"


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _cases() -> list[Any]:
    out = []
    for path in sorted((VECTORS / "manager").glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        for case in doc["cases"]:
            inp = _merge(doc["defaults"], case.get("given", {}))
            out.append(
                pytest.param(doc["op"], inp, case["expect"], id=f"{path.stem}:{case['name']}")
            )
    return out


def _check(got: dict[str, Any], expect: dict[str, Any]) -> None:
    for key, want in expect.items():
        have = got[key]
        if isinstance(want, (bool, str)):
            assert have == want, f"{key}: {have!r} != {want!r}"
        else:
            assert math.isclose(have, want, rel_tol=1e-9, abs_tol=1e-9), (
                f"{key}: {have!r} != {want!r}"
            )


CASES = _cases()


def test_vectors_exist() -> None:
    assert len(CASES) >= 20


@pytest.mark.parametrize(("op", "inp", "expect"), CASES)
def test_manager_vectors(op: str, inp: dict[str, Any], expect: dict[str, Any]) -> None:
    assert op == "decide"
    a = mg.manager_decide(
        mg.ManagePosition(**inp["position"]),
        mg.ManageMarket(**inp["market"]),
        mg.ManageParams(**inp["params"]),
    )
    got = {
        "close_volume": a.close_volume,
        "modify": a.modify,
        "new_sl": a.new_sl,
        "reason": a.reason,
    }
    _check(got, expect)


def test_defaults_match_manage_params_defaults() -> None:
    assert mg.ManageParams() == mg.ManageParams(1.0, 1.0, 0.5, 2.0, 0.0, 0.0)


def test_unknown_side_is_bad_input() -> None:
    m = mg.ManageMarket(bid=1.1, ask=1.1, atr=0.0, point=1e-5, tick_size=1e-5, digits=5)
    a = mg.manager_decide(mg.ManagePosition("long", 0.1, 1.0, sl=0.9), m, mg.ManageParams())
    assert (a.close_volume, a.modify, a.new_sl, a.reason) == (0.0, False, 0.9, "BAD_INPUT")
