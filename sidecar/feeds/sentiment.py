"""Pure sentiment scoring: time-decayed scores per ticker and per currency, and macro
surprises (the direction-aware gate that uses them is `sidecar.engine.news.sentiment_reasons`).
Time is always passed in (`now`, unix seconds UTC), never read.

Inputs are EODHD shapes: `/news` articles (`sentiment.polarity` in [-1, 1], optional) and the
`/sentiments` daily series (`{date, count, normalized}`). Articles EODHD left unscored are scored
offline by `LexiconScorer`: VADER (PyPI `vaderSentiment==3.3.2`, whose lexicon ships inside the
wheel; EODHD's polarity is VADER-like, so scales agree) plus a small finance overlay.

Score = Σ wᵢ·sᵢ / Σ wᵢ with wᵢ = baseᵢ · 0.5^(ageᵢ / half_life) (default half-life 6 h).
Items newer than `now` are ignored (no look-ahead in replays). A daily series row is stamped at
the end of its UTC day, when its aggregate is complete, with base weight
`series_weight · √count`; an article has base weight 1.

Currency scores come from pair tickers: news on `EURUSD.FOREX` scoring s counts +s for EUR and
−s for USD (`BTC-USD.CC` likewise). Other tickers count only through an explicit mapping.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sidecar.feeds.calendar_rules import event_currency, event_topic, split_pair

DEFAULT_HALF_LIFE_S = 6 * 3600

# Finance words VADER's general lexicon lacks or under-weights (VADER scale −4..+4).
FINANCE_LEXICON: dict[str, float] = {
    "surge": 1.8, "surges": 1.8, "soar": 2.0, "soars": 2.0, "rally": 1.6, "rallies": 1.6,
    "jump": 1.2, "jumps": 1.2, "climb": 1.0, "climbs": 1.0, "gain": 1.2, "gains": 1.2,
    "beat": 1.3, "beats": 1.3, "outperform": 1.6, "upgrade": 1.6, "upgrades": 1.6,
    "bullish": 2.0, "strengthens": 1.4, "rebound": 1.2, "rebounds": 1.2, "upbeat": 1.8,
    "plunge": -2.2, "plunges": -2.2, "tumble": -2.0, "tumbles": -2.0, "slump": -2.0,
    "slumps": -2.0, "slide": -1.4, "slides": -1.4, "sink": -1.6, "sinks": -1.6,
    "drop": -1.2, "drops": -1.2, "fall": -1.2, "falls": -1.2, "miss": -1.4, "misses": -1.4,
    "downgrade": -1.8, "downgrades": -1.8, "bearish": -2.0, "recession": -2.4,
    "default": -2.2, "bankruptcy": -2.8, "selloff": -2.0, "layoffs": -2.0, "weakens": -1.4,
    "slowdown": -1.6, "stagflation": -2.4,
}  # fmt: skip


class LexiconScorer:
    """Offline text polarity in [-1, 1]: VADER compound with `FINANCE_LEXICON` on top."""

    def __init__(self, extra: Mapping[str, float] | None = None) -> None:
        try:
            from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
        except ImportError as exc:  # the package is optional for the rest of the sidecar
            raise ImportError(
                "LexiconScorer needs vaderSentiment: pip install vaderSentiment==3.3.2"
            ) from exc
        self._vader = SentimentIntensityAnalyzer()
        self._vader.lexicon.update(FINANCE_LEXICON)
        self._vader.lexicon.update({k.lower(): v for k, v in (extra or {}).items()})

    def score(self, text: str) -> float:
        return float(self._vader.polarity_scores(text)["compound"])


@dataclass(frozen=True)
class SentimentItem:
    key: str  # upper-case ticker, e.g. EURUSD.FOREX
    time: int  # unix seconds UTC
    score: float  # [-1, 1]
    weight: float = 1.0
    source: str = "news"  # news | lexicon | series


@dataclass(frozen=True)
class Score:
    value: float  # decayed weighted mean in [-1, 1]; 0.0 without evidence
    weight: float  # Σ decayed weights: how much evidence there is
    count: int  # items that contributed


def decay(age_s: float, half_life_s: float = DEFAULT_HALF_LIFE_S) -> float:
    if half_life_s <= 0:
        raise ValueError(f"half_life_s must be > 0, got {half_life_s}")
    return 0.5 ** (max(age_s, 0.0) / half_life_s)


_TAG_RE = re.compile(r"<[^>]+>")


def _plain(text: Any) -> str:
    return html.unescape(_TAG_RE.sub(" ", str(text or "")))


def _iso_to_unix(value: str) -> int:
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return int((dt if dt.tzinfo else dt.replace(tzinfo=UTC)).timestamp())


def news_items(
    news: Iterable[Mapping[str, Any]], scorer: LexiconScorer | None = None
) -> list[SentimentItem]:
    """One item per (article, mentioned ticker). Articles are de-duplicated by `link` (EODHD
    offset paging repeats them). Unscored articles use `scorer` on title + content, or are
    skipped without one."""
    seen: set[str] = set()
    out: list[SentimentItem] = []
    for art in news:
        ident = str(art.get("link") or f"{art.get('title')}|{art.get('date')}")
        if ident in seen:
            continue
        seen.add(ident)
        pol = (art.get("sentiment") or {}).get("polarity")
        if isinstance(pol, int | float) and not isinstance(pol, bool):
            score, source = max(-1.0, min(1.0, float(pol))), "news"
        elif scorer is not None:
            text = f"{_plain(art.get('title'))}. {_plain(art.get('content'))}"
            score, source = scorer.score(text), "lexicon"
        else:
            continue
        t = _iso_to_unix(str(art["date"]))
        for sym in art.get("symbols") or []:
            out.append(SentimentItem(str(sym).upper(), t, score, 1.0, source))
    return out


def series_items(
    sentiments: Mapping[str, Iterable[Mapping[str, Any]]], series_weight: float = 1.0
) -> list[SentimentItem]:
    """Items from `/sentiments` rows, stamped at the end of their UTC day."""
    out = []
    for ticker, rows in sentiments.items():
        for row in rows:
            value = row.get("normalized")
            if not isinstance(value, int | float):
                continue
            d = date.fromisoformat(str(row["date"])[:10])
            end = datetime(d.year, d.month, d.day, tzinfo=UTC) + timedelta(days=1)
            count = max(int(row.get("count") or 1), 1)
            out.append(
                SentimentItem(
                    ticker.upper(),
                    int(end.timestamp()),
                    max(-1.0, min(1.0, float(value))),
                    series_weight * math.sqrt(count),
                    "series",
                )
            )
    return out


def _aggregate(
    contributions: Iterable[tuple[str, int, float, float]], now: int, half_life_s: float
) -> dict[str, Score]:
    acc: dict[str, list[float]] = {}
    for key, t, score, base in contributions:
        if t > now:
            continue  # not yet known at `now`
        w = base * decay(now - t, half_life_s)
        a = acc.setdefault(key, [0.0, 0.0, 0.0])
        a[0] += w * score
        a[1] += w
        a[2] += 1
    return {k: Score(a[0] / a[1] if a[1] > 0 else 0.0, a[1], int(a[2])) for k, a in acc.items()}


def ticker_scores(
    items: Iterable[SentimentItem], now: int, half_life_s: float = DEFAULT_HALF_LIFE_S
) -> dict[str, Score]:
    return _aggregate(((i.key, i.time, i.score, i.weight) for i in items), now, half_life_s)


def currency_scores(
    items: Iterable[SentimentItem],
    now: int,
    half_life_s: float = DEFAULT_HALF_LIFE_S,
    ticker_currency: Mapping[str, str] | None = None,
) -> dict[str, Score]:
    """Per-currency scores: a pair ticker gives +s to its base and −s to its quote; a ticker in
    `ticker_currency` (e.g. {"GSPC.INDX": "USD"}) gives +s to that currency."""
    mapping = {k.upper(): v.upper() for k, v in (ticker_currency or {}).items()}

    def spread() -> Iterable[tuple[str, int, float, float]]:
        for i in items:
            if i.key in mapping:
                yield mapping[i.key], i.time, i.score, i.weight
                continue
            pair = split_pair(i.key)
            if pair:
                yield pair[0], i.time, i.score, i.weight
                yield pair[1], i.time, -i.score, i.weight

    return _aggregate(spread(), now, half_life_s)


# --- direction -------------------------------------------------------------------------------


# --- macro surprises -------------------------------------------------------------------------

# topic → (sign, absolute scale, relative scale). sign +1: a higher actual than the estimate
# favours the currency (hotter inflation → hawkish, stronger growth); −1: it hurts (more
# unemployed, more claims). The scale is a typical surprise in EODHD's units (percentage points,
# thousands of jobs); when None, relative scale × |estimate| is used.
MACRO_DIRECTION: dict[str, tuple[int, float | None, float]] = {
    "nonfarm payrolls": (1, 50.0, 0.0),
    "adp employment": (1, 30.0, 0.0),
    "employment change": (1, 20.0, 0.0),
    "unemployment rate": (-1, 0.1, 0.0),
    "unemployment change": (-1, None, 0.5),
    "jobless claims": (-1, None, 0.05),
    "average earnings": (1, 0.1, 0.0),
    "core cpi": (1, 0.1, 0.0),
    "cpi": (1, 0.1, 0.0),
    "core pce": (1, 0.1, 0.0),
    "pce": (1, 0.1, 0.0),
    "ppi": (1, 0.2, 0.0),
    "rate decision": (1, 0.25, 0.0),
    "gdp": (1, 0.2, 0.0),
    "retail sales": (1, 0.5, 0.0),
    "pmi": (1, 1.0, 0.0),
    "business climate": (1, 1.0, 0.0),
    "industrial production": (1, 0.5, 0.0),
    "durable goods": (1, 1.0, 0.0),
    "consumer confidence": (1, None, 0.03),
    "housing": (1, None, 0.05),
    "trade balance": (1, None, 0.1),
}


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def macro_surprise(event: Mapping[str, Any]) -> float | None:
    """Signed surprise in (−1, 1) for the event's currency: sign · tanh((actual − estimate) /
    scale). None when actual or estimate is missing or the event type has no known direction."""
    topic = event_topic(str(event.get("type") or event.get("name") or ""))
    if topic is None or topic not in MACRO_DIRECTION:
        return None
    actual, estimate = _num(event.get("actual")), _num(event.get("estimate"))
    if actual is None or estimate is None:
        return None
    sign, abs_scale, rel_scale = MACRO_DIRECTION[topic]
    scale = abs_scale if abs_scale is not None else rel_scale * abs(estimate)
    if scale <= 0:
        return None
    return sign * math.tanh((actual - estimate) / scale)


def macro_items(events: Iterable[Mapping[str, Any]]) -> list[SentimentItem]:
    """Released events with a surprise → items keyed by currency (for `ticker_scores`, which
    then yields per-currency macro scores). Events need `time` (unix) and a currency/country."""
    out = []
    for ev in events:
        s = macro_surprise(ev)
        cur = event_currency(ev)
        if s is None or cur is None or ev.get("time") is None:
            continue
        out.append(SentimentItem(cur, int(ev["time"]), s, 1.0, "macro"))
    return out
