"""The EA's trading code against a behavioural fake of the MetaTrader 5 terminal (issue 16).

Executor.mqh, Transport.mqh and SidecarEA.mq5 itself are translated to C++ (the same transform
as the syntax check), force-included with tests/mql5/shim/fake/terminal_fake.h and run: positions
and deals that show up ticks after OrderSend returned DONE, netting and hedging accounts, filling
rules, the server's retcodes, stops and freeze levels, a stop that fills between two of the EA's
calls, and a scripted sidecar behind a fake libzmq whose replies take time. Every driver is built
in both StringSubstr modes (length <= 0 -> "" / -> the rest of the string, as older builds do).
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from test_mql5_modules import CXX, FLAGS, INCLUDE, ROOT, SHIM, SRC, SUBSTR_MODES, translate_mql5

pytestmark = pytest.mark.skipif(CXX is None, reason="g++ is required for the MQL5 module tests")

FAKE = SHIM / "fake"
TERMINAL = SHIM / "terminal"
EA = ROOT / "mql5" / "Experts" / "SidecarEA.mq5"

EXEC_OK, EXEC_PARTIAL, EXEC_REJECTED, EXEC_AMBIGUOUS, EXEC_REFUSED, EXEC_BACKOFF, EXEC_FROZEN = (
    range(7)
)
ENTRY_NONE, ENTRY_WAITING, ENTRY_SEEN, ENTRY_TIMEOUT = range(4)


@pytest.fixture(scope="module", params=sorted(SUBSTR_MODES))
def binaries(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Path]:
    mode = str(request.param)
    out = tmp_path_factory.mktemp(f"mql5-fake-{mode}")
    (out / "Sidecar").mkdir()
    for f in INCLUDE.glob("Sidecar/*.mqh"):
        (out / "Sidecar" / f.name).write_text(translate_mql5(f.read_text(encoding="ascii")))
    # the EA's inputs become plain globals here (not const, as the syntax check keeps them), so
    # that a scenario can set one before OnInit as the operator would in the EA's properties
    ea_text = re.sub(
        r"^(\s*)input\s+(?!group\b)", r"\1", EA.read_text(encoding="ascii"), flags=re.M
    )
    (out / "SidecarEA.cpp").write_text(translate_mql5(ea_text))
    flags = [f for f in FLAGS if f != "-O1"] + ["-O0", "-Wno-unused-parameter", "-D__MQL5__"]
    flags += SUBSTR_MODES[mode]
    inc = ["-I", str(out), "-I", str(SHIM), "-I", str(TERMINAL), "-I", str(FAKE)]
    bins = {}
    for name in ("executor_driver", "ea_driver"):
        cmd = [CXX, *flags, *inc, "-include", "terminal_fake.h", "-o", str(out / name)]
        cmd.append(str(SRC / f"{name}.cpp"))
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr
        bins[name] = out / name
    return bins


def run(binary: Path, scenario: str) -> dict[str, Any]:
    proc = subprocess.run(
        [str(binary), scenario], capture_output=True, text=True, timeout=30, check=False
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = [line[7:] for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(results) == 1, proc.stdout
    out: dict[str, Any] = json.loads(results[0])
    out["log"] = proc.stdout
    return out


def executor(binaries: dict[str, Path], scenario: str) -> dict[str, Any]:
    return run(binaries["executor_driver"], scenario)


def ea(binaries: dict[str, Path], scenario: str) -> dict[str, Any]:
    return run(binaries["ea_driver"], scenario)


# ------------------------------------------------------------------ 1. state that shows up late


@pytest.mark.parametrize(
    "scenario",
    ["open_delayed_hedging", "open_delayed_hedging_no_deal", "open_delayed_netting"],
)
def test_entry_found_from_its_result_and_protected_when_it_shows(
    binaries: dict[str, Path], scenario: str
) -> None:
    """The fill is DONE but the terminal shows the position 3 ticks later, and the server left the
    stop out: the entry holds its in-flight lock, then the position is found and its stop set."""
    r = executor(binaries, scenario)
    assert r["rc"] == EXEC_OK
    if "hedging" in scenario:  # the result's order names the position at once
        assert r["position_at_open"] == r["server_ticket"]
    assert r["states"][:3] == [ENTRY_WAITING, ENTRY_WAITING, ENTRY_SEEN]
    assert r["seen"] == r["server_ticket"]
    assert r["sl"] == pytest.approx(r["wanted_sl"]) and r["sltp_sends"] == 1
    assert "STOP_MISSING" in r["log"]


def test_no_second_entry_while_a_fill_is_in_flight(binaries: dict[str, Path]) -> None:
    r = executor(binaries, "second_entry_in_flight")
    assert r["rc1"] == EXEC_OK and r["rc2"] == EXEC_REFUSED and r["locked"]
    assert r["deal_sends"] == 1
    # a position that never shows up releases the lock after InpEntryInFlightSec (30 s)
    assert r["states"] == [ENTRY_WAITING, ENTRY_NONE] and not r["after_timeout_locked"]
    assert "ENTRY_IN_FLIGHT_TIMEOUT" in r["log"]


def test_ea_sends_one_entry_while_its_position_is_not_visible(binaries: dict[str, Path]) -> None:
    """The sidecar sends a new open signal every tick; the first fill shows up 3 ticks later."""
    r = ea(binaries, "no_second_entry")
    assert r["entry_sends"] == 1
    assert len(r["positions"]) == 1 and r["positions"][0]["sl"] > 0


@pytest.mark.parametrize("scenario", ["no_double_partial", "no_double_partial_netting"])
def test_ea_sends_one_partial_close_while_the_old_volume_shows(
    binaries: dict[str, Path], scenario: str
) -> None:
    r = ea(binaries, scenario)
    assert r["partial_sends"] == 1
    assert [(p["type"], p["volume"]) for p in r["positions"]] == [("buy", 0.05)]


def test_ea_puts_a_missing_stop_back(binaries: dict[str, Path]) -> None:
    r = ea(binaries, "missing_stop_restored")
    assert [p["sl"] for p in r["positions"]] == [pytest.approx(r["wanted_sl"])]
    assert "STOP_MISSING" in r["log"]


def test_ea_closes_a_position_whose_stop_cannot_be_put_back(binaries: dict[str, Path]) -> None:
    """The price is already beyond the initial stop: the server refuses it (10016), and an
    unprotected position is not kept."""
    r = ea(binaries, "missing_stop_closed")
    assert r["positions"] == []
    assert "MODIFY_REJECTED retcode=10016" in r["log"]


# ------------------------------------------------------------------ 2. account read once, too early


def test_ea_waits_for_the_login_before_loading_or_trading(binaries: dict[str, Path]) -> None:
    r = ea(binaries, "waits_for_login")
    assert not r["ready_before"] and r["hellos_before"] == 0 and r["zero_login_files"] == []
    assert r["ready"] and r["hellos"] == 1 and r["hedging"]
    assert any("guard_5550001_" in f for f in r["login_files"])


def test_hedging_partial_close_with_ctrade_built_before_the_login(
    binaries: dict[str, Path],
) -> None:
    """CTrade (a global) read "netting" before the login; the account is hedging: the partial
    close still reduces the position and opens nothing."""
    r = executor(binaries, "hedging_partial_after_late_login")
    assert r["rc"] == EXEC_OK
    assert [(p["type"], p["volume"]) for p in r["positions"]] == [("buy", 0.1)]


# ------------------------------------------------------------------ 3. netting reduce race


def test_netting_reduce_after_the_stop_filled_opens_nothing(binaries: dict[str, Path]) -> None:
    r = executor(binaries, "netting_reduce_after_stop")
    assert r["positions"] == [] and r["named"]
    assert r["rc"] == EXEC_OK and "CLOSE_ALREADY_CLOSED retcode=10036" in r["log"]


def test_netting_reduce_names_and_reduces_its_position(binaries: dict[str, Path]) -> None:
    r = executor(binaries, "netting_reduce")
    assert r["rc"] == EXEC_OK and r["named"]
    assert [(p["type"], p["volume"], p["sl"]) for p in r["positions"]] == [("buy", 0.1, 1.097)]


# ------------------------------------------------------------------ 4. close spam


@pytest.mark.parametrize(
    ("scenario", "max_sends", "first"),
    [
        ("close_backoff_market_closed", 1, EXEC_REJECTED),
        ("close_backoff_too_many_requests", 1, EXEC_REJECTED),
        ("close_backoff_rejected", 3, EXEC_REJECTED),  # 10 s, then 20 s
        # no answer: the full close is re-read and resent InpRetries times, then backs off
        # (10 s, then 20 s) instead of going out again on every tick
        ("close_backoff_timeout", 12, EXEC_AMBIGUOUS),
        ("close_backoff_connection", 12, EXEC_AMBIGUOUS),
        ("close_frozen", 0, EXEC_FROZEN),
    ],
)
def test_a_refused_close_backs_off_per_ticket(
    binaries: dict[str, Path], scenario: str, max_sends: int, first: int
) -> None:
    r = executor(binaries, scenario)
    assert r["rcs"] == [first, EXEC_BACKOFF, EXEC_BACKOFF]
    assert r["sent_first_minute"] == max_sends
    assert r["other_free"]  # the back-off is per ticket
    assert r["rc_later"] == EXEC_OK and len(r["positions"]) == 1  # and it ends


def test_a_stop_removed_after_a_recent_modify_is_set_again(binaries: dict[str, Path]) -> None:
    """The "just modified" cache (same stop within 10 s) must not hide a stop removed since: with
    no stop on the position, Protect sends the modification again."""
    r = executor(binaries, "modify_cache_stop_removed")
    assert r["moved"] and r["protect"]
    assert r["sltp_sends"] == 2
    assert [p["sl"] for p in r["positions"]] == [pytest.approx(1.0975)]


def test_ea_closes_an_entry_left_without_a_stop_after_the_back_off(
    binaries: dict[str, Path],
) -> None:
    """The broker fills the entry without its stop, the stop is refused and so is the fallback
    close: the position is not left open for good; it is closed once its back-off has passed."""
    r = ea(binaries, "unprotected_fill")
    assert [p["sl"] for p in r["after_fill"]] == [0]
    assert len(r["within_backoff"]) == 1  # the back-off holds (no request per tick)
    assert r["positions"] == [] and r["entry_sends"] == 1
    assert "UNPROTECTED" in r["log"]


def test_ea_does_not_send_a_close_per_tick_to_a_closed_market(binaries: dict[str, Path]) -> None:
    r = ea(binaries, "close_backoff")
    assert r["sends_while_closed"] == 1
    assert r["positions"] == []  # closed once the market opened and the back-off passed


# ------------------------------------------------------------------ retcodes and filling


@pytest.mark.parametrize(
    ("retcode", "rc", "sends", "volume"),
    [
        (10004, EXEC_OK, 2, 0.2),  # requote: retried with fresh prices
        (10006, EXEC_REJECTED, 1, None),
        (10010, EXEC_PARTIAL, 1, 0.1),  # partial fill kept, the rest not chased
        (10016, EXEC_REJECTED, 1, None),  # invalid stops: never widened
        (10018, EXEC_REJECTED, 1, None),
        (10019, EXEC_REJECTED, 1, None),
        (10020, EXEC_OK, 2, 0.2),  # price changed: retried
        (10024, EXEC_REJECTED, 1, None),
    ],
)
def test_entry_retcodes(
    binaries: dict[str, Path], retcode: int, rc: int, sends: int, volume: float | None
) -> None:
    r = executor(binaries, f"entry_retcode_{retcode}")
    assert (r["rc"], r["sends"]) == (rc, sends)
    assert [p["volume"] for p in r["positions"]] == ([] if volume is None else [volume])
    assert all(p["sl"] > 0 for p in r["positions"])


@pytest.mark.parametrize(
    ("scenario", "rc", "filling"),
    [
        ("filling_fok_market", EXEC_OK, 0),
        ("filling_ioc_market", EXEC_OK, 1),
        ("filling_return_instant", EXEC_OK, 2),
        ("filling_none_market", EXEC_REJECTED, -1),  # nothing the server accepts: not sent
    ],
)
def test_filling_modes(binaries: dict[str, Path], scenario: str, rc: int, filling: int) -> None:
    r = executor(binaries, scenario)
    assert (r["rc"], r["filling"]) == (rc, filling)
    if rc == EXEC_OK:
        assert r["close_rc"] == EXEC_OK and r["positions"] == []


# ------------------------------------------------------------------ 7. permissions


@pytest.mark.parametrize(
    ("scenario", "block"),
    [
        ("permission_terminal", "TERMINAL_TRADE_DISABLED"),
        ("permission_program", "PROGRAM_TRADE_DISABLED"),
        ("permission_account", "ACCOUNT_TRADE_DISABLED"),
        ("permission_expert", "ACCOUNT_EXPERT_DISABLED"),
        ("permission_disabled", "SYMBOL_TRADE_MODE"),
        ("permission_closeonly", "SYMBOL_TRADE_MODE"),
        ("permission_longonly_sell", "SYMBOL_TRADE_MODE"),
        ("permission_longonly", ""),
    ],
)
def test_trade_permissions_checked_before_an_entry(
    binaries: dict[str, Path], scenario: str, block: str
) -> None:
    r = executor(binaries, scenario)
    assert r["block"] == block
    if block:
        assert (r["rc"], r["sends"]) == (EXEC_REFUSED, 0)
    else:
        assert (r["rc"], r["sends"]) == (EXEC_OK, 1)


def test_ea_keeps_the_signal_while_trading_is_not_allowed(binaries: dict[str, Path]) -> None:
    r = ea(binaries, "permission_keeps_signal")
    assert r["sends_disabled"] == 0
    assert len(r["positions"]) == 1 and r["comment"] == "sc:s1"


# ------------------------------------------------------------------ 6. timeouts


def test_hello_has_its_own_timeout_and_ticks_stay_short(binaries: dict[str, Path]) -> None:
    r = ea(binaries, "timeouts_live")
    assert r["hello_done"] and not r["verdict"]  # a 1 s hello passes, a 1 s tick reply is late
    assert r["timeouts"][:2] == [3000, 250]


def test_ea_introduces_itself_again_at_once_after_a_sidecar_restart(
    binaries: dict[str, Path],
) -> None:
    """UNKNOWN_SYMBOL means the sidecar is back but does not know the chart: the hello goes out
    within the same second, not InpHelloRetrySec (5 s) after the previous one."""
    r = ea(binaries, "restarted_sidecar")
    assert r["hellos_before"] == 1 and r["hellos_after"] == 2 and r["hello_done"], r


def test_repeated_unknown_symbol_re_hellos_are_bounded(
    binaries: dict[str, Path],
) -> None:
    """More charts than the sidecar holds: each hello evicts another chart and every tick (one a
    second here) is answered UNKNOWN_SYMBOL. The immediate re-hello goes out at most once per
    HELLO_REHELLO_MIN_SEC and the paced one once per InpHelloRetrySec: never a hello per tick."""
    r = ea(binaries, "unknown_symbol_storm")
    times, period, rehello = r["hello_times"], r["retry_sec"], r["rehello_sec"]
    assert times and 1 < rehello < period, r
    assert len(times) <= 30 // rehello + 30 // period + 1, times
    assert len(times) < 30, times  # 30 ticks, each answered UNKNOWN_SYMBOL


# ------------------------------------------------------------------ equity floor, every chart


def test_floor_hit_by_another_chart_flattens_this_chart_and_refuses_entries(
    binaries: dict[str, Path],
) -> None:
    """Another chart of the login and magic hit the floor (terminal global variable
    SC.floor.<login>.<magic>): this chart closes its symbol's positions from its timer, without
    a tick, and refuses every entry."""
    r = ea(binaries, "floor_other_chart")
    assert len(r["before"]) == 1 and r["lock_before"] == ""
    assert r["after_timer"] == [] and r["positions"] == []
    assert r["entry_sends"] == 0 and r["lock"] == "EQUITY_FLOOR"
    assert r["floor_time"] == r["hit"]
    assert "EQUITY_FLOOR" in r["log"]


def test_floor_hit_here_is_shared_and_cleared_by_the_input(binaries: dict[str, Path]) -> None:
    r = ea(binaries, "floor_this_chart")
    assert not r["gv_before"]
    assert r["published"] and r["lock_hit"] == "EQUITY_FLOOR"
    assert r["gv_time"] == r["floor_time"] > 0
    # InpEquityFloorPct = 0 clears it, for the other charts too
    assert not r["gv_after_clear"] and r["lock_clear"] != "EQUITY_FLOOR"
    # armed again: afresh
    assert not r["gv_rearmed"] and r["lock_rearmed"] == "" and r["floor_time_rearmed"] == 0


def test_strategy_tester_waits_in_lock_step(binaries: dict[str, Path]) -> None:
    r = ea(binaries, "timeouts_tester")
    assert r["hello_done"] and r["verdict"]  # a 5 s reply still drives the tick
    assert set(r["timeouts"]) == {30000}


# ------------------------------------------------------------------ 5. StringSubstr


@pytest.mark.parametrize(
    ("base", "name"),
    [("/", "http "), ("http://127.0.0.1:8765//", "http http://127.0.0.1:8765")],
)
def test_http_base_url_trimming_ends(binaries: dict[str, Path], base: str, name: str) -> None:
    assert executor(binaries, f"http_base:{base}")["name"] == name


@pytest.fixture(scope="module")
def protocol_bins(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("mql5-substr")
    bins = {}
    for mode, defines in SUBSTR_MODES.items():
        cmd = [CXX, *FLAGS, *defines, "-I", str(SHIM), "-I", str(INCLUDE)]
        cmd += ["-o", str(out / mode), str(SRC / "protocol_driver.cpp")]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        assert proc.returncode == 0 and not proc.stderr.strip(), proc.stderr
        bins[mode] = out / mode
    return bins


@pytest.mark.parametrize("mode", sorted(SUBSTR_MODES))
def test_empty_strings_parse_as_empty_on_every_build(
    protocol_bins: dict[str, Path], mode: str
) -> None:
    replies = [
        {
            "v": 1,
            "type": "error",
            "id": "",
            "ok": False,
            "error": {"code": "BAD_REQUEST", "message": ""},
        },
        {
            "v": 1,
            "type": "error",
            "id": "t-1",
            "ok": False,
            "error": {"code": "BAD_JSON", "message": 'a\\"b'},
        },
    ]
    proc = subprocess.run(
        [str(protocol_bins[mode]), "parse"],
        input="\n".join(json.dumps(r) for r in replies) + "\n",
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    got = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [(g["kind"], g["id"], g["code"], g["message"]) for g in got] == [
        ("error", "", "BAD_REQUEST", ""),
        ("error", "t-1", "BAD_JSON", 'a\\"b'),
    ]


def test_lengths_go_through_the_wrapper() -> None:
    """No StringSubstr call with a length outside Strings.mqh: its result for a length <= 0
    differs between terminal builds."""
    three_args = re.compile(r"\bStringSubstr\s*\(([^()]|\([^()]*\))*,([^()]|\([^()]*\))*,")
    for path in [EA, *sorted(INCLUDE.glob("Sidecar/*.mqh"))]:
        if path.name == "Strings.mqh":
            continue
        for n, line in enumerate(path.read_text(encoding="ascii").splitlines(), 1):
            code = line.split("//")[0]
            assert not three_args.search(code), f"{path.name}:{n}: {line.strip()}"


def test_netting_entry_finds_a_reversed_position_by_its_identifier(
    binaries: dict[str, Path],
) -> None:
    """After a netting reversal the position's ticket is the reversing order's; DEAL_POSITION_ID
    is its identifier (the old ticket). The entry resolves it at once, no in-flight lock."""
    r = executor(binaries, "netting_reversal_identifier")
    assert r["server_ticket"] != r["old_ticket"] and r["identifier"] == r["old_ticket"]
    assert r["rc"] in (EXEC_OK, EXEC_PARTIAL)
    assert r["position_at_open"] == r["server_ticket"]
    assert not r["locked_at_open"] and not r["locked"]


def test_netting_entry_refused_while_a_manual_position_is_open(binaries: dict[str, Path]) -> None:
    """Netting: a manual position (magic 0) on the symbol. The sell signal would reverse it and
    replace its stop: refused (NETTING_POSITION_OPEN), the signal id kept for when it is flat."""
    r = ea(binaries, "netting_foreign_position")
    assert r["sends_with_manual"] == 0
    assert [(p["type"], p["volume"], p["sl"]) for p in r["with_manual"]] == [
        ("buy", 0.10, pytest.approx(r["manual_sl"]))
    ]
    assert r["refusal"] == "NETTING_POSITION_OPEN" and "NETTING_POSITION_OPEN" in r["log"]
    assert r["entry_sends"] == 1 and r["comment"] == "sc:s1"


def test_account_switch_saves_state_under_the_old_login(binaries: dict[str, Path]) -> None:
    """OnDeinit(REASON_ACCOUNT) runs when ACCOUNT_LOGIN already reads the new account: the state,
    queue and deal cursor go to the files of the login they were loaded for."""
    r = ea(binaries, "account_switch")
    names = " ".join(r["saved_old"])
    assert "guard_5550001_" in names and "queue_5550001_" in names
    assert r["saved_new"] == []
    # the re-init loads the new login's files
    assert r["login"] == 5550002 and r["loaded_new"] and not r["loaded_old"]


def test_day_anchor_rebuilt_again_once_the_history_settled(binaries: dict[str, Path]) -> None:
    """A loss closed earlier today reaches the terminal's history 60 s after the start-up rebuild:
    the rebuild made once the connection settled raises the anchor to balance - day_closed."""
    r = ea(binaries, "anchor_recheck_loss")
    assert r["at_start"] == pytest.approx(r["balance"])
    assert r["before_settle"] == pytest.approx(r["at_start"])
    assert r["after"] == pytest.approx(r["balance"] - r["profit"])
    assert "DAY_ANCHOR_RAISED" in r["log"]


def test_day_anchor_recheck_never_lowers_the_anchor(binaries: dict[str, Path]) -> None:
    """A win closed earlier today: balance - day_closed is below the anchor taken at start-up
    (the equity then), which stays."""
    r = ea(binaries, "anchor_recheck_win")
    assert r["after"] == pytest.approx(r["at_start"]) == pytest.approx(r["balance"])
    assert "DAY_ANCHOR_CONFIRMED" in r["log"] and "DAY_ANCHOR_RAISED" not in r["log"]
