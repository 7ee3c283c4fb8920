"""Risk budget of one trade: base risk x Kelly x volatility x mode, clamped.

    kelly_risk = clamp(kelly_fraction x f x 100, min_risk_pct, max_risk_pct)   (>= kelly_min_trades)
    Kelly multiplier = kelly_risk / risk_pct; 1 below kelly_min_trades or with Kelly disabled
    sized = clamp(risk_pct x Kelly mult x volatility mult, min_risk_pct, max_risk_pct)
    risk = min(sized x mode mult, max_risk_pct)

The mode multiplier (`reducing`) comes last and is not floored: a breaker always lowers the risk,
even below the floor. `halted` never reaches sizing (the mode gate vetoes entries).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from sidecar.config import HARD_MAX_RISK_PCT, Config, SizingConfig
from sidecar.engine import kelly
from sidecar.engine import reasons as R
from sidecar.engine.state import REDUCING, TradeStats


@dataclass(frozen=True)
class RiskBudget:
    risk_pct: float  # percent of equity to lose at the stop; 0 when refused
    refused: str | None = None  # veto reason
    notes: tuple[str, ...] = ()


def journal_estimate(sizing: SizingConfig, trades: TradeStats) -> kelly.KellyEstimate | None:
    """The Kelly estimate of the last `kelly_trades` results; None when Kelly does not apply."""
    results = trades.results[-sizing.kelly_trades :]
    if not sizing.kelly_enabled or len(results) < sizing.kelly_min_trades:
        return None
    return _estimate(tuple(results), sizing.kelly_prior_trades)


@functools.lru_cache(maxsize=256)
def _estimate(results: tuple[float, ...], prior_trades: float) -> kelly.KellyEstimate:
    # Asked on every tick (sizing and the leverage regime) but the journal changes per deal.
    return kelly.estimate(results, prior_trades)


def _clamp(x: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, x))


def risk_budget(cfg: Config, trades: TradeStats, atr_pct: float | None, mode: str) -> RiskBudget:
    s = cfg.sizing
    base = cfg.risk.risk_pct
    lo, hi = s.min_risk_pct, min(cfg.risk.max_risk_pct, HARD_MAX_RISK_PCT)
    notes: list[str] = []

    kelly_mult = 1.0
    est = journal_estimate(s, trades)
    if est is not None:
        context = {"f": round(est.f, 4), "f_raw": round(est.f_raw, 4), "p": round(est.p, 4)}
        context |= {"b": round(est.b, 4), "n": est.n}
        if est.edge:
            wanted = kelly.risk_pct(est, s.kelly_fraction)
            kelly_risk = _clamp(wanted, lo, hi)
            kelly_mult = kelly_risk / base
            notes.append(
                R.reason(
                    R.SIZE_KELLY,
                    **context,
                    fraction=s.kelly_fraction,
                    kelly_risk_pct=round(wanted, 4),
                    risk_pct=round(kelly_risk, 4),
                )
            )
        elif s.no_edge == "refuse":
            return RiskBudget(0.0, R.reason(R.SIZE_NO_EDGE, **context, action="refuse"))
        else:
            kelly_mult = lo / base
            notes.append(R.reason(R.SIZE_NO_EDGE, **context, action="min", risk_pct=lo))

    vol_mult = 1.0
    if atr_pct is not None and atr_pct > s.volatility_top_pct:
        vol_mult = s.volatility_factor
        notes.append(
            R.reason(
                R.SIZE_VOLATILITY,
                atr_pct=round(atr_pct, 2),
                top_pct=s.volatility_top_pct,
                factor=s.volatility_factor,
            )
        )

    product = base * kelly_mult * vol_mult
    sized = _clamp(product, lo, hi)
    if abs(sized - product) > 1e-12:
        notes.append(R.reason(R.SIZE_CLAMPED, risk_from=round(product, 4), risk_to=sized))
    if mode == REDUCING:
        sized *= cfg.risk.reducing_risk_factor  # reported by the mode gate (MODE_REDUCING)
    return RiskBudget(min(sized, hi), None, tuple(notes))
