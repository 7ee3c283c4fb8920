"""Standard reason codes: `CATEGORY_CONDITION key=value ...`.

The code (the first word) labels metrics; the key=value context is for people. Values with
spaces are quoted. Every veto and adjustment the engine makes carries one of these codes.
"""

from __future__ import annotations

import functools

# Modes and breakers
MODE_REDUCING = "MODE_REDUCING"
MODE_HALTED = "MODE_HALTED"
RISK_DAILY_LOSS = "RISK_DAILY_LOSS"
RISK_FLOATING_LOSS = "RISK_FLOATING_LOSS"
RISK_DRAWDOWN_DEFENSIVE = "RISK_DRAWDOWN_DEFENSIVE"
RISK_MAX_POSITIONS = "RISK_MAX_POSITIONS"
RISK_SYMBOL_OPEN = "RISK_SYMBOL_OPEN"
RISK_DUPLICATE_SIGNAL = "RISK_DUPLICATE_SIGNAL"
RISK_COOLDOWN = "RISK_COOLDOWN"
RISK_REWARD_RISK = "RISK_REWARD_RISK"
RISK_FLATTEN = "RISK_FLATTEN"
RISK_REDUCE = "RISK_REDUCE"
# The open-risk budget (gates/open_risk.py): equity if every open stop is hit, less the new
# trade's loss at its stop, stays at or above the day's loss level (day-start equity x
# (1 - daily_loss_pct)) and the drawdown level (high-water mark x (1 - drawdown_halted_pct), or
# the equity floor when higher). The entry is cut to fit (`volume_from volume_to room open_risk`)
# or refused below volume min (`refused=1`).
RISK_DAILY_BUDGET = "RISK_DAILY_BUDGET"
RISK_DRAWDOWN_BUDGET = "RISK_DRAWDOWN_BUDGET"
# An open position without a stop: its loss has no bound, no budget can hold it; no entries
# until it has one (`ticket symbol`).
RISK_OPEN_NO_STOP = "RISK_OPEN_NO_STOP"
# Equity at or below `risk.equity_floor_pct` of the high-water mark: halted and every position
# closed (with RISK_FLATTEN); lifted only by POST /v1/resume (`equity floor pct hwm since`).
RISK_EQUITY_FLOOR = "RISK_EQUITY_FLOOR"
# A broker day whose start the sidecar did not see (no tick within 300 s before and after it, or
# the first anchor of an account) is anchored at the higher of the equity then and the day-start
# balance rebuilt from the day's known deals, balance - their net results (`day_start_equity
# equity balance closed`); on the verdict that starts the day.
RISK_DAY_REBUILT = "RISK_DAY_REBUILT"
NEWS_CLOSE = "NEWS_CLOSE"
# Signals and data
SIGNAL = "SIGNAL"  # prefixed to the strategy name: SIGNAL_SMA_CROSS, SIGNAL_RESONANCE
SIGNAL_NONE = "SIGNAL_NONE"  # + the strategy's note: its votes and the deciding values
DATA_WARMUP = "DATA_WARMUP"
DATA_CLOCK_BACKWARDS = "DATA_CLOCK_BACKWARDS"
# Sizing and leverage
SIZE_RISK = "SIZE_RISK"
SIZE_BELOW_MIN = "SIZE_BELOW_MIN"
SIZE_CAPPED_MAX = "SIZE_CAPPED_MAX"
SIZE_STOPS_LEVEL = "SIZE_STOPS_LEVEL"
SIZE_KELLY = "SIZE_KELLY"  # fractional Kelly from the journal set the risk
SIZE_NO_EDGE = "SIZE_NO_EDGE"  # the journal shows no edge: minimum risk, or refused
SIZE_VOLATILITY = "SIZE_VOLATILITY"  # ATR in the top of its recent range: risk reduced
SIZE_CLAMPED = "SIZE_CLAMPED"  # the product of the multipliers left [min_risk_pct, max_risk_pct]
LEVERAGE_CAP = "LEVERAGE_CAP"
LEVERAGE_CUT = "LEVERAGE_CUT"
# News feeds (sidecar/engine/news.py)
NEWS_BLACKOUT = "NEWS_BLACKOUT"  # inside the window of a high-impact event of an exposed currency
NEWS_SENTIMENT = "NEWS_SENTIMENT"  # the currency the entry is long scores strongly negative
NEWS_STALE = "NEWS_STALE"  # a configured news source has not refreshed for 2 x its interval
# The service (not the engine: it never does I/O)
# The database cannot be written (read-only, disk full, I/O error): an entry is given only once
# its signal id is on file, so entries wait until a write succeeds again; closes still go out.
STORE_WRITE_FAILED = "STORE_WRITE_FAILED"


def _fmt(value: object) -> str:
    if isinstance(value, float):
        text = f"{value:.6g}" if abs(value) < 1e6 else f"{value:.2f}"
    else:
        text = str(value)
    if not text or any(c in text for c in ' ="'):
        return '"' + text.replace('"', "'") + '"'
    return text


@functools.lru_cache(maxsize=4096)
def reason(code: str, **context: object) -> str:
    # Cached: most reasons repeat tick after tick with the same values (regime, caps, locks).
    if not context:
        return code
    return code + " " + " ".join(f"{k}={_fmt(v)}" for k, v in context.items())


# A reason is one line for people and logs: the strategy's note on a bar without a signal is cut
# to keep `SIGNAL_NONE <note>` within this many characters.
MAX_REASON_CHARS = 160


def context(**values: object) -> str:
    """`key=value ...` formatted as in every reason (floats to 6 significant digits)."""
    return " ".join(f"{k}={_fmt(v)}" for k, v in values.items())


def clip_note(note: str) -> str:
    """A strategy's note, cut so that `SIGNAL_NONE <note>` fits in MAX_REASON_CHARS (at a space
    when there is one, so no key=value pair is left half)."""
    room = MAX_REASON_CHARS - len(SIGNAL_NONE) - 1
    if len(note) <= room and note.isprintable():
        return note  # the usual case: already one short line
    note = " ".join(note.split())  # one line, single spaces
    if len(note) <= room:
        return note
    cut = note[: room - 3]
    space = cut.rfind(" ")
    return (cut[:space] if space > 0 else cut) + "..."


def signal_none(note: str) -> str:
    """The reason of a verdict whose newest bar has no signal: the code and the strategy's note."""
    return f"{SIGNAL_NONE} {note}" if note else SIGNAL_NONE


def code_of(reason_text: str) -> str:
    return reason_text.split(" ", 1)[0]
