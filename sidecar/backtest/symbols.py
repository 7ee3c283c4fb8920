"""Instrument specifications for the backtester: presets by name, or a small TOML file.

Presets are typical MetaTrader 5 values of a USD account at an ECN / raw-spread broker
(JustMarkets Raw Spread, IC Markets Raw and the like, 2024-2025): contract sizes, digits and volume
limits are the industry's standard ones; commission and swaps are representative, not any one
broker's current numbers (swaps change weekly with interest rates). For exact results, copy the
values the terminal shows (Market Watch > Specification) into a spec file, see
``configs/symbols/example.toml``.

Conventions (those of `InstrumentSpec`): commission in account money per lot per side (a positive
number, charged as a negative); swaps in points per lot per night (MT5 swap mode "in points"),
negative = paid; `triple_swap_day` 0 = Monday .. 6 = Sunday (MT5's SYMBOL_SWAP_ROLLOVER3DAYS counts
0 = Sunday: its 3 = Wednesday is our 2); `spread_points` None = each bar's own spread.

`tick_value` is the money value of one tick for one lot in the ACCOUNT currency. It is constant
when the quote currency is the account currency (EURUSD, XAUUSD, US500 on a USD account). When
the base currency is the account currency (USDJPY on a USD account) it moves with the price: the
preset holds it at a reference price and `tick_value_at` recomputes it per bar as
``tick_size * contract_size / price``.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import msgspec

from sidecar.backtest.model import InstrumentSpec
from sidecar.protocol import SymbolSpec

EXAMPLE_SPEC = "configs/symbols/example.toml"

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
WEDNESDAY = 2
FRIDAY = 4

USDJPY_REFERENCE_PRICE = 150.0


def _symbol(**values: Any) -> SymbolSpec:
    # msgspec.convert checks every constraint of SymbolSpec (a plain constructor call does not).
    return msgspec.convert(values, SymbolSpec)


PRESETS: dict[str, InstrumentSpec] = {
    "EURUSD": InstrumentSpec(
        symbol=_symbol(
            name="EURUSD",
            base="EUR",
            quote="USD",
            digits=5,
            point=0.00001,
            tick_size=0.00001,
            tick_value=1.0,  # 0.00001 * 100000 USD
            contract_size=100_000.0,
            volume_min=0.01,
            volume_step=0.01,
            volume_max=100.0,
            stops_level=0,
            freeze_level=0,
        ),
        commission_per_lot=3.0,
        swap_long=-7.0,
        swap_short=2.5,
        triple_swap_day=WEDNESDAY,
    ),
    "GBPUSD": InstrumentSpec(
        symbol=_symbol(
            name="GBPUSD",
            base="GBP",
            quote="USD",
            digits=5,
            point=0.00001,
            tick_size=0.00001,
            tick_value=1.0,
            contract_size=100_000.0,
            volume_min=0.01,
            volume_step=0.01,
            volume_max=100.0,
            stops_level=0,
            freeze_level=0,
        ),
        commission_per_lot=3.0,
        swap_long=-3.5,
        swap_short=-1.0,
        triple_swap_day=WEDNESDAY,
    ),
    "USDJPY": InstrumentSpec(
        symbol=_symbol(
            name="USDJPY",
            base="USD",
            quote="JPY",
            digits=3,
            point=0.001,
            tick_size=0.001,
            # 1 tick = 100 JPY per lot = 100 / price USD; at the reference price 150.000:
            tick_value=round(0.001 * 100_000 / USDJPY_REFERENCE_PRICE, 6),
            contract_size=100_000.0,
            volume_min=0.01,
            volume_step=0.01,
            volume_max=100.0,
            stops_level=0,
            freeze_level=0,
        ),
        commission_per_lot=3.0,
        swap_long=14.0,
        swap_short=-30.0,
        triple_swap_day=WEDNESDAY,
    ),
    "XAUUSD": InstrumentSpec(
        symbol=_symbol(
            name="XAUUSD",
            base="XAU",
            quote="USD",
            digits=2,
            point=0.01,
            tick_size=0.01,
            tick_value=1.0,  # 0.01 * 100 oz
            contract_size=100.0,
            volume_min=0.01,
            volume_step=0.01,
            volume_max=100.0,
            stops_level=0,
            freeze_level=0,
        ),
        commission_per_lot=3.0,
        swap_long=-40.0,
        swap_short=15.0,
        triple_swap_day=WEDNESDAY,
    ),
    "US500": InstrumentSpec(
        symbol=_symbol(
            name="US500",
            base="",
            quote="USD",
            digits=2,
            point=0.01,
            tick_size=0.01,
            tick_value=0.01,  # contract 1: one index point = 1 USD per lot
            contract_size=1.0,
            volume_min=0.1,
            volume_step=0.1,
            volume_max=500.0,
            stops_level=0,
            freeze_level=0,
        ),
        commission_per_lot=0.0,  # index CFDs: the cost is in the spread
        swap_long=-100.0,  # ~ -1.0 USD per lot per night at 5000
        swap_short=20.0,
        triple_swap_day=FRIDAY,  # index CFDs charge the weekend on Friday
    ),
}


def preset(name: str) -> InstrumentSpec | None:
    """The preset for a symbol name: exact (case-insensitive), else the part before the first
    '.' (``EURUSD.FOREX`` as `sidecar pull` names it, ``EURUSD.raw`` of some brokers)."""
    key = name.strip().upper()
    return PRESETS.get(key) or PRESETS.get(key.split(".", 1)[0])


def tick_value_at(spec: InstrumentSpec | SymbolSpec, price: float, account_currency: str) -> float:
    """One tick's value per lot in the account currency at `price`.

    For a symbol whose BASE currency is the account currency (USDJPY, USDCHF on a USD account)
    it is ``tick_size * contract_size / price``; otherwise the spec's own `tick_value` (exact when
    the quote currency is the account currency; a cross such as EURGBP would need a conversion
    rate this function does not have, so the spec's reference value stands).
    """
    symbol = spec.symbol if isinstance(spec, InstrumentSpec) else spec
    account = account_currency.strip().upper()
    if symbol.quote.upper() == account or symbol.base.upper() != account:
        return symbol.tick_value
    if not (price > 0 and math.isfinite(price)):
        raise ValueError(f"price: expected a finite number > 0, got {price}")
    return symbol.tick_size * symbol.contract_size / price


# ---------------------------------------------------------------- spec files


class SpecError(ValueError):
    """A symbol spec file with problems; the message lists every one, one per line."""

    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__("\n".join(f"{path}: {p}" for p in problems))


# key -> (kind of value, required unless `extends` names a preset)
_SYMBOL_KEYS: dict[str, tuple[str, bool]] = {
    "name": ("name", True),
    "base": ("currency", False),
    "quote": ("currency", False),
    "digits": ("digits", True),
    "point": ("positive", True),
    "tick_size": ("positive", True),
    "tick_value": ("positive", True),
    "contract_size": ("positive", True),
    "volume_min": ("positive", True),
    "volume_step": ("positive", True),
    "volume_max": ("positive", True),
    "stops_level": ("count", False),
    "freeze_level": ("count", False),
}
_COSTS_KEYS: dict[str, str] = {
    "commission_per_lot": "nonneg",
    "swap_long": "number",
    "swap_short": "number",
    "triple_swap_day": "weekday",
    "spread_points": "count",
    "margin_rate": "positive",
}
_EXPECTED = {
    "name": "a symbol name (1 to 64 characters)",
    "currency": "a currency code of at most 16 characters",
    "digits": "an integer 0 .. 10",
    "positive": "a number > 0",
    "nonneg": "a number >= 0",
    "number": "a number",
    "count": "an integer >= 0",
    "weekday": "a weekday name ('wednesday') or 0 (Monday) .. 6 (Sunday)",
}
_TOP_KEYS = ("extends", "symbol", "costs")


def _check(kind: str, value: Any) -> tuple[bool, Any]:
    """(valid, normalised value)."""
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "name":
        return isinstance(value, str) and 1 <= len(value.strip()) <= 64, value
    if kind == "currency":
        return isinstance(value, str) and len(value) <= 16, value.upper() if value else value
    if kind in ("digits", "count"):
        top = 10 if kind == "digits" else 2**63 - 1
        return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= top, value
    if kind == "weekday":
        if isinstance(value, str) and value.strip().lower() in WEEKDAYS:
            return True, WEEKDAYS.index(value.strip().lower())
        return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 6, value
    if not is_number or not math.isfinite(value) or abs(value) >= 1e15:
        return False, value
    if kind == "positive":
        return value > 0, float(value)
    if kind == "nonneg":
        return value >= 0, float(value)
    return True, float(value)


def load_instrument(path: str | Path) -> InstrumentSpec:
    """An `InstrumentSpec` from a TOML spec file (layout: ``configs/symbols/example.toml``).

    Every problem is reported at once in one `SpecError` (a ValueError), one line each:
    ``FILE: section.key: expected ..., got ...``.
    """
    name = str(path)
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise SpecError(name, [f"cannot read: {exc.strerror or exc}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(name, [f"not valid TOML: {exc}"]) from None
    except UnicodeDecodeError as exc:
        raise SpecError(name, [f"not UTF-8 text: {exc.reason}"]) from None
    problems: list[str] = []
    for key in data:
        if key not in _TOP_KEYS:
            problems.append(f"{key}: unknown key (expected extends, [symbol], [costs])")

    base: InstrumentSpec | None = None
    extends = data.get("extends")
    if extends is not None:
        base = preset(extends) if isinstance(extends, str) else None
        if base is None:
            problems.append(f"extends: expected one of {', '.join(PRESETS)}, got {extends!r}")

    symbol: dict[str, Any] = msgspec.to_builtins(base.symbol) if base else {}
    costs: dict[str, Any] = {"triple_swap_day": WEDNESDAY}
    if base:
        costs = {f.name: getattr(base, f.name) for f in fields(InstrumentSpec)}
        del costs["symbol"]
    for section, keys in (("symbol", _SYMBOL_KEYS), ("costs", _COSTS_KEYS)):
        table = data.get(section, {})
        if not isinstance(table, dict):
            problems.append(f"{section}: expected a table [{section}], got {table!r}")
            continue
        target = symbol if section == "symbol" else costs
        for key, value in table.items():
            if key not in keys:
                problems.append(f"{section}.{key}: unknown key (expected one of {', '.join(keys)})")
                continue
            kind = keys[key][0] if section == "symbol" else keys[key]
            ok, normal = _check(kind, value)
            if not ok:
                problems.append(f"{section}.{key}: expected {_EXPECTED[kind]}, got {value!r}")
                continue
            target[key] = normal
    for key, (_kind, required) in _SYMBOL_KEYS.items():
        if required and key not in symbol:
            problems.append(f"symbol.{key}: missing (expected {_EXPECTED[_kind]})")

    if not problems:
        problems += _consistency(symbol)
    if problems:
        raise SpecError(name, problems)
    try:
        spec_symbol = msgspec.convert(symbol, SymbolSpec)
    except (msgspec.ValidationError, ValueError) as exc:  # a rule we did not check above
        raise SpecError(name, [f"symbol: {exc}"]) from None
    return InstrumentSpec(symbol=spec_symbol, **costs)


def _consistency(symbol: dict[str, Any]) -> list[str]:
    problems = []
    point = 10.0 ** -symbol["digits"]
    if not math.isclose(symbol["point"], point, rel_tol=1e-9):
        problems.append(
            f"symbol.point: expected 10^-digits = {point:.{symbol['digits']}f} "
            f"(digits = {symbol['digits']}), got {symbol['point']!r}"
        )
    ratio = symbol["tick_size"] / symbol["point"]
    if ratio < 1 - 1e-9 or abs(ratio - round(ratio)) > 1e-6:
        problems.append(
            f"symbol.tick_size: expected a whole multiple of point ({symbol['point']!r}), "
            f"got {symbol['tick_size']!r}"
        )
    if symbol["volume_max"] < symbol["volume_min"]:
        problems.append(
            f"symbol.volume_max: expected >= volume_min ({symbol['volume_min']!r}), "
            f"got {symbol['volume_max']!r}"
        )
    if symbol["volume_step"] > symbol["volume_max"]:
        problems.append(
            f"symbol.volume_step: expected <= volume_max ({symbol['volume_max']!r}), "
            f"got {symbol['volume_step']!r}"
        )
    return problems


def resolve_instrument(symbol: str, spec_path: str | Path | None) -> InstrumentSpec:
    """The spec file when one is given (its name must be `symbol`), else the preset.

    A preset found through an alias (``EURUSD.FOREX`` -> EURUSD) is renamed to `symbol`, so the
    instrument and the series carry the same name. Raises ValueError for an unknown symbol.
    """
    if spec_path is not None:
        spec = load_instrument(spec_path)
        if spec.symbol.name != symbol:
            raise SpecError(
                str(spec_path),
                [
                    f"symbol.name: expected {symbol!r} (the symbol backtested), "
                    f"got {spec.symbol.name!r}"
                ],
            )
        return spec
    found = preset(symbol)
    if found is None:
        raise ValueError(
            f"unknown symbol {symbol!r}: presets exist for {', '.join(PRESETS)}; for another "
            f"symbol write its specification to a TOML file (see {EXAMPLE_SPEC}, values from "
            f"the terminal's Market Watch > Specification) and pass --symbol-spec FILE"
        )
    if found.symbol.name != symbol:
        found = replace(found, symbol=msgspec.structs.replace(found.symbol, name=symbol))
    return found
