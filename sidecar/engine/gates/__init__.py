"""The decision pipeline: small pure gates, run in a fixed order.

A gate is a function `(GateContext) -> Outcome | None`, registered with `@gate(order, phase)` in
its own module in this package; every module here is imported automatically, so adding a gate
touches one file. Phases:

- `account` gates run on every tick, signal or not: they report locks (vetoes) and notes, and may
  tighten the leverage cap, so every verdict tells the EA what currently blocks entries.
- `order` gates run only when there is a proposed entry and no account gate vetoed it: they may
  veto it or return an adjusted proposal (a wider stop, a smaller volume).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import msgspec

from sidecar.config import Config
from sidecar.engine.state import AccountState, Snapshot
from sidecar.protocol import Tick

Phase = Literal["account", "order"]


@dataclass(frozen=True)
class Proposal:
    """An entry being shaped by the order gates."""

    side: str
    entry: float  # ask for a buy, bid for a sell
    sl_distance: float
    tp_distance: float
    signal_id: str
    risk_pct: float = 0.0
    volume: float = 0.0
    loss_per_lot: float = 0.0  # account money lost per lot at the stop

    @property
    def sl(self) -> float:
        return (
            self.entry - self.sl_distance if self.side == "buy" else self.entry + self.sl_distance
        )

    @property
    def tp(self) -> float:
        return (
            self.entry + self.tp_distance if self.side == "buy" else self.entry - self.tp_distance
        )


@dataclass(slots=True)
class GateContext:
    """What a gate sees. Gates must not modify it; `run` updates `leverage_cap` and `proposal`
    in place between gates (copying the context per gate cost ~3 µs a tick), so build a fresh
    context for every run."""

    tick: Tick
    snap: Snapshot
    state: AccountState  # after this tick's observation (anchors, mode, locks updated)
    config: Config
    leverage_cap: int
    proposal: Proposal | None = None


class Outcome(msgspec.Struct, frozen=True, gc=False):
    """What one gate says (a msgspec struct: built on every tick, ~10x cheaper than a frozen
    dataclass)."""

    veto: str | None = None  # a reason that blocks new entries
    notes: tuple[str, ...] = ()  # reasons that inform (adjustments, modes, regimes)
    proposal: Proposal | None = None  # the adjusted entry (order gates)
    leverage_cap: int | None = None  # a tighter cap (account gates)


@dataclass(frozen=True)
class Gate:
    order: int
    phase: Phase
    name: str
    fn: Callable[[GateContext], Outcome | None]


class PipelineResult(msgspec.Struct, gc=False):
    vetoes: list[str] = msgspec.field(default_factory=list)
    notes: list[str] = msgspec.field(default_factory=list)
    proposal: Proposal | None = None
    leverage_cap: int = 0


_GATES: list[Gate] = []
# The gate functions of each phase in order, kept beside _GATES so that `run`, which runs on
# every tick, loops over plain functions without testing each gate's phase.
_ACCOUNT: list[Callable[[GateContext], Outcome | None]] = []
_ORDER: list[Callable[[GateContext], Outcome | None]] = []


def gate(order: int, phase: Phase) -> Callable[[Callable[[GateContext], Outcome | None]], Callable]:
    def register(fn: Callable[[GateContext], Outcome | None]) -> Callable:
        name = f"{fn.__module__.rsplit('.', 1)[-1]}.{fn.__name__}"
        others = [g for g in _GATES if g.phase != phase]
        if any((g.order < order) == (phase == "account") for g in others):
            raise ValueError(f"gate {name}: account gates must be numbered below order gates")
        _GATES.append(Gate(order, phase, name, fn))
        _GATES.sort(key=lambda g: (g.order, g.name))
        _ACCOUNT[:] = [g.fn for g in _GATES if g.phase == "account"]
        _ORDER[:] = [g.fn for g in _GATES if g.phase == "order"]
        return fn

    return register


def _load_all() -> None:
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")


def gates() -> list[Gate]:
    return list(_GATES)


def run(ctx: GateContext) -> PipelineResult:
    """Account gates always, in order; then order gates while there is an entry and no veto
    (`gate` refuses an order gate numbered below an account gate, so this is the gate order)."""
    result = PipelineResult(leverage_cap=ctx.leverage_cap)
    for fn in _ACCOUNT:
        out = fn(ctx)
        if out is not None:
            _apply(ctx, result, out)
    if ctx.proposal is not None and not result.vetoes:
        for fn in _ORDER:
            out = fn(ctx)
            if out is not None:
                _apply(ctx, result, out)
            if result.vetoes:
                break
    result.proposal = None if result.vetoes else ctx.proposal
    return result


def _apply(ctx: GateContext, result: PipelineResult, out: Outcome) -> None:
    if out.notes:
        result.notes.extend(out.notes)
    if out.leverage_cap is not None and out.leverage_cap < result.leverage_cap:
        result.leverage_cap = ctx.leverage_cap = out.leverage_cap
    if out.veto is not None:
        result.vetoes.append(out.veto)
    if out.proposal is not None:
        ctx.proposal = out.proposal


_load_all()
