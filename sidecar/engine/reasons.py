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
