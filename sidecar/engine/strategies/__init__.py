"""Strategy registry: strategies are chosen by name in the config (`[strategy] name = ...`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sidecar.engine.strategies.base import Signal, Strategy

StrategyFactory = Callable[[dict[str, Any]], Strategy]


def _registry() -> dict[str, StrategyFactory]:
    # Imported here so each strategy module stays independent of the others.
    from sidecar.engine.strategies.sma_cross import SmaCrossStrategy

    registry: dict[str, StrategyFactory] = {"sma_cross": SmaCrossStrategy}
    try:
        from sidecar.engine.strategies.resonance import ResonanceStrategy
    except ImportError:  # pragma: no cover - present in every release
        pass
    else:
        registry["resonance"] = ResonanceStrategy
    return registry


def available() -> list[str]:
    return sorted(_registry())


def build_strategy(name: str, params: dict[str, Any]) -> Strategy:
    factories = _registry()
    if name not in factories:
        raise ValueError(
            f"strategy.name: expected one of {', '.join(sorted(factories))}, got {name!r}"
        )
    return factories[name](params)


def strategy_problems(raw_config: dict[str, Any]) -> list[str]:
    """Config check: does the configured strategy exist and accept its parameters?"""
    section = raw_config.get("strategy") or {}
    if not isinstance(section, dict):
        return []  # the config model reports the wrong type
    name = section.get("name", "sma_cross")
    params = section.get("params", {})
    if not isinstance(name, str) or not isinstance(params, dict):
        return []
    try:
        build_strategy(name, params)
    except (ValueError, TypeError) as exc:
        return [str(exc)]
    return []


__all__ = ["Signal", "Strategy", "available", "build_strategy", "strategy_problems"]
