"""Build the Grafana dashboard of the sidecar from code (Grafana's `grafana-foundation-sdk`).

    .venv/bin/python scripts/build_dashboard.py          # writes configs/grafana/dashboards/
    .venv/bin/python scripts/build_dashboard.py --check  # exit 1 when sidecar.json is stale

The JSON is the bare dashboard object file provisioning loads (configs/grafana/provisioning/),
with the datasource referenced by its provisioned uid (`prometheus`). Metric names are the
catalogue in docs/monitoring.md. Queries use Grafana's `$__rate_interval` and the `$login`
variable; tests/test_dashboard.py substitutes both before handing them to promtool and to a
real Prometheus.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from grafana_foundation_sdk.builders import (
    common,
    dashboard,
    prometheus,
    stat,
    statetimeline,
    table,
    timeseries,
)
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models.common import (
    BigValueColorMode,
    BigValueGraphMode,
    LegendDisplayMode,
    LegendPlacement,
    VisibilityMode,
)
from grafana_foundation_sdk.models.dashboard import (
    DataSourceRef,
    DynamicConfigValue,
    Threshold,
    ThresholdsMode,
    ValueMap,
    ValueMappingResult,
    VariableRefresh,
    VariableSort,
)
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "configs" / "grafana" / "dashboards" / "sidecar.json"
UID = "mt5-sidecar"
DATASOURCE_UID = "prometheus"
DS = DataSourceRef(type_val="prometheus", uid=DATASOURCE_UID)
RATE = "$__rate_interval"
L = 'login=~"$login"'

# Breaker mode as one number per account: 0 active, 1 reducing, 2 halted.
MODE_LEVEL = (
    f'max by (login) (sidecar_mode{{{L},mode="reducing"}})'
    f' + 2 * max by (login) (sidecar_mode{{{L},mode="halted"}})'
)
MODE_MAP = ValueMap(
    {
        "0": ValueMappingResult(text="active", color="green", index=0),
        "1": ValueMappingResult(text="reducing", color="orange", index=1),
        "2": ValueMappingResult(text="halted", color="red", index=2),
    }
)
LOCK_MAP = ValueMap(
    {
        "0": ValueMappingResult(text="open", color="green", index=0),
        "1": ValueMappingResult(text="LOCKED", color="red", index=1),
    }
)


def q(expr: str, legend: str = "", ref: str = "A") -> prometheus.Dataquery:
    out = prometheus.Dataquery().expr(expr).ref_id(ref)
    return out.legend_format(legend) if legend else out


def thresholds(*steps: tuple[float | None, str]) -> dashboard.ThresholdsConfig:
    return (
        dashboard.ThresholdsConfig()
        .mode(ThresholdsMode.ABSOLUTE)
        .steps([Threshold(value=v, color=c) for v, c in steps])
    )


def ts(title: str, unit: str, *targets: prometheus.Dataquery, w: int = 12) -> timeseries.Panel:
    p = (
        timeseries.Panel()
        .title(title)
        .datasource(DS)
        .unit(unit)
        .span(w)
        .height(8)
        .legend(
            common.VizLegendOptions()
            .display_mode(LegendDisplayMode.LIST)
            .placement(LegendPlacement.BOTTOM)
            .show_legend(True)
        )
    )
    for t in targets:
        p = p.with_target(t)
    return p


def st(title: str, unit: str, *targets: prometheus.Dataquery, w: int = 4) -> stat.Panel:
    p = (
        stat.Panel()
        .title(title)
        .datasource(DS)
        .unit(unit)
        .span(w)
        .height(4)
        .graph_mode(BigValueGraphMode.NONE)
        .color_mode(BigValueColorMode.VALUE)
        .reduce_options(common.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    )
    for t in targets:
        p = p.with_target(t)
    return p


def panels() -> list[tuple[str, list[Any]]]:
    """Rows of panels (title, builders), top to bottom."""
    accounts = [
        st("Breaker mode", "none", q(MODE_LEVEL, "{{login}}"))
        .mappings([MODE_MAP])
        .description("sidecar_mode: active, reducing (half risk) or halted (no entries)."),
        st("Daily-loss lock", "none", q(f"sidecar_daily_loss_locked{{{L}}}", "{{login}}"))
        .mappings([LOCK_MAP])
        .description("sidecar_daily_loss_locked: no entries until the next broker day."),
        st("Equity", "none", q(f"sidecar_equity{{{L}}}", "{{login}}")).decimals(2),
        st(
            "Drawdown",
            "percentunit",
            q(f"sidecar_drawdown_ratio{{{L}}}", "{{login}}"),
        ).thresholds(thresholds((None, "green"), (0.05, "orange"), (0.12, "red"))),
        st("Open positions", "none", q(f"sidecar_open_positions{{{L}}}", "{{login}}")),
        st(
            "EA heartbeat age",
            "s",
            q(
                f"max by (login) (time() - sidecar_ea_heartbeat_timestamp_seconds{{{L}}})",
                "{{login}}",
            ),
        ).thresholds(thresholds((None, "green"), (60, "orange"), (180, "red"))),
    ]
    risk = [
        ts(
            "Equity and balance",
            "none",
            q(f"sidecar_equity{{{L}}}", "equity {{login}}"),
            q(f"sidecar_balance{{{L}}}", "balance {{login}}", "B"),
        ),
        ts(
            "Drawdown against its limits",
            "percentunit",
            q(f"sidecar_drawdown_ratio{{{L}}}", "drawdown {{login}}"),
            q(f"sidecar_drawdown_limit_ratio{{{L}}}", "{{level}} {{login}}", "B"),
        ),
        ts(
            "Daily P/L against its limit",
            "none",
            q(f"sidecar_daily_pnl{{{L}}}", "P/L {{login}}"),
            q(f"-sidecar_daily_loss_limit{{{L}}}", "lock at {{login}}", "B"),
        ),
        statetimeline.Panel()
        .title("Breaker mode over time")
        .datasource(DS)
        .span(12)
        .height(8)
        .show_value(VisibilityMode.AUTO)
        .merge_values(True)
        .mappings([MODE_MAP])
        .with_target(q(MODE_LEVEL, "{{login}}")),
        ts(
            "Effective leverage against its cap",
            "none",
            q(f"sidecar_effective_leverage_ratio{{{L}}}", "leverage {{login}}"),
            q(f"sidecar_leverage_cap_ratio{{{L}}}", "cap {{login}}", "B"),
        ),
        ts(
            "Deals recorded",
            "none",
            q(
                f"sum by (login, entry) (increase(sidecar_trades_total{{{L}}}[{RATE}]))",
                "{{login}} {{entry}}",
            ),
        ),
    ]
    verdicts = [
        ts(
            "Verdicts by action",
            "ops",
            q(f"sum by (action) (rate(sidecar_verdicts_total[{RATE}]))", "{{action}}"),
            w=8,
        ),
        ts(
            "Refusals by reason",
            "ops",
            q(f"sum by (reason) (rate(sidecar_refusals_total[{RATE}]))", "{{reason}}"),
            w=8,
        ),
        ts(
            "Invalid requests by code",
            "ops",
            q(
                f"sum by (code, transport) (rate(sidecar_invalid_requests_total[{RATE}]))",
                "{{code}} {{transport}}",
            ),
            w=8,
        ),
        ts(
            "Verdict latency p50 / p99",
            "s",
            q(
                "histogram_quantile(0.5, sum by (le, transport) "
                f"(rate(sidecar_verdict_latency_seconds_bucket[{RATE}])))",
                "p50 {{transport}}",
            ),
            q(
                "histogram_quantile(0.99, sum by (le, transport) "
                f"(rate(sidecar_verdict_latency_seconds_bucket[{RATE}])))",
                "p99 {{transport}}",
                "B",
            ),
        ),
        ts(
            "Requests by type",
            "reqps",
            q(
                f"sum by (type, transport) (rate(sidecar_requests_total[{RATE}]))",
                "{{type}} {{transport}}",
            ),
        ),
    ]
    feeds = [
        ts(
            "EODHD calls by endpoint and status",
            "reqps",
            q(
                f"sum by (endpoint, status) (rate(sidecar_eodhd_calls_total[{RATE}]))",
                "{{endpoint}} {{status}}",
            ),
            w=8,
        ),
        ts(
            "EODHD errors (not 2xx)",
            "short",
            q(
                "sum by (endpoint, status) "
                f'(increase(sidecar_eodhd_calls_total{{status!~"2.."}}[{RATE}]))',
                "{{endpoint}} {{status}}",
            ),
            w=8,
        ),
        st(
            "EODHD budget left today",
            "percentunit",
            q("sidecar_eodhd_budget_remaining / sidecar_eodhd_budget_daily", "share"),
            q("sidecar_eodhd_budget_remaining", "calls", "B"),
            w=8,
        )
        .thresholds(thresholds((None, "red"), (0.1, "orange"), (0.25, "green")))
        .override_by_query("B", [DynamicConfigValue(id_val="unit", value="none")]),
        ts(
            "Feed ages",
            "s",
            q("sidecar_feed_age_seconds", "{{source}}"),
            q("2 * sidecar_feed_interval_seconds", "stale after ({{source}})", "B"),
        ),
        st(
            "Active blackouts",
            "none",
            q("sidecar_news_blackouts_active", "{{currency}}"),
            w=6,
        ).thresholds(thresholds((None, "green"), (1, "orange"))),
        st(
            "Next high-impact event in",
            "s",
            q("sidecar_news_next_high_impact_timestamp_seconds - time()", "{{currency}}"),
            w=6,
        ).thresholds(thresholds((None, "orange"), (1800, "green"))),
    ]
    service = [
        table.Panel()
        .title("EA heartbeat ages")
        .datasource(DS)
        .unit("s")
        .span(12)
        .height(8)
        .show_header(True)
        .with_target(
            q(f"time() - sidecar_ea_heartbeat_timestamp_seconds{{{L}}}", "{{login}} {{symbol}}")
            .instant()
            .format(PromQueryFormat.TABLE)
        ),
        ts("Journal write-behind backlog", "short", q("sidecar_journal_backlog", "entries"), w=6),
        ts(
            "Alert relay deliveries",
            "short",
            q(
                f"sum by (target, result) (increase(sidecar_alert_deliveries_total[{RATE}]))",
                "{{target}} {{result}}",
            ),
            w=6,
        ),
    ]
    return [
        ("Accounts", accounts),
        ("Risk: equity, drawdown, daily P/L, breaker", risk),
        ("Verdicts", verdicts),
        ("News feeds: EODHD, blackouts, events", feeds),
        ("EAs and the service", service),
    ]


def build() -> dict[str, Any]:
    """The dashboard as the JSON object Grafana's file provisioning loads."""
    login = (
        dashboard.QueryVariable("login")
        .label("Account")
        .datasource(DS)
        .query("label_values(sidecar_equity, login)")
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.NUMERICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
    )
    b = (
        dashboard.Dashboard("MT5 Sidecar")
        .uid(UID)
        .description("Every account at a glance: risk limits, verdicts, feeds, EAs (issue 15).")
        .tags(["sidecar", "mt5"])
        .refresh("30s")
        .time("now-6h", "now")
        .timezone("browser")
        .readonly()
        .with_variable(login)
    )
    n = 0
    for title, row in panels():
        n += 1
        b = b.with_row(dashboard.Row(title).id(n))
        for p in row:
            n += 1
            b = b.with_panel(p.id(n))
    data = json.loads(JSONEncoder(sort_keys=True).encode(b.build()))
    data.pop("id", None)  # provisioned dashboards are matched by uid
    return data


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="fail when the file is out of date")
    p.add_argument("--out", type=Path, default=OUT)
    args = p.parse_args(argv)
    text = render()
    if args.check:
        if not args.out.exists() or args.out.read_text(encoding="utf-8") != text:
            print(f"{args.out} is out of date: run scripts/build_dashboard.py", file=sys.stderr)
            return 1
        return 0
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
