"""The shipped Prometheus and Alertmanager configuration, checked by their own tools.

`promtool check config`, `promtool check rules` and `promtool test rules` (Debian's `prometheus`)
and `amtool check-config` / `amtool config routes test` (Debian's `prometheus-alertmanager`) run
on configs/prometheus and configs/alertmanager as shipped. Every alert the issue asks for exists
with a `for:`, a severity and runbook-style annotations, and has a promtool case where it fires
and one where it does not. Without promtool or amtool these tests FAIL (scripts/test.sh installs
both packages when run as root).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
PROM_DIR = ROOT / "configs" / "prometheus"
PROM_CONFIG = PROM_DIR / "prometheus.yml"
RULE_FILES = sorted((PROM_DIR / "rules").glob("*.yml"))
RULE_TESTS = sorted((PROM_DIR / "tests").glob("*.yml"))
AM_CONFIG = ROOT / "configs" / "alertmanager" / "alertmanager.yml"
RUNBOOK = ROOT / "docs" / "alerting.md"

# alert -> severity, as the issue lists them
EXPECTED = {
    "SidecarDown": "critical",
    "EAHeartbeatStale": "critical",
    "DailyLossLockActive": "critical",
    "DrawdownReducing": "warning",
    "DrawdownHalted": "critical",
    "LeverageNearCap": "warning",
    "CalendarFeedStale": "warning",
    "NewsFeedStale": "warning",
    "EODHDErrorRate": "warning",
    "EODHDBudgetLow": "warning",
    "VerdictLatencyP99High": "warning",
    "InvalidRequestsBurst": "warning",
    "HighImpactEventSoon": "info",
    "HostExporterDown": "warning",
    "HostHighCpu": "warning",
    "HostLowMemory": "warning",
    "HostDiskSpaceLow": "warning",
}


def tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(
            f"{name} not found: install Debian's prometheus and prometheus-alertmanager "
            "(scripts/test.sh does when run as root)"
        )
    return path


def run(*cmd: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=ROOT)


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def rules() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for path in RULE_FILES:
        for group in load(path)["groups"]:
            for rule in group["rules"]:
                assert rule["alert"] not in out, f"{rule['alert']} defined twice"
                out[rule["alert"]] = rule
    return out


# ------------------------------------------------------------------------------ promtool


def test_promtool_checks_the_prometheus_config() -> None:
    done = run(tool("promtool"), "check", "config", str(PROM_CONFIG))
    assert done.returncode == 0, done.stdout + done.stderr
    # check config also checks the rule files the config names (rules/*.yml)
    found = sum(int(n) for n in re.findall(r"SUCCESS: (\d+) rules found", done.stdout))
    assert found == len(EXPECTED), done.stdout


def test_promtool_checks_the_rules() -> None:
    done = run(tool("promtool"), "check", "rules", *map(str, RULE_FILES))
    assert done.returncode == 0, done.stdout + done.stderr
    found = sum(int(n) for n in re.findall(r"SUCCESS: (\d+) rules found", done.stdout))
    assert found == len(rules()) == len(EXPECTED)


def test_promtool_rule_unit_tests_pass() -> None:
    assert RULE_TESTS, "no promtool test files in configs/prometheus/tests"
    done = run(tool("promtool"), "test", "rules", *map(str, RULE_TESTS))
    assert done.returncode == 0, done.stdout + done.stderr
    assert (done.stdout + done.stderr).count("SUCCESS") == len(RULE_TESTS)


def test_every_alert_has_a_firing_and_a_not_firing_case() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    tested_files: set[Path] = set()
    for path in RULE_TESTS:
        doc = load(path)
        tested_files |= {(path.parent / f).resolve() for f in doc["rule_files"]}
        for group in doc["tests"]:
            for case in group.get("alert_rule_test", []):
                (firing if case.get("exp_alerts") else quiet).add(case["alertname"])
    assert tested_files == {p.resolve() for p in RULE_FILES}
    names = set(rules())
    assert names - firing == set(), "alerts without a case where they fire"
    assert names - quiet == set(), "alerts without a case where they do not fire"


# ------------------------------------------------------------------------------ the rules


def test_the_issues_alerts_exist_with_their_severities() -> None:
    assert {name: r["labels"]["severity"] for name, r in rules().items()} == EXPECTED


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_alert_has_a_for_and_a_runbook(name: str) -> None:
    rule = rules()[name]
    assert re.fullmatch(r"\d+[smh]", str(rule.get("for", ""))), f"{name}: no for: duration"
    notes = rule["annotations"]
    assert set(notes) == {"summary", "description", "runbook_url"}
    # what happened, what the EA is doing about it, what the trader should do
    paragraphs = notes["description"].split("\n\n")
    assert [p.split(":", 1)[0] for p in paragraphs] == ["What happened", "The EA", "Do"], name
    anchor = notes["runbook_url"].removeprefix("docs/alerting.md#")
    assert anchor == name.lower()
    headings = re.findall(r"^#+ (\S+)", RUNBOOK.read_text(encoding="utf-8"), re.M)
    assert name in headings, f"docs/alerting.md has no section for {name}"


def test_every_sidecar_metric_in_the_rules_is_exported_by_the_sidecar() -> None:
    """A renamed metric must not leave a rule watching nothing: every `sidecar_*` name in an
    expression (or an annotation's query) is a metric the service code registers."""
    source = "\n".join(
        p.read_text(encoding="utf-8") for p in (ROOT / "sidecar" / "service").glob("*.py")
    )
    used = set()
    for rule in rules().values():
        text = rule["expr"] + "".join(rule["annotations"].values())
        used |= set(re.findall(r"\bsidecar_[a-z0-9_]+", text))
    assert used
    missing = []
    for name in sorted(used):
        base = re.sub(r"_(total|bucket|count|sum)$", "", name)
        if f'"{base}"' not in source:
            missing.append(name)
    assert missing == []


# ------------------------------------------------------------------------------ Alertmanager


def test_amtool_checks_the_alertmanager_config() -> None:
    done = run(tool("amtool"), "check-config", str(AM_CONFIG))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["severity=critical", "alertname=DailyLossLockActive", "login=4242"], "relay-critical"),
        (["severity=warning", "alertname=DrawdownReducing", "login=4242"], "relay-warning"),
        (["severity=info", "alertname=HighImpactEventSoon", "currency=USD"], "relay-info"),
        (["alertname=SomethingElse"], "relay-warning"),
    ],
)
def test_alerts_are_routed_by_severity(labels: list[str], receiver: str) -> None:
    done = run(tool("amtool"), "config", "routes", "test", f"--config.file={AM_CONFIG}", *labels)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.split() == [receiver]


def test_alertmanager_groups_by_account_and_alert_and_repeats_every_12h() -> None:
    doc = load(AM_CONFIG)
    route = doc["route"]
    assert route["group_by"] == ["alertname", "login"]
    assert route["repeat_interval"] == "12h"
    for sub in route["routes"]:
        assert "group_by" not in sub and "repeat_interval" not in sub  # inherited
    urls = {
        w["url"] for r in doc["receivers"] for w in r["webhook_configs"]
    }  # every receiver is the relay
    assert urls == {"http://127.0.0.1:8765/alerts/alertmanager"}
    severities = {name: rule["labels"]["severity"] for name, rule in rules().items()}
    routed = {m.split("=")[1].strip('"') for r in route["routes"] for m in r["matchers"]}
    assert set(severities.values()) <= routed


def test_a_halted_account_does_not_also_page_for_its_daily_lock() -> None:
    inhibit = load(AM_CONFIG)["inhibit_rules"]
    (halt,) = [r for r in inhibit if r["source_matchers"] == ['alertname="DrawdownHalted"']]
    (target,) = halt["target_matchers"]
    assert re.fullmatch(target.split("=~", 1)[1].strip('"'), "DailyLossLockActive")
    assert "login" in halt["equal"]
    # the real Alertmanager applies it: tests/monitoring/test_alert_chain.py
