"""Pure rules for economic-calendar events and symbol exposure.

EODHD's `/economic-events` rows carry a free-text `type` (Trading-Economics-style names such as
"Non Farm Payrolls", "Inflation Rate YoY", "Fed Interest Rate Decision") and an ISO-2 `country`,
but no importance and no currency. This module derives both, maps trading symbols to the
currencies they expose, and decides when an EODHD event and a terminal (MT5) calendar event are
the same release.

Name matching (`normalize_name`, `event_topic`, `classify_importance`):

* Names are lower-cased, `&` becomes "and", every other non-alphanumeric character becomes a
  space, and whitespace is collapsed. Then spellings are unified ("non farm"/"non-farm"/"nfp" →
  "nonfarm", "consumer price index" → "cpi", "purchasing managers index" → "pmi", ...).
* A *topic* is the first entry of `TOPICS` whose pattern occurs as whole words in the normalised
  name. Order matters: specific topics ("core cpi") come before general ones ("cpi").
* Importance: a topic listed in the country's entry of the high table (or of the "*" entry, which
  applies to every country) is "high"; likewise for "medium"; anything else is "low". Tables are
  plain dicts, so a config can pass its own (`ImpactRules`).

Dedup rule (`same_event`, `dedup_events`): two events are the same release when they have the
same currency, their times differ by at most `tolerance_s` (default 5 min; MT5 and EODHD can
disagree by a minute or so), their comparisons (m/m, q/q, y/y, from the field or the name) do not
contradict each other, and their names either share a topic or have a token-set Jaccard
similarity ≥ 0.5 after dropping filler words (months, "prel", "final", country words ...).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Importance = Literal["high", "medium", "low"]
IMPORTANCE_RANK: dict[str, int] = {"low": 0, "medium": 1, "high": 2}


def _words(text: str) -> list[str]:
    """Space-separated word lists keep the long tables below readable."""
    return text.split()


# Unified spellings, applied in order to the lower-cased, punctuation-free name.
_SYNONYMS: tuple[tuple[str, str], ...] = (
    (r"\bnon farm\b", "nonfarm"),
    (r"\bnfp\b", "nonfarm payrolls"),
    (r"\bpayroll\b", "payrolls"),
    (r"\bconsumer price index\b", "cpi"),
    (r"\bproducer price index\b", "ppi"),
    (r"\bharmoni[sz]ed index of consumer prices\b", "hicp"),
    (r"\bpurchasing managers? index\b", "pmi"),
    (r"\bgross domestic product\b", "gdp"),
    (r"\binterest rate decision\b", "rate decision"),
    (r"\bmonetary policy decision\b", "rate decision"),
    (r"\bcash rate\b", "rate decision"),
    (r"\bofficial bank rate\b", "rate decision"),
    (r"\bbank rate\b", "rate decision"),
    (r"\bm m\b", "mom"),
    (r"\by y\b", "yoy"),
    (r"\bq q\b", "qoq"),
)

# (topic, regex over the normalised name). First match wins: keep specific before general.
TOPICS: tuple[tuple[str, str], ...] = (
    ("nonfarm payrolls", r"\bnonfarm (employment|payrolls)\b"),
    ("adp employment", r"\badp\b"),
    ("jobless claims", r"\b(initial|continuing) (jobless )?claims\b|\bjobless claims\b"),
    ("unemployment rate", r"\bunemployment rate\b"),
    ("unemployment change", r"\b(unemployment change|claimant count)\b"),
    ("employment change", r"\bemployment change\b"),
    ("average earnings", r"\baverage (hourly |weekly )?earnings\b|\bwage growth\b"),
    ("core pce", r"\bcore pce\b"),
    ("pce", r"\bpce\b"),
    ("core cpi", r"\bcore (cpi|inflation|hicp)\b|\bcpi core\b"),
    ("cpi", r"\bcpi\b|\binflation rate\b|\bhicp\b"),
    ("ppi", r"\bppi\b|\bproducer prices\b"),
    ("rate decision", r"\brate decision\b|\bfomc statement\b|\bfed interest rate\b"),
    ("central bank minutes", r"\b(fomc|mpc|ecb|boj|rba|boc|snb|rbnz) (meeting )?minutes\b"),
    ("central bank press conference", r"\bpress conference\b"),
    ("gdp", r"\bgdp\b"),
    ("retail sales", r"\bretail sales\b"),
    ("pmi", r"\bpmi\b|\bism (manufacturing|services|non manufacturing)\b"),
    ("trade balance", r"\btrade balance\b"),
    ("industrial production", r"\bindustrial production\b"),
    ("durable goods", r"\bdurable goods\b"),
    ("consumer confidence", r"\b(consumer confidence|consumer sentiment)\b"),
    ("business climate", r"\b(ifo|zew|tankan)\b"),
    ("housing", r"\b(housing starts|building permits|(new|existing|pending) home sales)\b"),
    ("current account", r"\bcurrent account\b"),
)

_DEFAULT_HIGH: dict[str, tuple[str, ...]] = {
    "*": (
        "nonfarm payrolls",
        "unemployment rate",
        "employment change",
        "core cpi",
        "cpi",
        "rate decision",
        "central bank press conference",
        "gdp",
        "retail sales",
        "pmi",
    ),
    "US": ("core pce", "average earnings", "jobless claims"),
    "UK": ("average earnings", "unemployment change"),
    "GB": ("average earnings", "unemployment change"),
    "DE": ("business climate",),
    "JP": ("business climate",),
}

_DEFAULT_MEDIUM: dict[str, tuple[str, ...]] = {
    "*": (
        "ppi",
        "pce",
        "trade balance",
        "industrial production",
        "consumer confidence",
        "business climate",
        "central bank minutes",
        "unemployment change",
        "average earnings",
        "jobless claims",
        "current account",
    ),
    "US": ("adp employment", "durable goods", "housing"),
}


@dataclass(frozen=True)
class ImpactRules:
    """Which topics count as high/medium impact, per ISO-2 country ("*" = every country)."""

    high: Mapping[str, Sequence[str]] = field(default_factory=lambda: dict(_DEFAULT_HIGH))
    medium: Mapping[str, Sequence[str]] = field(default_factory=lambda: dict(_DEFAULT_MEDIUM))

    def classify(self, topic: str | None, country: str | None) -> Importance:
        if topic is None:
            return "low"
        c = (country or "").upper()
        for table, level in ((self.high, "high"), (self.medium, "medium")):
            if topic in table.get("*", ()) or topic in table.get(c, ()):
                return level  # type: ignore[return-value]
        return "low"


DEFAULT_RULES = ImpactRules()

_EURO_AREA = _words("EU EA EMU DE FR IT ES NL BE AT PT IE FI GR SK SI LT LV EE LU MT CY HR")
COUNTRY_CURRENCY: dict[str, str] = {
    **dict.fromkeys(_EURO_AREA, "EUR"),
    "US": "USD",
    "UK": "GBP",
    "GB": "GBP",
    "JP": "JPY",
    "CH": "CHF",
    "CA": "CAD",
    "AU": "AUD",
    "NZ": "NZD",
    "CN": "CNY",
    "HK": "HKD",
    "SG": "SGD",
    "SE": "SEK",
    "NO": "NOK",
    "DK": "DKK",
    "PL": "PLN",
    "HU": "HUF",
    "CZ": "CZK",
    "TR": "TRY",
    "ZA": "ZAR",
    "MX": "MXN",
    "IN": "INR",
    "KR": "KRW",
    "BR": "BRL",
}


def currency_for_country(country: str | None) -> str | None:
    """ISO-2 country (plus EODHD's `EU` and `UK`) → ISO currency, or None when unknown."""
    if not country:
        return None
    return COUNTRY_CURRENCY.get(country.strip().upper())


def normalize_name(name: str) -> str:
    """Lower-case, punctuation-free, synonym-unified event name (see the module docstring)."""
    s = name.lower().replace("&", " and ")
    s = re.sub(r"[^a-z0-9]+", " ", s).strip()
    for pattern, repl in _SYNONYMS:
        s = re.sub(pattern, repl, s)
    return re.sub(r"\s+", " ", s).strip()


def event_topic(name: str) -> str | None:
    """The first `TOPICS` entry matching the normalised name, or None."""
    norm = normalize_name(name)
    for topic, pattern in TOPICS:
        if re.search(pattern, norm):
            return topic
    return None


def _event_name(event: Mapping[str, Any]) -> str:
    return str(event.get("type") or event.get("name") or event.get("event") or "")


def classify_importance(
    event: Mapping[str, Any] | str, country: str | None = None, rules: ImpactRules = DEFAULT_RULES
) -> Importance:
    """high/medium/low for an EODHD event dict (`type`, `country`) or a bare name + country."""
    if isinstance(event, str):
        return rules.classify(event_topic(event), country)
    return rules.classify(event_topic(_event_name(event)), country or event.get("country"))


# --- symbols ---------------------------------------------------------------------------------

KNOWN_CURRENCIES = frozenset(
    _words(
        "USD EUR GBP JPY CHF CAD AUD NZD CNY CNH HKD SGD SEK NOK DKK PLN HUF CZK TRY ZAR MXN "
        "INR KRW BRL RUB THB ILS XAU XAG XPT XPD BTC ETH LTC XRP"
    )
)

# Cash indices and commodities as brokers name them → the currency they are quoted in.
INDEX_CURRENCY: dict[str, str] = {
    **dict.fromkeys(
        _words(
            "US500 SPX500 SP500 SPX US30 DJ30 WS30 DJI30 US100 NAS100 USTEC NDX100 US2000 "
            "USOIL WTI UKOIL BRENT XNGUSD NATGAS"
        ),
        "USD",
    ),
    **dict.fromkeys(
        _words(
            "DE40 GER40 DE30 GER30 DAX40 DAX FRA40 FR40 CAC40 EU50 STOXX50 ESTX50 EUSTX50 "
            "ES35 SPA35 IT40 NETH25 NL25"
        ),
        "EUR",
    ),
    **dict.fromkeys(_words("UK100 FTSE100 FTSE"), "GBP"),
    **dict.fromkeys(_words("JP225 JPN225 NIKKEI225 NIKKEI NI225"), "JPY"),
    **dict.fromkeys(_words("AUS200 AU200 ASX200"), "AUD"),
    **dict.fromkeys(_words("SWI20 CH20 SMI20"), "CHF"),
    **dict.fromkeys(_words("HK50 HSI50 HK33"), "HKD"),
    **dict.fromkeys(_words("CHINA50 CN50 CHINAA50"), "CNY"),
    "CAN60": "CAD",
    # EODHD index tickers (`GSPC.INDX` → code GSPC).
    **dict.fromkeys(_words("GSPC DJI IXIC NDX RUT VIX"), "USD"),
    **dict.fromkeys(_words("GDAXI FCHI STOXX50E"), "EUR"),
    "FTSE100": "GBP",
    "N225": "JPY",
}

# EODHD exchange suffix of a stock/ETF ticker → its trading currency.
EXCHANGE_CURRENCY: dict[str, str] = {
    **dict.fromkeys(_words("US NYSE NASDAQ BATS AMEX"), "USD"),
    **dict.fromkeys(_words("XETRA F BE DU HM MU STU PA AS BR MC MI LS VI HE IR"), "EUR"),
    "LSE": "GBP",
    "TO": "CAD",
    "V": "CAD",
    "AU": "AUD",
    "SW": "CHF",
    "HK": "HKD",
    "TSE": "JPY",
    "T": "JPY",
    "SHG": "CNY",
    "SHE": "CNY",
    "ST": "SEK",
    "OL": "NOK",
    "CO": "DKK",
    "WAR": "PLN",
    "KO": "KRW",
    "SA": "BRL",
}

_PREFIX_RE = re.compile(r"^[#!@$_.\-]+")


def _clean(symbol: str) -> str:
    return _PREFIX_RE.sub("", symbol.strip()).upper()


def split_pair(symbol: str) -> tuple[str, str] | None:
    """(base, quote) of an FX/metal/crypto pair, tolerating broker decoration.

    `EURUSD`, `EURUSD.raw`, `EURUSDm`, `EURUSD_i`, `#EURUSD`, `EURUSD.FOREX`, `EUR/USD`,
    `BTC-USD.CC` → ("EUR","USD") / ("BTC","USD"). Anything else → None.
    """
    s = _clean(symbol)
    m = re.match(r"^([A-Z]{3})[/\-]?([A-Z]{3})", s)
    if m and m.group(1) in KNOWN_CURRENCIES and m.group(2) in KNOWN_CURRENCIES:
        return m.group(1), m.group(2)
    return None


def symbol_currencies(
    symbol: str, overrides: Mapping[str, Sequence[str] | str] | None = None
) -> tuple[str, ...]:
    """Currencies a position in `symbol` is exposed to.

    Order of lookup: `overrides` (keys compared after stripping prefixes and upper-casing, either
    the full symbol or its code before any `.`/`_` suffix), then FX-style pairs (`EURUSD` →
    EUR, USD; `XAUUSD` → XAU, USD), then cash indices/commodities (`US500`, `GER40`, `UK100` →
    their currency), then `CODE.EXCHANGE` tickers (`AAPL.US` → USD). Unknown → ().
    """
    s = _clean(symbol)
    code = re.split(r"[._]", s, maxsplit=1)[0]
    if overrides:
        ov = {_clean(k): v for k, v in overrides.items()}
        for key in (s, code):
            if key in ov:
                val = ov[key]
                return (val.upper(),) if isinstance(val, str) else tuple(v.upper() for v in val)
    pair = split_pair(s)
    if pair:
        return pair
    if code in INDEX_CURRENCY:
        return (INDEX_CURRENCY[code],)
    # Broker suffixes glued on (US500m, GER40cash): retry with trailing lower-case/alpha removed.
    trimmed = re.sub(r"(CASH|SPOT|ROLL|PRO|M|C|I)$", "", code)
    if trimmed in INDEX_CURRENCY:
        return (INDEX_CURRENCY[trimmed],)
    if "." in s:
        exchange = s.rsplit(".", 1)[1]
        if exchange in EXCHANGE_CURRENCY:
            return (EXCHANGE_CURRENCY[exchange],)
        if exchange == "INDX" and code in INDEX_CURRENCY:
            return (INDEX_CURRENCY[code],)
    return ()


# --- dedup -----------------------------------------------------------------------------------

_MONTHS = _words(
    "jan feb mar apr may jun jul aug sep sept oct nov dec january february march april june "
    "july august september october november december"
)
_FILLER = frozenset(
    [
        *_MONTHS,
        *_words(
            "prel prelim preliminary final flash adv advance 1st 2nd 3rd est estimate r rev "
            "revised sa nsa n s a the of and s us usd eu ez euro area eurozone uk gb japan jp "
            "germany german de china cn canada ca australia au new zealand nz swiss switzerland ch"
        ),
    ]
)
_COMPARISON_TOKENS = {"mom": "mom", "qoq": "qoq", "yoy": "yoy"}


def _comparison(event: Mapping[str, Any], tokens: Iterable[str]) -> str | None:
    comp = event.get("comparison")
    if isinstance(comp, str) and comp.lower() in _COMPARISON_TOKENS:
        return comp.lower()
    for t in tokens:
        if t in _COMPARISON_TOKENS:
            return t
    return None


def _name_tokens(name: str) -> frozenset[str]:
    return frozenset(
        t for t in normalize_name(name).split() if t not in _FILLER and t not in _COMPARISON_TOKENS
    )


def event_currency(event: Mapping[str, Any]) -> str | None:
    """`currency` if present, else derived from `country`."""
    cur = event.get("currency")
    if isinstance(cur, str) and cur:
        return cur.upper()
    return currency_for_country(event.get("country"))


def _event_time(event: Mapping[str, Any]) -> int:
    for key in ("time", "time_gmt"):
        if event.get(key) is not None:
            return int(event[key])
    raise ValueError("event has neither 'time' nor 'time_gmt' (unix seconds UTC)")


def same_event(
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    tolerance_s: int = 300,
    min_similarity: float = 0.5,
) -> bool:
    """Whether two normalised events (`time`/`time_gmt`, `currency`/`country`, `name`/`type`)
    describe the same release; see the module docstring for the rule."""
    ca, cb = event_currency(a), event_currency(b)
    if ca is None or ca != cb:
        return False
    if abs(_event_time(a) - _event_time(b)) > tolerance_s:
        return False
    na, nb = _event_name(a), _event_name(b)
    ta_all, tb_all = normalize_name(na).split(), normalize_name(nb).split()
    comp_a, comp_b = _comparison(a, ta_all), _comparison(b, tb_all)
    if comp_a and comp_b and comp_a != comp_b:
        return False
    topic_a, topic_b = event_topic(na), event_topic(nb)
    if topic_a is not None and topic_a == topic_b:
        return True
    if topic_a is not None and topic_b is not None:
        return False
    ta, tb = _name_tokens(na), _name_tokens(nb)
    if not ta or not tb:
        return False
    return len(ta & tb) / len(ta | tb) >= min_similarity


def dedup_key(event: Mapping[str, Any], tolerance_s: int = 300) -> tuple[str, int, str]:
    """A hashable key (currency, time bucket, topic-or-name) for quick grouping.

    Bucketing cannot honour a tolerance across bucket edges; `dedup_events` uses `same_event`,
    which does. Use this key only where an exact grouping is acceptable (e.g. a DB unique index).
    """
    name = _event_name(event)
    topic = event_topic(name) or " ".join(sorted(_name_tokens(name)))
    comp = _comparison(event, normalize_name(name).split()) or ""
    bucket = _event_time(event) // max(tolerance_s, 1)
    return (event_currency(event) or "", bucket, f"{topic}|{comp}")


def _sources(event: Mapping[str, Any]) -> list[str]:
    out = [str(x) for x in event.get("sources") or []]
    src = event.get("source")
    if src and src not in out:
        out.insert(0, str(src))
    return out


def dedup_events(
    events: Iterable[Mapping[str, Any]], tolerance_s: int = 300, min_similarity: float = 0.5
) -> list[dict[str, Any]]:
    """Merge duplicates across sources, earliest first.

    The first occurrence (in input order, so pass the preferred source first) keeps its fields;
    its missing values (None) are filled from later duplicates, importance becomes the highest
    of the group, and `sources` lists every source seen.
    """
    kept: list[dict[str, Any]] = []
    for ev in events:
        for k in kept:
            if same_event(k, ev, tolerance_s, min_similarity):
                for key, val in ev.items():
                    if k.get(key) is None and val is not None:
                        k[key] = val
                imp_k, imp_e = k.get("importance"), ev.get("importance")
                if imp_e and IMPORTANCE_RANK.get(imp_e, -1) > IMPORTANCE_RANK.get(imp_k or "", -1):
                    k["importance"] = imp_e
                for src in _sources(ev):
                    if src not in k["sources"]:
                        k["sources"].append(src)
                break
        else:
            new = dict(ev)
            new["sources"] = _sources(ev)
            kept.append(new)
    kept.sort(key=_event_time)
    return kept


def merge_calendar_rows(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows of the store's `calendar_events` table → events merged across sources (the
    terminal's first: they carry a real importance and win on merge), sorted by time."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in sorted(rows, key=lambda r: (r["source"] == "eodhd", r["time_gmt"])):
        cur = str(r["currency"] or "").upper()
        if not cur:
            continue
        groups.setdefault(cur, []).append(
            {
                "id": r["event_id"],
                "source": r["source"],
                "time": int(r["time_gmt"]),
                "currency": cur,
                "importance": str(r["importance"] or "").lower(),
                "name": r["name"],
                "actual": r["actual"],
                "estimate": r["forecast"],
                "previous": r["previous"],
            }
        )
    merged: list[dict[str, Any]] = []
    for evs in groups.values():
        merged.extend(dedup_events(evs))
    merged.sort(key=lambda e: (e["time"], e["currency"], e["name"]))
    return merged


def spec_currencies(
    spec: Any, overrides: Mapping[str, Sequence[str] | str] | None = None
) -> tuple[str, ...]:
    """`symbol_currencies` of a symbol spec, falling back to the EA's own base and quote
    currencies for a symbol the rules do not know."""
    return symbol_currencies(spec.name, overrides) or tuple(
        dict.fromkeys(c.upper() for c in (spec.base, spec.quote) if c)
    )
