"""The gate registry: order, phases, and the numbering rule that keeps `run` simple."""

from __future__ import annotations

import pytest

from sidecar.engine import gates
from sidecar.engine.rounding import round9


def test_gates_run_in_their_numbered_order_account_phase_first() -> None:
    registered = gates.gates()
    assert [g.order for g in registered] == sorted(g.order for g in registered)
    phases = [g.phase for g in registered]
    assert phases == sorted(phases)  # "account" < "order": every account gate comes first
    assert [g.name for g in registered][:3] == [
        "mode.breaker_mode",
        "open_risk.equity_floor",
        "daily_loss.daily_loss_lock",
    ]


@pytest.mark.parametrize(("order", "phase"), [(5, "order"), (500, "account")])
def test_a_gate_numbered_across_the_phase_boundary_is_refused(order: int, phase: str) -> None:
    before = gates.gates()
    with pytest.raises(ValueError, match="account gates must be numbered below order gates"):
        gates.gate(order, phase)(lambda ctx: None)  # type: ignore[arg-type]
    assert gates.gates() == before  # nothing half-registered


@pytest.mark.parametrize(
    ("x", "expected"),
    [
        (100.0 * (1.0 - 9000.0 / 10000.0), 10.0),  # 9.999999999999998: binary noise
        (100.0 * (10000.0 - 9700.0) / 10000.0, 3.0),
        (2.9999999994, 2.999999999),
        (-0.0000000004, 0.0),
        (float("inf"), float("inf")),
    ],
)
def test_round9_removes_binary_noise_like_round_x_9(x: float, expected: float) -> None:
    assert round9(x) == expected
    if x != float("inf"):
        assert round9(x) == round(x, 9)
