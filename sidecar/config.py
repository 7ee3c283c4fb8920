"""Configuration: a TOML file, then environment overrides, validated all at once.

Every key has the default from DESIGN.md's risk table, so `sidecar serve` works with no file.
Environment overrides: `SIDECAR_TOKEN`, `SIDECAR_DB`, `SIDECAR_ZMQ`, `SIDECAR_HTTP`, and the
generic form `SIDECAR__<SECTION>__<KEY>=<value>` (value parsed as a TOML value, else a string),
e.g. `SIDECAR__RISK__RISK_PCT=0.5`.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import socket
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

HARD_MAX_RISK_PCT = 2.0  # DESIGN.md: per-trade risk is never above 2%, whatever the config says
HARD_LEVERAGE_CEILING = 500  # whatever the broker allows


# Values of the whole configuration as plain data: section -> key -> value.
Values = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class _Rule:
    """A cross-field rule: the fields it reads ("section.key") and a check giving problems."""

    fields: tuple[str, ...]
    check: Callable[[Values], list[str]]

    @property
    def sections(self) -> frozenset[str]:
        return frozenset(f.split(".", 1)[0] for f in self.fields)


_RULES: list[_Rule] = []


def _rule(*fields: str) -> Callable[[Callable[[Values], list[str]]], Callable[[Values], list[str]]]:
    """Register a cross-field rule. The models run it on valid values; `load_config` also runs
    it when other fields failed, as long as none of the fields it reads did, so one run reports
    every problem and none twice."""

    def register(check: Callable[[Values], list[str]]) -> Callable[[Values], list[str]]:
        _RULES.append(_Rule(fields, check))
        return check

    return register


def _run_rules(values: Values, sections: frozenset[str] | None = None) -> list[str]:
    """Problems of the rules that read exactly `sections` (every rule when None)."""
    return [
        problem
        for rule in _RULES
        if sections is None or rule.sections == sections
        for problem in rule.check(values)
    ]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    def _check_rules(self, section: str) -> None:
        problems = _run_rules({section: self.model_dump()}, frozenset({section}))
        if problems:
            raise ValueError("; ".join(problems))


class ServerConfig(_Section):
    zmq: str = "tcp://127.0.0.1:5555"  # ZeroMQ endpoint, tcp:// or ipc:// ("" disables)
    # libzmq (pyzmq's bundled library) is the only ZeroMQ engine. The key stays so existing
    # files load; "builtin", the removed pure-Python engine, is refused with a message.
    zmq_engine: Literal["libzmq"] = "libzmq"
    http: str = "127.0.0.1:8765"  # HOST:PORT for the REST API ("" disables; ":PORT" = all)
    # Shared secret; mandatory when either address binds anything but loopback (decided from
    # the address the listener binds: names resolved, "", "*" and interface names included).
    token: str = ""
    db: str = "sidecar.sqlite"  # SQLite file (WAL); relative to the working directory
    max_message_bytes: int = Field(65536, ge=1024, le=1048576)
    heartbeat_stale_seconds: int = Field(120, ge=5)  # /health: EA heartbeat older than this

    @field_validator("zmq_engine", mode="before")
    @classmethod
    def _one_engine(cls, v: Any) -> Any:
        if v == "builtin":
            raise ValueError(
                "the builtin ZeroMQ engine was removed and libzmq is the only engine: delete the "
                "zmq_engine line (or unset SIDECAR_ZMQ_ENGINE)"
            )
        return v

    @field_validator("http")
    @classmethod
    def _hostport(cls, v: str) -> str:
        if v:
            parse_http(v)  # ValueError: "expected HOST:PORT ..."
        return v

    @model_validator(mode="after")
    def _rules(self) -> ServerConfig:
        self._check_rules("server")
        return self


class BrokerConfig(_Section):
    # The broker day starts at server midnight shifted by this many hours (e.g. -7 for a
    # New-York-close day on a GMT+0 server).
    day_offset_hours: float = Field(0.0, ge=-23, le=23)
    # In the Strategy Tester TimeGMT() equals server time; true GMT = server - this offset.
    tester_gmt_offset_hours: float = Field(0.0, ge=-14, le=14)

    @field_validator("day_offset_hours")
    @classmethod
    def _whole_minutes(cls, v: float) -> float:
        # The EA's InpDayOffsetHours must give the same day: whole minutes leave no rounding.
        if abs(v * 60 - round(v * 60)) > 1e-6:
            raise ValueError("must be a whole number of minutes (e.g. -7 or 5.5)")
        return v


class RiskConfig(_Section):
    risk_pct: float = Field(1.0, gt=0, le=HARD_MAX_RISK_PCT)  # of equity, per trade
    max_risk_pct: float = Field(2.0, gt=0, le=HARD_MAX_RISK_PCT)
    daily_loss_pct: float = Field(3.0, gt=0, le=100)  # of the broker day's starting equity
    floating_loss_pct: float = Field(10.0, gt=0, le=100)  # open loss as % of balance
    drawdown_defensive_pct: float = Field(5.0, gt=0, le=100)  # from the equity high-water mark
    drawdown_reducing_pct: float = Field(12.0, gt=0, le=100)
    drawdown_halted_pct: float = Field(15.0, gt=0, le=100)
    reducing_resume_pct: float = Field(10.0, ge=0, le=100)  # reducing lifts below this
    halt_resume_pct: float = Field(0.0, ge=0, le=100)  # 0 = a halt lifts only by POST /v1/resume
    reducing_risk_factor: float = Field(0.5, gt=0, le=1)
    max_positions: int = Field(3, ge=1, le=5)
    one_per_symbol: bool = True
    duplicate_window_seconds: int = Field(300, ge=0)
    loss_streak: int = Field(3, ge=1)
    cooldown_minutes: int = Field(60, ge=0)
    min_reward_risk: float = Field(2.0, ge=0)
    flatten_on_halt: bool = False  # halted: ask the EA to close every open position
    reduce_on_reducing: bool = False  # reducing: ask the EA to cut each open position once
    reduce_fraction: float = Field(0.5, gt=0, lt=1)  # ... by this share of its volume
    # Hard equity floor, % of the equity high-water mark: at or below it the account is halted and
    # flattened (RISK_EQUITY_FLOOR), lifted only by POST /v1/resume. 0 = off.
    equity_floor_pct: float = Field(0.0, ge=0, lt=100)

    @model_validator(mode="after")
    def _rules(self) -> RiskConfig:
        self._check_rules("risk")
        return self


@_rule("risk.risk_pct", "risk.max_risk_pct")
def _risk_below_max(v: Values) -> list[str]:
    r = v["risk"]
    if r["risk_pct"] > r["max_risk_pct"]:
        return [
            f"risk.risk_pct: must be <= risk.max_risk_pct ({r['max_risk_pct']}), "
            f"got {r['risk_pct']}"
        ]
    return []


@_rule("risk.drawdown_defensive_pct", "risk.drawdown_reducing_pct", "risk.drawdown_halted_pct")
def _drawdowns_ordered(v: Values) -> list[str]:
    r = v["risk"]
    if not r["drawdown_defensive_pct"] < r["drawdown_reducing_pct"] < r["drawdown_halted_pct"]:
        return [
            "risk.drawdown_*: expected defensive < reducing < halted, got "
            f"{r['drawdown_defensive_pct']} / {r['drawdown_reducing_pct']} / "
            f"{r['drawdown_halted_pct']}"
        ]
    return []


@_rule("risk.reducing_resume_pct", "risk.drawdown_reducing_pct")
def _reducing_resume(v: Values) -> list[str]:
    r = v["risk"]
    if r["reducing_resume_pct"] > r["drawdown_reducing_pct"]:
        return [
            "risk.reducing_resume_pct: must be <= risk.drawdown_reducing_pct "
            f"({r['drawdown_reducing_pct']}), got {r['reducing_resume_pct']}"
        ]
    return []


@_rule("risk.halt_resume_pct", "risk.drawdown_halted_pct")
def _halt_resume(v: Values) -> list[str]:
    r = v["risk"]
    if r["halt_resume_pct"] >= r["drawdown_halted_pct"]:
        return [
            "risk.halt_resume_pct: must be < risk.drawdown_halted_pct "
            f"({r['drawdown_halted_pct']}), got {r['halt_resume_pct']}"
        ]
    return []


class LeverageConfig(_Section):
    # Effective leverage = open notional / equity. Caps are the "1:N" numbers.
    defensive: int = Field(100, ge=1, le=HARD_LEVERAGE_CEILING)
    normal: int = Field(300, ge=1, le=HARD_LEVERAGE_CEILING)
    profit: int = Field(500, ge=1, le=HARD_LEVERAGE_CEILING)

    @model_validator(mode="after")
    def _rules(self) -> LeverageConfig:
        self._check_rules("leverage")
        return self


@_rule("leverage.defensive", "leverage.normal", "leverage.profit")
def _leverage_ordered(v: Values) -> list[str]:
    lev = v["leverage"]
    if not lev["defensive"] <= lev["normal"] <= lev["profit"]:
        return [
            "leverage: expected defensive <= normal <= profit, got "
            f"{lev['defensive']} / {lev['normal']} / {lev['profit']}"
        ]
    return []


class SizingConfig(_Section):
    """Risk per trade = risk.risk_pct x Kelly x volatility x mode, clamped (see docs/engine.md)."""

    min_risk_pct: float = Field(0.25, gt=0, le=HARD_MAX_RISK_PCT)  # floor of the clamp
    kelly_enabled: bool = True
    kelly_trades: int = Field(50, ge=2, le=1000)  # journal window: the last N closed positions
    kelly_min_trades: int = Field(20, ge=1, le=1000)  # fewer -> base risk, Kelly unused
    kelly_fraction: float = Field(0.5, gt=0, le=1)  # 0.5 = half-Kelly
    # Beta prior on the win rate: this many pseudo-trades at break-even for the observed payoff
    # ratio; shrinks f* by n / (n + prior_trades).
    kelly_prior_trades: float = Field(10.0, ge=0, le=1000)
    no_edge: Literal["min", "refuse"] = "min"  # f* <= 0: trade at min_risk_pct, or refuse
    volatility_window: int = Field(500, ge=20, le=10_000)  # bars of ATR history ranked
    volatility_top_pct: float = Field(80.0, ge=0, lt=100)  # ATR percentile above this is "high"
    volatility_factor: float = Field(0.5, gt=0, le=1)  # risk multiplier at high volatility

    @model_validator(mode="after")
    def _rules(self) -> SizingConfig:
        self._check_rules("sizing")
        return self


@_rule("sizing.kelly_min_trades", "sizing.kelly_trades")
def _kelly_window(v: Values) -> list[str]:
    s = v["sizing"]
    if s["kelly_min_trades"] > s["kelly_trades"]:
        return [
            "sizing.kelly_min_trades: must be <= sizing.kelly_trades "
            f"({s['kelly_trades']}), got {s['kelly_min_trades']}"
        ]
    return []


class StrategyConfig(_Section):
    name: str = "sma_cross"
    params: dict[str, Any] = Field(default_factory=dict)


class ManageConfig(_Section):
    breakeven_r: float = Field(1.0, ge=0)  # SL to entry at +1R
    breakeven_buffer_points: float = Field(10.0, ge=0)  # SL at entry +/- this many points
    partial_at_tp_fraction: float = Field(0.5, ge=0, le=1)  # partial at 50% of the TP distance
    partial_fraction: float = Field(0.5, ge=0, le=1)  # close half
    trail_atr: float = Field(2.0, ge=0)  # ATR trailing after the partial
    atr_period: int = Field(14, ge=1)


class VerdictConfig(_Section):
    valid_seconds: int = Field(5, ge=1, le=3600)  # the EA ignores a verdict after this


class JournalConfig(_Section):
    retention_rows: int = Field(200_000, ge=100)  # decision journal rows kept at most
    retention_days: int = Field(30, ge=1, le=3650)  # ... and for this many days at most
    bars_capacity: int = Field(2000, ge=100, le=100_000)  # bars kept per account/symbol/tf


class LoggingConfig(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_holds: bool = False  # log every hold verdict (noisy: one per tick)


class FeedsConfig(_Section):
    """EODHD calendar/news/sentiment and the EA's calendar pushes (see docs/feeds.md)."""

    # Token: EODHD_API_TOKEN (environment) or this key; never logged. Empty = EODHD off.
    eodhd_token: str = ""
    eodhd_base_url: str = "https://eodhd.com/api"  # or EODHD_BASE_URL
    request_timeout_seconds: float = Field(10.0, gt=0, le=120)  # read timeout per request
    max_retries: int = Field(2, ge=0, le=10)  # retries of 429/5xx/timeouts per request
    budget_daily_calls: int = Field(100_000, ge=1)  # EODHD API calls per UTC day
    budget_per_minute: int = Field(1000, ge=1)  # requests per sliding minute
    calendar_interval_seconds: float = Field(900.0, ge=1)  # economic-events refresh
    calendar_days_back: int = Field(1, ge=0, le=30)  # refreshed window: today - this ...
    calendar_days_ahead: int = Field(7, ge=0, le=60)  # ... to today + this (UTC days)
    news_interval_seconds: float = Field(300.0, ge=1)  # /news refresh, per tracked ticker
    sentiments_interval_seconds: float = Field(3600.0, ge=1)  # /sentiments series refresh
    mt5_calendar_interval_seconds: float = Field(900.0, ge=1)  # expected EA calendar pushes
    news_tickers: list[str] = Field(
        default_factory=lambda: ["EURUSD.FOREX", "USDJPY.FOREX", "GBPUSD.FOREX", "AUDUSD.FOREX"]
    )
    news_limit: int = Field(50, ge=1, le=1000)  # articles per /news request
    blackout_before_minutes: float = Field(30.0, ge=0, le=1440)  # no entries from T - this ...
    blackout_after_minutes: float = Field(60.0, ge=0, le=1440)  # ... to T + this (inclusive)
    upcoming_minutes: float = Field(15.0, ge=0, le=1440)  # news.upcoming log/metric lead time
    # Close this symbol's positions this long before a high-impact event (0 = off). At most
    # blackout_before_minutes, so nothing can be re-opened between the close and the event.
    close_before_event_minutes: float = Field(0.0, ge=0, le=1440)
    # Importance tables: ISO-2 country (or "*" for all) -> topics; a key given here replaces
    # that country's built-in list (topics: sidecar/feeds/calendar_rules.py TOPICS).
    high_impact: dict[str, list[str]] = Field(default_factory=dict)
    medium_impact: dict[str, list[str]] = Field(default_factory=dict)
    # Symbol -> exposed currencies, over the built-in rules (e.g. {"GOLD" = ["XAU", "USD"]}).
    symbol_currencies: dict[str, list[str]] = Field(default_factory=dict)
    sentiment_half_life_hours: float = Field(6.0, gt=0, le=24 * 30)
    sentiment_block_below: float = Field(-0.5, ge=-1, le=0)  # long a currency this bad: refused
    sentiment_defensive_below: float = Field(-0.2, ge=-1, le=0)  # this bad: defensive leverage
    sentiment_min_weight: float = Field(1.0, ge=0)  # decayed evidence needed to act on a score
    sentiment_series_weight: float = Field(1.0, ge=0)  # weight of a /sentiments day (x sqrt n)
    stale_policy: Literal["block", "defensive", "ignore"] = "block"

    @field_validator("eodhd_base_url")
    @classmethod
    def _base_url(cls, v: str) -> str:
        return _plain_base_url(v)

    @model_validator(mode="after")
    def _rules(self) -> FeedsConfig:
        self._check_rules("feeds")
        return self


@_rule("feeds.sentiment_block_below", "feeds.sentiment_defensive_below")
def _sentiment_ordered(v: Values) -> list[str]:
    f = v["feeds"]
    if f["sentiment_block_below"] > f["sentiment_defensive_below"]:
        return [
            "feeds.sentiment_block_below: must be <= feeds.sentiment_defensive_below "
            f"({f['sentiment_defensive_below']}), got {f['sentiment_block_below']}"
        ]
    return []


@_rule("feeds.close_before_event_minutes", "feeds.blackout_before_minutes")
def _close_inside_blackout(v: Values) -> list[str]:
    f = v["feeds"]
    if f["close_before_event_minutes"] > f["blackout_before_minutes"]:
        return [
            "feeds.close_before_event_minutes: must be <= feeds.blackout_before_minutes "
            f"({f['blackout_before_minutes']}), got {f['close_before_event_minutes']}"
        ]
    return []


@_rule("feeds.high_impact", "feeds.medium_impact")
def _known_topics(v: Values) -> list[str]:
    from sidecar.feeds.calendar_rules import TOPICS

    known = {t for t, _ in TOPICS}
    problems = []
    for key in ("high_impact", "medium_impact"):
        for country, topics in v["feeds"][key].items():
            bad = [t for t in topics if t not in known]
            if bad:
                problems.append(
                    f"feeds.{key}.{country}: unknown topic(s) {', '.join(map(repr, bad))}; "
                    f"expected some of {', '.join(sorted(known))}"
                )
    return problems


_TARGET_NAME = r"^[A-Za-z][A-Za-z0-9_-]{0,63}$"


def _webhook_url(v: str) -> str:
    """An http(s) URL with a host. The value carries an access token: never echoed."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(v)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:
        ok = False
    if not ok:
        raise ValueError("expected an http:// or https:// URL with a host (value not shown)")
    return v


class MentionConfig(_Section):
    """Who a DingTalk message @-mentions for one severity."""

    at_mobiles: list[str] = Field(default_factory=list)  # phone numbers (also written as @N)
    at_user_ids: list[str] = Field(default_factory=list)  # DingTalk user ids
    is_at_all: bool = False  # @everyone in the group


class DingTalkTarget(_Section):
    """One DingTalk custom robot (自定义机器人)."""

    name: str = Field(pattern=_TARGET_NAME)  # in logs, metrics and /alerts/alertmanager/<name>
    webhook: str  # https://oapi.dingtalk.com/robot/send?access_token=... (a secret)
    secret: str = ""  # the robot's signing secret (加签, "SEC..."); "" = unsigned robot
    # severity label value -> who to @-mention on firing alerts; "default" for the others.
    mentions: dict[str, MentionConfig] = Field(default_factory=dict)
    max_per_minute: int = Field(20, ge=1, le=20)  # DingTalk allows 20 messages a minute

    @field_validator("webhook")
    @classmethod
    def _webhook(cls, v: str) -> str:
        return _webhook_url(v)

    @field_validator("mentions")
    @classmethod
    def _severity_keys(cls, v: dict[str, MentionConfig]) -> dict[str, MentionConfig]:
        import re

        bad = [k for k in v if not re.fullmatch(r"[A-Za-z0-9_-]{1,32}", k)]
        if bad:
            raise ValueError(f"expected severity names (letters, digits, _ or -), got {bad!r}")
        return v


class SlackTarget(_Section):
    """One Slack incoming webhook."""

    name: str = Field(pattern=_TARGET_NAME)
    webhook: str  # https://hooks.slack.com/services/T.../B.../... (a secret)
    max_per_minute: int = Field(20, ge=1, le=60)  # Slack: about one message a second

    @field_validator("webhook")
    @classmethod
    def _webhook(cls, v: str) -> str:
        return _webhook_url(v)


class AlertsConfig(_Section):
    """The alert relay: Alertmanager webhooks to DingTalk and Slack (docs/alerts.md)."""

    db: str = "sidecar-alerts.sqlite"  # what was announced and what waits (its own SQLite file)
    http: str = "127.0.0.1:8766"  # HOST:PORT of `sidecar alert-relay` (serve uses server.http)
    timeout_seconds: float = Field(5.0, gt=0, le=60)  # one POST to a robot or a webhook
    repeat_hours: float = Field(12.0, ge=0, le=24 * 30)  # re-announce still firing; 0 = never
    dingtalk: list[DingTalkTarget] = Field(default_factory=list)
    slack: list[SlackTarget] = Field(default_factory=list)

    @field_validator("http")
    @classmethod
    def _hostport(cls, v: str) -> str:
        parse_http(v)
        return v

    @model_validator(mode="after")
    def _rules(self) -> AlertsConfig:
        self._check_rules("alerts")
        return self


@_rule("alerts.dingtalk", "alerts.slack")
def _unique_target_names(v: Values) -> list[str]:
    seen: set[str] = set()
    problems = []
    for kind in ("dingtalk", "slack"):
        for i, target in enumerate(v["alerts"][kind]):
            name = target["name"] if isinstance(target, Mapping) else target.name
            if name in seen:
                problems.append(
                    f"alerts.{kind}.{i}.name: {name!r} is already the name of another target; "
                    "expected a unique name"
                )
            seen.add(name)
    return problems


@_rule("alerts.http", "server.token")
def _token_for_remote_relay(v: Values) -> list[str]:
    if v["server"]["token"]:
        return []
    address = v["alerts"]["http"]
    try:
        host, port = parse_http(address)
        bound = str(listen_address(host, port)[1][0])
    except (OSError, ValueError) as exc:
        return [
            f"alerts.http: cannot tell which address {address!r} binds ({exc}); binding "
            "anything but a loopback address needs a token (server.token or SIDECAR_TOKEN)"
        ]
    if is_loopback(bound):
        return []
    return [
        f"alerts.http: {address!r} binds the non-loopback address {bound}, which needs a token "
        "(server.token or SIDECAR_TOKEN)"
    ]


class Config(_Section):
    server: ServerConfig = Field(default_factory=ServerConfig)
    broker: BrokerConfig = Field(default_factory=BrokerConfig)
    risk: RiskConfig = Field(default_factory=RiskConfig)
    leverage: LeverageConfig = Field(default_factory=LeverageConfig)
    sizing: SizingConfig = Field(default_factory=SizingConfig)
    strategy: StrategyConfig = Field(default_factory=StrategyConfig)
    manage: ManageConfig = Field(default_factory=ManageConfig)
    verdict: VerdictConfig = Field(default_factory=VerdictConfig)
    journal: JournalConfig = Field(default_factory=JournalConfig)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    feeds: FeedsConfig = Field(default_factory=FeedsConfig)
    alerts: AlertsConfig = Field(default_factory=AlertsConfig)

    @model_validator(mode="after")
    def _rules(self) -> Config:
        values = self.model_dump()
        problems = [
            p for rule in _RULES if len(rule.sections) > 1 for p in rule.check(values)
        ]  # rules within one section ran in that section's model
        if problems:
            raise ValueError("; ".join(problems))
        return self


@_rule("sizing.min_risk_pct", "risk.risk_pct")
def _risk_floor(v: Values) -> list[str]:
    if v["sizing"]["min_risk_pct"] > v["risk"]["risk_pct"]:
        return [
            f"sizing.min_risk_pct: must be <= risk.risk_pct ({v['risk']['risk_pct']}), "
            f"got {v['sizing']['min_risk_pct']}"
        ]
    return []


@_rule("server.zmq", "server.http", "server.token")
def _token_for_remote(v: Values) -> list[str]:
    server = v["server"]
    if server["token"]:
        return []
    problems = []
    for name, address in (("server.zmq", server["zmq"]), ("server.http", server["http"])):
        problem = exposure_problem(name, address)
        if problem:
            problems.append(problem)
    return problems


class ConfigError(Exception):
    """All configuration problems, one per line."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def parse_http(hostport: str) -> tuple[str, int]:
    """`HOST:PORT` (`[v6]:PORT`) → (host, port) for the HTTP listener. An empty host or `*`
    means every IPv4 interface, as `0.0.0.0` does."""
    host, colon, port = hostport.rpartition(":")
    if not colon or not port.isascii() or not port.isdigit() or int(port) > 65535:
        raise ValueError("expected HOST:PORT (e.g. 127.0.0.1:8765)")
    return host.strip("[]"), int(port)


_WILDCARD = {"": "0.0.0.0", "*": "0.0.0.0"}


def listen_address(host: str, port: int) -> tuple[socket.AddressFamily, Any]:
    """(family, sockaddr) a listener on `host` binds, resolved as the sidecar's own TCP
    listeners do (HTTP and the alert relay): IPv4 unless `host` is an IPv6 address, a name
    resolved by getaddrinfo, `""` and `*` every IPv4 interface. Raises OSError (e.g.
    socket.gaierror) when the host does not resolve."""
    host = _WILDCARD.get(host, host)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    info = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM, 0, socket.AI_PASSIVE)
    return info[0][0], info[0][4]


def _libzmq_bound_host(host: str) -> str:
    """The address libzmq binds for `tcp://HOST:...`: `*`, an interface name (its address),
    an IP address or a host name. Asked of libzmq itself, on a throwaway port."""
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        pass
    else:
        return str(ip)
    if host == "*":
        return "0.0.0.0"
    import zmq  # only for names: libzmq resolves interface names before host names

    ctx = zmq.Context()
    try:
        sock = ctx.socket(zmq.REP)
        try:
            sock.setsockopt(zmq.LINGER, 0)
            sock.bind(f"tcp://{host}:0")
            bound = sock.getsockopt_string(zmq.LAST_ENDPOINT)
        except zmq.ZMQError as exc:
            raise ValueError(exc.strerror) from None
        finally:
            sock.close(0)
    finally:
        ctx.term()
    return bound.split("://", 1)[-1].rsplit(":", 1)[0].strip("[]")


def bound_host(component: str, address: str) -> str | None:
    """The IP address `address` (the value of `server.http` or `server.zmq`) listens on,
    resolved the way the server will bind it; None for a transport that is not reachable from
    another machine (ipc://, inproc://). Raises ValueError or OSError when it cannot tell
    (a name that does not resolve, an unknown transport)."""
    if component == "server.http":
        host, port = parse_http(address)
        return str(listen_address(host, port)[1][0])
    scheme, sep, rest = address.partition("://")
    if scheme in ("ipc", "inproc") and sep:
        return None  # local-only transports: nothing to expose
    if scheme != "tcp" or not sep or ":" not in rest:
        raise ValueError(f"cannot tell which addresses {address!r} listens on")
    return _libzmq_bound_host(rest.rsplit(":", 1)[0])


def exposure_problem(component: str, address: str) -> str | None:
    """Why binding `address` needs a token: it listens on a non-loopback address, or on one
    that cannot be resolved; None when it is loopback (or local-only, or disabled). The one
    check of `check-config` and start-up (which checks the bound socket again)."""
    if not address:
        return None
    try:
        host = bound_host(component, address)
    except (OSError, ValueError) as exc:
        return (
            f"{component}: cannot tell which address {address!r} binds ({exc}); binding "
            "anything but a loopback address needs a token (server.token or SIDECAR_TOKEN)"
        )
    if host is None or is_loopback(host):
        return None
    every = " (every interface)" if ipaddress.ip_address(host).is_unspecified else ""
    return (
        f"{component}: {address!r} binds the non-loopback address {host}{every}, which needs "
        "a token (server.token or SIDECAR_TOKEN)"
    )


def is_loopback(host: str) -> bool:
    """Whether `host` is a loopback IP address (names are not resolved here: see bound_host)."""
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


_SECRET_KEYS = ("token", "eodhd_token", "api_token", "password", "secret", "webhook")
# Words that make a key look like it holds a secret: its value is never echoed in a problem,
# whether the key is a real one or a mistyped one (`eodhd_tokn`, `api_key`, `webhook_url`).
_SECRET_WORDS = ("token", "secret", "passw", "pwd", "key", "auth", "webhook", "credential")


def is_secret_key(key: str) -> bool:
    """A key whose value is never echoed (errors, `sidecar config show`)."""
    return key.lower() in _SECRET_KEYS or key.lower().endswith("_token")


def _is_secret(key: str) -> bool:
    """is_secret_key, or a key that only looks like one (never echoed in a problem either)."""
    low = key.lower()
    return is_secret_key(low) or any(w in low for w in _SECRET_WORDS)


def _plain_base_url(v: str) -> str:
    """An http(s) URL with a host and nothing that could carry a credential (user:password@,
    a query such as ?api_token=, a fragment): the token has its own key, masked where shown,
    while this value is printed by `config show` and in problems."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(v)
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        plain = not (parts.username or parts.password or parts.query or parts.fragment)
        plain = plain and "@" not in parts.netloc and "?" not in v and "#" not in v
    except ValueError:
        ok = plain = False
    if not ok:
        raise ValueError("expected an http:// or https:// URL with a host (value not shown)")
    if not plain:
        raise ValueError(
            "expected a URL without user:password@, query or fragment: the token goes in "
            "feeds.eodhd_token or EODHD_API_TOKEN (value not shown)"
        )
    return v


def _parse_env_value(text: str) -> Any:
    try:
        return tomllib.loads(f"x = {text}")["x"]
    except tomllib.TOMLDecodeError:
        return text


_DIRECT_ENV = {
    "SIDECAR_TOKEN": ("server", "token"),
    "SIDECAR_DB": ("server", "db"),
    "SIDECAR_ZMQ": ("server", "zmq"),
    "SIDECAR_ZMQ_ENGINE": ("server", "zmq_engine"),
    "SIDECAR_HTTP": ("server", "http"),
    "EODHD_API_TOKEN": ("feeds", "eodhd_token"),
    "EODHD_BASE_URL": ("feeds", "eodhd_base_url"),
}


def env_sources(env: Mapping[str, str] | None = None) -> list[str]:
    """Names of the environment variables that override the configuration."""
    env = os.environ if env is None else env
    return sorted(
        var
        for var in env
        if var in _DIRECT_ENV or (var.startswith("SIDECAR__") and var.count("__") == 2)
    )


def _env_overrides(env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for var, (section, key) in _DIRECT_ENV.items():
        if var in env:
            out.setdefault(section, {})[key] = env[var]
    for var, value in env.items():
        if var.startswith("SIDECAR__") and var.count("__") == 2:
            _, section, key = var.split("__")
            # Secrets stay strings: "20240101" must not become a number (nor be echoed back).
            parsed = value if _is_secret(key) else _parse_env_value(value)
            out.setdefault(section.lower(), {})[key.lower()] = parsed
    return out


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _field_problem(err: Any) -> str:
    loc = ".".join(str(p) for p in err["loc"])
    msg = err["msg"].removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        # A mistyped key may be a mistyped secret (`eodhd_tokn`): its value is never echoed.
        return f"{loc}: unknown key{_did_you_mean(err['loc'])} (value not shown)"
    secret = any(_is_secret(str(p)) for p in err["loc"]) or "(value not shown)" in msg
    got = "" if err["type"] == "missing" or secret else f", got {err['input']!r}"
    return f"{loc}: {msg[0].lower()}{msg[1:]}{got}"


def _did_you_mean(loc: tuple[Any, ...]) -> str:
    """The hint for a key one typo away from a known one (", did you mean 'token'?"), or ""."""
    import difflib

    model: Any = Config
    for part in loc[:-1]:
        field = model.model_fields.get(str(part)) if isinstance(model, type) else None
        model = field.annotation if field is not None else None
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return ""
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1, cutoff=0.75)
    return f", did you mean {close[0]!r}?" if close else ""


@functools.cache
def _adapter(annotation: Any) -> TypeAdapter[Any]:
    return TypeAdapter(annotation)


def _best_effort_values(data: Mapping[str, Any], failed: set[str]) -> dict[str, dict[str, Any]]:
    """Every section's defaults with the given values that are valid on their own; a value that
    does not convert joins `failed`."""
    values: dict[str, dict[str, Any]] = {}
    for section, info in Config.model_fields.items():
        model = info.annotation
        assert isinstance(model, type) and issubclass(model, BaseModel)
        current = model.model_construct().model_dump()
        raw = data.get(section)
        if isinstance(raw, Mapping):
            for key, value in raw.items():
                field = model.model_fields.get(key)
                name = f"{section}.{key}"
                if field is None or name in failed:
                    continue
                try:
                    current[key] = _adapter(field.annotation).validate_python(value)
                except ValidationError:
                    failed.add(name)
        values[section] = current
    return values


def _all_problems(data: Mapping[str, Any], exc: ValidationError) -> list[str]:
    """Every problem once: each field's own, then every cross-field rule whose fields are valid.

    pydantic runs a model's rules only when all its fields are valid, and the top level's only
    when every section is, so a file with several mistakes would reveal them one fix at a time.
    """
    fields: list[str] = []
    failed: set[str] = set()
    rule_level: list[str] = []  # what the models' rule validators said (all valid fields)
    for err in exc.errors(include_url=False):
        loc = [str(p) for p in err["loc"]]
        if err["type"] == "value_error" and len(loc) <= 1:
            rule_level.append(err["msg"].removeprefix("Value error, "))
            continue
        failed.add(".".join(loc[:2]))  # "risk" alone when the whole section has the wrong type
        fields.append(_field_problem(err))
    values = _best_effort_values(data, failed)
    rules = [
        problem
        for rule in _RULES
        if not any(f in failed or f.split(".", 1)[0] in failed for f in rule.fields)
        for problem in rule.check(values)
    ]
    # A model's message joins its rules' problems with "; ": keep it only if it says more
    # (a check that is not a registered rule).
    for message in rule_level:
        rest = message
        for problem in rules:
            rest = rest.replace(problem, "")
        if rest.strip("; "):
            rules.append(message)
    return list(dict.fromkeys(fields + rules))


def load_config(
    path: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    extra_checks: Callable[[dict[str, Any]], list[str]] | None = None,
) -> Config:
    """Read the TOML file (optional), apply environment and CLI overrides, validate everything.

    `extra_checks` sees the merged raw data and returns more problems (the strategy registry
    checks its own parameters this way, so config does not import the engine); every problem,
    from either source, is reported in one ConfigError.
    """
    env = os.environ if env is None else env
    data: dict[str, Any] = {}
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError([f"{path}: file not found"]) from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError([f"{path}: not valid TOML: {exc}"]) from None
    data = _merge(data, _env_overrides(env))
    if overrides:
        data = _merge(data, overrides)
    problems = extra_checks(data) if extra_checks else []
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_all_problems(data, exc) + problems) from None
    if problems:
        raise ConfigError(problems)
    return config
