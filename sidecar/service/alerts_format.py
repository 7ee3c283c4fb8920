"""Alertmanager webhook payloads (version 4) in, DingTalk markdown and Slack messages out.

A message lists what changed: firing alerts first (most severe first), then the ones still firing
after `repeat_hours`, then the resolved ones. When every alert fits in one message in full, each
gets a block (summary, description, labels, since when, a link to its graph); otherwise each gets
one line, and the lines are split over as few messages as the size limit allows ("part 1/2"):
every alert is named, none is left out.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from sidecar.service.alerts_store import Pending

# DingTalk refuses bodies of 20,000 bytes and more (errcode 460101): keep a margin.
DINGTALK_MAX_BYTES = 18_000
SLACK_MAX_BYTES = 30_000  # Slack truncates text past 40,000 characters
SLACK_MAX_BLOCKS = 48  # Slack takes 50 blocks a message
SLACK_SECTION_CHARS = 2_900  # ... and 3,000 characters a section
DESCRIPTION_CHARS = 1_500
LINE_CHARS = 400
SEVERITY_ORDER = {"critical": 0, "error": 1, "warning": 2, "info": 3}
KIND_ORDER = {"firing": 0, "repeat": 1, "resolved": 2}
ZERO_TIME = "0001-01-01T00:00:00Z"


class PayloadError(ValueError):
    """The body is not an Alertmanager webhook payload the relay understands (HTTP 400)."""


# ------------------------------------------------------------------------------------ payload


def parse_payload(raw: bytes) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(alerts, group) from a version-4 body; each alert reduced to what the relay keeps.
    `truncatedAlerts` > 0 becomes one more alert, so the message says some were left out."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise PayloadError("body: expected JSON (an Alertmanager webhook payload)") from None
    if not isinstance(data, dict):
        raise PayloadError("body: expected a JSON object")
    if data.get("version") != "4":
        raise PayloadError(f'version: expected "4", got {_short(data.get("version"))}')
    alerts = data.get("alerts")
    if not isinstance(alerts, list):
        raise PayloadError("alerts: expected a list")
    out = []
    for i, a in enumerate(alerts):
        if not isinstance(a, dict):
            raise PayloadError(f"alerts.{i}: expected an object")
        status = a.get("status")
        if status not in ("firing", "resolved"):
            raise PayloadError(f"alerts.{i}.status: expected firing or resolved")
        labels = _strings(a.get("labels"), f"alerts.{i}.labels")
        annotations = _strings(a.get("annotations") or {}, f"alerts.{i}.annotations")
        starts = a.get("startsAt")
        if not isinstance(starts, str) or not starts:
            raise PayloadError(f"alerts.{i}.startsAt: expected a time")
        fp = a.get("fingerprint")
        if not isinstance(fp, str) or not fp:  # older Alertmanagers: the label set's hash
            fp = hashlib.sha256(orjson.dumps(labels, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
        out.append(
            {
                "fingerprint": fp[:64],
                "status": status,
                "labels": labels,
                "annotations": annotations,
                "startsAt": starts[:40],
                "endsAt": str(a.get("endsAt") or "")[:40],
                "generatorURL": str(a.get("generatorURL") or "")[:1000],
            }
        )
    truncated = data.get("truncatedAlerts")
    group = {
        "groupKey": str(data.get("groupKey") or "")[:1000],
        "receiver": str(data.get("receiver") or "")[:200],
        "externalURL": str(data.get("externalURL") or "")[:1000],
    }
    if isinstance(truncated, int) and truncated > 0:
        key = hashlib.sha256(group["groupKey"].encode()).hexdigest()[:16]
        common = _strings(data.get("commonLabels") or {}, "commonLabels")
        out.append(
            {
                "fingerprint": f"truncated-{key}",
                "status": "firing",
                "labels": {"alertname": "AlertsLeftOut", "severity": common.get("severity", "")},
                "annotations": {
                    "summary": f"Alertmanager left {truncated} more alert(s) of group "
                    f"{group['groupKey'] or '?'} out of its notification (max_alerts)"
                },
                "startsAt": f"truncated-{truncated}",
                "endsAt": "",
                "generatorURL": "",
            }
        )
    return out, group


def _strings(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise PayloadError(f"{where}: expected an object of strings")
    return {str(k)[:200]: str(v)[:4000] for k, v in value.items()}


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


# ------------------------------------------------------------------------------------ message


@dataclass(frozen=True)
class Message:
    """One request body for a target and the outbox rows it announces."""

    body: dict[str, Any]
    ids: tuple[int, ...]
    names: tuple[str, ...]  # alert names it carries (logs, tests)

    def size(self) -> int:
        return len(orjson.dumps(self.body))


def _sorted(items: list[Pending]) -> list[Pending]:
    def key(p: Pending) -> tuple[int, int, str, int]:
        sev = p.alert["labels"].get("severity", "").lower()
        return (KIND_ORDER.get(p.kind, 3), SEVERITY_ORDER.get(sev, 4), _name(p), p.id)

    return sorted(items, key=key)


def _name(p: Pending) -> str:
    return p.alert["labels"].get("alertname", "?")


def _when(text: str) -> str:
    if not text or text.startswith("0001-"):
        return ""
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text
    return t.strftime("%Y-%m-%d %H:%M:%S UTC") if t.utcoffset() is not None else text


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _headline(items: list[Pending]) -> str:
    counts = {k: sum(1 for p in items if p.kind == k) for k in KIND_ORDER}
    parts = []
    if counts["firing"]:
        parts.append(f"FIRING:{counts['firing']}")
    if counts["repeat"]:
        parts.append(f"STILL FIRING:{counts['repeat']}")
    if counts["resolved"]:
        parts.append(f"RESOLVED:{counts['resolved']}")
    names = list(dict.fromkeys(_name(p) for p in items))
    shown = ", ".join(names[:3]) + (f" +{len(names) - 3}" if len(names) > 3 else "")
    return f"[{' '.join(parts)}] {shown}"


LABEL_SKIP = ("alertname", "severity")
KIND_TEXT = {"firing": "🔥 FIRING", "repeat": "🔁 STILL FIRING", "resolved": "✅ RESOLVED"}


def _label_text(labels: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(labels.items()) if k not in LABEL_SKIP)


# ------------------------------------------------------------------------------------ DingTalk


def _md(text: str) -> str:
    """Escape what DingTalk's markdown would read as emphasis or code."""
    for ch in ("\\", "*", "_", "`"):
        text = text.replace(ch, "\\" + ch)
    return text


def _md_block(p: Pending) -> str:
    a = p.alert
    sev = a["labels"].get("severity", "")
    head = f"#### {KIND_TEXT[p.kind]} {'[' + sev.upper() + '] ' if sev else ''}{_md(_name(p))}"
    paragraphs = [head]
    summary = a["annotations"].get("summary")
    if summary:
        paragraphs.append(f"**{_md(_clip(summary, LINE_CHARS))}**")
    desc = a["annotations"].get("description")
    if desc:
        paragraphs.append(_md(_clip(desc, DESCRIPTION_CHARS)))
    details = []
    labels = _label_text(a["labels"])
    if labels:
        details.append(f"- labels: {_md(_clip(labels, LINE_CHARS))}")
    since = _when(a["startsAt"])
    if since:
        details.append(f"- since: {since}")
    if p.kind == "resolved" and _when(a["endsAt"]):
        details.append(f"- resolved: {_when(a['endsAt'])}")
    runbook = a["annotations"].get("runbook_url")
    if runbook:
        details.append(f"- runbook: {_md(_clip(runbook, LINE_CHARS))}")
    if a["generatorURL"]:
        details.append(f"- [graph]({a['generatorURL']})")
    if details:
        paragraphs.append("\n".join(details))
    return "\n\n".join(paragraphs)


def _md_line(p: Pending) -> str:
    a = p.alert
    sev = a["labels"].get("severity", "")
    what = a["annotations"].get("summary") or _label_text(a["labels"])
    text = f"{KIND_TEXT[p.kind]} {'[' + sev.upper() + '] ' if sev else ''}{_name(p)}: {what}"
    return "- " + _md(_clip(text, LINE_CHARS))


def dingtalk_messages(
    items: list[Pending], mentions: dict[str, Any], limit: int = DINGTALK_MAX_BYTES
) -> list[Message]:
    """DingTalk `markdown` bodies announcing `items`, each under `limit` bytes. @-mentions: those
    configured for the severities of the firing alerts in the message (`default` for others)."""
    items = _sorted(items)
    full = _dingtalk(items, [_md_block(p) for p in items], mentions, "", "\n\n---\n\n")
    if full.size() <= limit:
        return [full]
    lines = [_md_line(p) for p in items]
    groups: list[list[int]] = []
    current: list[int] = []
    for i in range(len(items)):
        trial = [*current, i]
        body = _dingtalk([items[j] for j in trial], [lines[j] for j in trial], mentions, "(9/9) ")
        if current and body.size() > limit - 200:
            groups.append(current)
            current = [i]
        else:
            current = trial
    groups.append(current)
    n = len(groups)
    return [
        _dingtalk(
            [items[j] for j in g],
            [lines[j] for j in g],
            mentions,
            f"({k}/{n}) " if n > 1 else "",
            "\n",
            note=f"{len(items)} alerts: one line each (too many for full details)",
        )
        for k, g in enumerate(groups, 1)
    ]


def _dingtalk(
    items: list[Pending],
    blocks: list[str],
    mentions: dict[str, Any],
    part: str,
    joiner: str = "\n\n---\n\n",
    note: str = "",
) -> Message:
    title = _clip(part + _headline(items), 120)
    text = f"### {_md(title)}\n\n" + (f"*{note}*\n\n" if note else "") + joiner.join(blocks)
    at = _mentions(items, mentions)
    who = [f"@{m}" for m in at["atMobiles"] + at["atUserIds"]]
    if who:
        text += "\n\n" + " ".join(who)
    body = {"msgtype": "markdown", "markdown": {"title": title, "text": text}, "at": at}
    return Message(body, tuple(p.id for p in items), tuple(_name(p) for p in items))


def _mentions(items: list[Pending], mentions: dict[str, Any]) -> dict[str, Any]:
    mobiles: list[str] = []
    users: list[str] = []
    everyone = False
    for sev in dict.fromkeys(
        p.alert["labels"].get("severity", "") for p in items if p.kind != "resolved"
    ):
        m = mentions.get(sev) or mentions.get("default")
        if m is None:
            continue
        mobiles += [x for x in m.at_mobiles if x not in mobiles]
        users += [x for x in m.at_user_ids if x not in users]
        everyone |= m.is_at_all
    return {"atMobiles": mobiles, "atUserIds": users, "isAtAll": everyone}


# ------------------------------------------------------------------------------------ Slack


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _slack_block(p: Pending) -> str:
    a = p.alert
    sev = a["labels"].get("severity", "")
    lines = [f"*{KIND_TEXT[p.kind]} {'[' + sev.upper() + '] ' if sev else ''}"
             f"{_slack_escape(_name(p))}*"]  # fmt: skip
    for key in ("summary", "description"):
        if a["annotations"].get(key):
            lines.append(_slack_escape(_clip(a["annotations"][key], DESCRIPTION_CHARS)))
    labels = _label_text(a["labels"])
    if labels:
        lines.append(f"labels: `{_slack_escape(_clip(labels, LINE_CHARS))}`")
    since = _when(a["startsAt"])
    if since:
        lines.append(f"since {since}")
    if p.kind == "resolved" and _when(a["endsAt"]):
        lines.append(f"resolved {_when(a['endsAt'])}")
    if a["generatorURL"]:
        lines.append(f"<{a['generatorURL']}|graph>")
    return _clip("\n".join(lines), SLACK_SECTION_CHARS)


def slack_messages(items: list[Pending], limit: int = SLACK_MAX_BYTES) -> list[Message]:
    """Slack incoming-webhook bodies: `text` (the notification) and one section per alert."""
    items = _sorted(items)
    groups: list[list[int]] = []
    current: list[int] = []
    size = 0
    blocks = [_slack_block(p) for p in items]
    for i, block in enumerate(blocks):
        cost = len(block.encode()) + 100
        if current and (len(current) >= SLACK_MAX_BLOCKS - 1 or size + cost > limit):
            groups.append(current)
            current, size = [], 0
        current.append(i)
        size += cost
    groups.append(current)
    n = len(groups)
    out = []
    for k, g in enumerate(groups, 1):
        part = [items[j] for j in g]
        title = (f"({k}/{n}) " if n > 1 else "") + _headline(part)
        body = {
            "text": _slack_escape(title),
            "blocks": [
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": f"*{_slack_escape(title)}*"},
                },
                *({"type": "section", "text": {"type": "mrkdwn", "text": blocks[j]}} for j in g),
            ],
        }
        out.append(Message(body, tuple(p.id for p in part), tuple(_name(p) for p in part)))
    return out
