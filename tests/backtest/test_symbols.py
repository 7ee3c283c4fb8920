"""Instrument specifications: presets by name, TOML spec files, and the tick value of a symbol
whose quote currency is not the account currency."""

from __future__ import annotations

from pathlib import Path

import msgspec
import pytest

from sidecar.backtest.model import InstrumentSpec
from sidecar.backtest.symbols import (
    PRESETS,
    SpecError,
    load_instrument,
    preset,
    resolve_instrument,
    tick_value_at,
)
from sidecar.protocol import SymbolSpec

EXAMPLE = Path(__file__).resolve().parents[2] / "configs" / "symbols" / "example.toml"


@pytest.mark.parametrize("name", ["EURUSD", "GBPUSD", "USDJPY", "XAUUSD", "US500"])
def test_presets_pass_the_protocols_validation(name: str) -> None:
    spec = PRESETS[name]
    assert isinstance(spec, InstrumentSpec) and spec.symbol.name == name
    # A round trip through msgspec checks every constraint the EA's hello is checked against.
    again = msgspec.convert(msgspec.to_builtins(spec.symbol), SymbolSpec)
    assert again == spec.symbol
    s = spec.symbol
    assert s.point == pytest.approx(10.0**-s.digits) and s.tick_size >= s.point
    assert s.volume_min <= s.volume_max and s.volume_step <= s.volume_max
    assert spec.commission_per_lot >= 0 and spec.spread_points is None
    assert 0 <= spec.triple_swap_day <= 6
    assert s.quote == "USD" or s.base == "USD"


def test_preset_values_that_matter_for_money() -> None:
    eurusd, xau, jpy = PRESETS["EURUSD"].symbol, PRESETS["XAUUSD"].symbol, PRESETS["USDJPY"]
    # tick_value = tick_size * contract_size for a USD-quoted symbol on a USD account
    assert eurusd.tick_value == pytest.approx(eurusd.tick_size * eurusd.contract_size) == 1.0
    assert xau.tick_value == pytest.approx(xau.tick_size * xau.contract_size) == 1.0
    assert (eurusd.digits, eurusd.contract_size, eurusd.volume_min) == (5, 100_000, 0.01)
    assert (jpy.symbol.digits, jpy.symbol.point) == (3, 0.001)
    # Forex and gold charge the weekend's swap on Wednesday (0 = Monday).
    assert {PRESETS[n].triple_swap_day for n in ("EURUSD", "GBPUSD", "USDJPY", "XAUUSD")} == {2}


def test_tick_value_moves_with_the_price_when_the_account_currency_is_the_base() -> None:
    jpy = PRESETS["USDJPY"]
    assert jpy.symbol.tick_value == pytest.approx(0.001 * 100_000 / 150.0, rel=1e-5)
    assert tick_value_at(jpy, 100.0, "USD") == pytest.approx(1.0)
    assert tick_value_at(jpy, 160.0, "usd") == pytest.approx(0.625)
    assert tick_value_at(jpy.symbol, 125.0, "USD") == pytest.approx(0.8)
    # Quote currency = account currency: constant. Other accounts: the spec's value stands.
    assert tick_value_at(PRESETS["EURUSD"], 1.2, "USD") == 1.0
    assert tick_value_at(jpy, 100.0, "EUR") == jpy.symbol.tick_value
    with pytest.raises(ValueError, match="price: expected a finite number > 0, got 0"):
        tick_value_at(jpy, 0.0, "USD")


def test_presets_are_found_by_alias_and_renamed() -> None:
    assert preset("eurusd") is PRESETS["EURUSD"]
    assert preset("XAUUSD.raw") is PRESETS["XAUUSD"]
    spec = resolve_instrument("EURUSD.FOREX", None)
    assert spec.symbol.name == "EURUSD.FOREX" and spec.symbol.digits == 5
    assert resolve_instrument("US500", None) is PRESETS["US500"]


def test_an_unknown_symbol_says_how_to_describe_it() -> None:
    with pytest.raises(ValueError) as caught:
        resolve_instrument("GOOG", None)
    message = str(caught.value)
    assert "unknown symbol 'GOOG'" in message
    assert "EURUSD, GBPUSD, USDJPY, XAUUSD, US500" in message
    assert "--symbol-spec FILE" in message and "configs/symbols/example.toml" in message


def test_the_example_spec_file_loads() -> None:
    spec = load_instrument(EXAMPLE)
    assert spec.symbol.name == "GOOG" and spec.symbol.quote == "USD"
    assert (spec.symbol.digits, spec.symbol.tick_value, spec.symbol.contract_size) == (2, 0.01, 1)
    assert (spec.commission_per_lot, spec.swap_long, spec.swap_short) == (0.02, -15.0, -5.0)
    assert (spec.triple_swap_day, spec.spread_points, spec.margin_rate) == (4, 2, 1.0)
    assert resolve_instrument("GOOG", str(EXAMPLE)) == spec


def test_a_minimal_spec_file_takes_the_defaults(tmp_path: Path) -> None:
    path = tmp_path / "aapl.toml"
    path.write_text(
        "[symbol]\n"
        'name = "AAPL"\n'
        "digits = 2\npoint = 0.01\ntick_size = 0.01\ntick_value = 0.01\ncontract_size = 1\n"
        "volume_min = 1\nvolume_step = 1\nvolume_max = 1000\n"
    )
    spec = load_instrument(path)
    assert spec.symbol.stops_level == 0 and spec.symbol.quote == ""
    assert spec.commission_per_lot == 0.0 and spec.spread_points is None
    assert spec.triple_swap_day == 2  # Wednesday


def test_extends_starts_from_a_preset(tmp_path: Path) -> None:
    path = tmp_path / "eurusd_raw.toml"
    path.write_text(
        'extends = "EURUSD"\n'
        '[symbol]\nname = "EURUSD.raw"\nvolume_max = 50\n'
        '[costs]\ncommission_per_lot = 3.5\ntriple_swap_day = "Wednesday"\nspread_points = 2\n'
    )
    spec = load_instrument(path)
    eurusd = PRESETS["EURUSD"]
    assert spec.symbol.name == "EURUSD.raw" and spec.symbol.volume_max == 50.0
    assert spec.symbol.tick_value == eurusd.symbol.tick_value
    assert spec.commission_per_lot == 3.5 and spec.swap_long == eurusd.swap_long
    assert spec.spread_points == 2


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        "colour = 1\n"
        "[symbol]\n"
        'name = "X"\n'
        'digits = "five"\n'
        "point = -0.01\n"
        "tick_size = 0.01\n"
        "tick_value = true\n"
        "contract_size = 100000\n"
        "volume_min = 0.01\n"
        "volume_step = 0.01\n"
        "stops_level = 1.5\n"
        "spread = 3\n"
        "[costs]\n"
        "commission_per_lot = -3\n"
        'swap_long = "big"\n'
        'triple_swap_day = "someday"\n'
        "margin_rate = 0\n"
    )
    with pytest.raises(SpecError) as caught:
        load_instrument(path)
    assert caught.value.problems == [
        "colour: unknown key (expected extends, [symbol], [costs])",
        "symbol.digits: expected an integer 0 .. 10, got 'five'",
        "symbol.point: expected a number > 0, got -0.01",
        "symbol.tick_value: expected a number > 0, got True",
        "symbol.stops_level: expected an integer >= 0, got 1.5",
        "symbol.spread: unknown key (expected one of name, base, quote, digits, point, "
        "tick_size, tick_value, contract_size, volume_min, volume_step, volume_max, "
        "stops_level, freeze_level)",
        "costs.commission_per_lot: expected a number >= 0, got -3",
        "costs.swap_long: expected a number, got 'big'",
        "costs.triple_swap_day: expected a weekday name ('wednesday') or 0 (Monday) .. 6 "
        "(Sunday), got 'someday'",
        "costs.margin_rate: expected a number > 0, got 0",
        "symbol.digits: missing (expected an integer 0 .. 10)",
        "symbol.point: missing (expected a number > 0)",
        "symbol.tick_value: missing (expected a number > 0)",
        "symbol.volume_max: missing (expected a number > 0)",
    ]
    assert str(caught.value).splitlines()[1] == (
        f"{path}: symbol.digits: expected an integer 0 .. 10, got 'five'"
    )


def test_consistency_between_keys(tmp_path: Path) -> None:
    path = tmp_path / "inconsistent.toml"
    path.write_text(
        'extends = "EURUSD"\n[symbol]\npoint = 0.0001\ntick_size = 0.000015\nvolume_max = 0.001\n'
    )
    with pytest.raises(SpecError) as caught:
        load_instrument(path)
    assert caught.value.problems == [
        "symbol.point: expected 10^-digits = 0.00001 (digits = 5), got 0.0001",
        "symbol.tick_size: expected a whole multiple of point (0.0001), got 1.5e-05",
        "symbol.volume_max: expected >= volume_min (0.01), got 0.001",
        "symbol.volume_step: expected <= volume_max (0.001), got 0.01",
    ]


def test_unreadable_files(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[symbol\nname = 1\n")
    with pytest.raises(SpecError, match=r"broken.toml: not valid TOML"):
        load_instrument(broken)
    with pytest.raises(SpecError, match=r"missing.toml: cannot read"):
        load_instrument(tmp_path / "missing.toml")
    with pytest.raises(SpecError, match=r"extends: expected one of EURUSD, .*, got 'EURGBP'"):
        (tmp_path / "x.toml").write_text('extends = "EURGBP"\n')
        load_instrument(tmp_path / "x.toml")


def test_a_spec_file_for_another_symbol_is_refused() -> None:
    with pytest.raises(SpecError, match=r"symbol.name: expected 'AAPL' .*, got 'GOOG'"):
        resolve_instrument("AAPL", str(EXAMPLE))
