"""The migration page: one document of data (``/migration.json``) and its HTML rendering
(``/migration``), built from the config and from counts read elsewhere (pure; no I/O).

The HTML is one server-rendered document: the burn-down is inline SVG, the style one inline
``<style>`` allowed by its hash in :data:`CONTENT_SECURITY_POLICY`, and there is no script and
no external asset. Every string from the config or from callers (names, owners, SIDs, group
names, consumer labels) is escaped.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import Any

from gateway.config.instants import day, days_until, iso
from gateway.config.settings import GatewayConfig
from gateway.migration.burndown import colour, svg
from gateway.migration.standing import standings, upcoming

NOT_LISTED = "not listed"  # the burn-down line of consumers that are not on the list
UNGROUPED = "ungrouped"  # ... of listed consumers without a group


@dataclass(frozen=True, slots=True)
class Counts:
    """Deprecated calls as one source saw them: per consumer label over the window, each
    label's latest call, and per day (``days``: the start of each UTC day, oldest first)."""

    calls: Mapping[str, float]
    last_seen: Mapping[str, float]
    days: Sequence[float]
    per_day: Mapping[str, Sequence[float]]  # label -> calls on each of ``days``
    source: str  # "prometheus" or "tally"
    description: str  # where the counts come from, in a sentence
    notes: tuple[str, ...] = ()


def document(config: GatewayConfig, counts: Counts, now: float) -> dict[str, Any]:
    """The page's data, as ``/migration.json`` serves it."""
    consumers = config.consumers
    rows = standings(consumers, counts.calls, counts.last_seen, now)
    events = upcoming(consumers, config.schedule.windows, config.unknown_consumers_cutoff, now)
    group_of = {c.name: c.group or UNGROUPED for c in consumers}
    groups: dict[str, list[int]] = {c.group or UNGROUPED: [0] * len(counts.days) for c in consumers}
    for label, values in counts.per_day.items():
        line = groups.setdefault(group_of.get(label, NOT_LISTED), [0] * len(counts.days))
        for index, value in enumerate(values):
            line[index] += round(value)
    sunset = config.deprecation.sunset
    return {
        "generated_at": iso(now),
        "sunset": iso(sunset),
        "days_to_sunset": days_until(sunset, now),
        "source": {"kind": counts.source, "description": counts.description},
        "notes": list(counts.notes),
        "consumers": [row.to_json(now) for row in rows],
        "events": [event.to_json() for event in events],
        "burndown": {
            "days": [day(d) for d in counts.days],
            "groups": groups,
        },
    }


STYLE = """
:root{color-scheme:light;font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
body{margin:0;background:#f6f7f9;color:#1d2330;line-height:1.45}
main{max-width:1180px;margin:0 auto;padding:16px}
h1{font-size:1.45rem;margin:.2em 0 .4em}h2{font-size:1.15rem;margin:.2em 0 .6em}
section,header{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:12px 16px;
margin-bottom:14px}
.sunset{font-size:1.1rem}.sunset strong{font-size:1.6rem}
.meta,.notes{color:#4a5363;font-size:.9rem}.notes{padding-left:1.2em;margin:.3em 0}
table{border-collapse:collapse;width:100%;font-size:.92rem}
th,td{text-align:left;padding:6px 8px;border-bottom:1px solid #e6e9ee;vertical-align:top}
th{background:#f0f2f5;font-weight:600}
td.sid,td.owner{overflow-wrap:anywhere}td.day{white-space:nowrap}
td.num{text-align:right;font-variant-numeric:tabular-nums}
code{font-size:.85em}
.badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:.82rem;font-weight:600;
white-space:nowrap}
.stage-calling{background:#fde7c5;color:#7a4100}.stage-quiet{background:#d5f2e3;color:#0b5c36}
.stage-exempt{background:#d8e8fb;color:#0d4a8a}.stage-cut_off{background:#e2e4e8;color:#2f3440}
.stage-unknown{background:#f3dcef;color:#7a1f6b}
ol.events{padding-left:1.2em}ol.events li{margin:.35em 0}
.chart{width:100%;max-width:820px;height:auto;display:block}
.legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:6px 16px;font-size:.9rem}
.legend svg{vertical-align:middle;margin-right:4px}
details{margin-top:8px}.scroll{overflow-x:auto}
@media (max-width:700px){
 main{padding:8px}
 table.cards thead{display:none}
 table.cards,table.cards tbody,table.cards tr,table.cards td{display:block;width:auto}
 table.cards tr{border:1px solid #dde1e7;border-radius:6px;margin-bottom:10px;padding:4px 0}
 table.cards td{border:0;padding:3px 10px;text-align:left;white-space:normal}
 table.cards td::before{content:attr(data-label) ": ";font-weight:600;color:#4a5363}
}
"""

STYLE_HASH = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
CONTENT_SECURITY_POLICY = (
    f"default-src 'none'; style-src 'sha256-{STYLE_HASH}'; img-src data:; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

_COLUMNS = (
    "Name",
    "SID",
    "Group",
    "Owner",
    "Stage",
    "Deprecated calls",
    "Last deprecated call (UTC)",
    "Cut-off",
    "Days left",
)


def _text(value: object) -> str:
    return escape("-" if value is None or value == "" else str(value), quote=True)


def _day(value: str | None) -> str:
    return "-" if value is None else escape(value[:10])


def _minute(value: str | None) -> str:
    """``2026-12-06T01:43:35Z`` as ``2026-12-06 01:43``."""
    return "-" if value is None else escape(value[:16].replace("T", " "))


def _cell(label: str, content: str, cls: str = "") -> str:
    klass = f' class="{cls}"' if cls else ""
    return f'<td data-label="{escape(label)}"{klass}>{content}</td>'


def _row(row: Mapping[str, Any]) -> str:
    sids = "<br>".join(f"<code>{escape(sid)}</code>" for sid in row["sids"]) or "-"
    stage = row["stage"]
    badge = f'<span class="badge stage-{escape(stage)}">{escape(row["stage_text"])}</span>'
    cells = (
        _cell("Name", _text(row["name"]), "name"),
        _cell("SID", sids, "sid"),
        _cell("Group", _text(row["group"])),
        _cell("Owner", _text(row["owner"]), "owner"),
        _cell("Stage", badge, "stage"),
        _cell("Deprecated calls", str(int(row["deprecated_calls"])), "num calls"),
        _cell("Last deprecated call (UTC)", _minute(row["last_deprecated_call"]), "day"),
        _cell("Cut-off", _day(row["cutoff"]), "day"),
        _cell("Days left", _text(row["days_left"]), "num"),
    )
    return (
        f'<tr data-name="{escape(row["name"])}" data-stage="{escape(stage)}">{"".join(cells)}</tr>'
    )


def _event(event: Mapping[str, Any]) -> str:
    when = escape(event["at"].replace("T", " ").removesuffix("Z")) + " UTC"
    covers = list(event["consumers"])
    if event["unlisted_callers"]:
        covers.append("every caller not on the list")
    covered = escape(", ".join(covers)) if covers else "no listed consumer"
    exempt = f" (exempt then: {escape(', '.join(event['exempt']))})" if event["exempt"] else ""
    until = ""
    if event["end"]:
        until = " to " + escape(event["end"].replace("T", " ").removesuffix("Z")) + " UTC"
    return (
        f'<li data-kind="{escape(event["kind"])}"><time datetime="{escape(event["at"])}">'
        f"{when}</time>{until}: {escape(event['title'])} &mdash; affects {covered}{exempt}</li>"
    )


def _burndown(data: Mapping[str, Any]) -> str:
    days, groups = data["days"], data["groups"]
    stamps = [datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp() for text in days]
    legend = "".join(
        f'<li><svg width="14" height="14" aria-hidden="true"><rect width="14" height="14" '
        f'rx="3" fill="{colour(i)}"/></svg>{escape(group)}: <span class="total">'
        f"{sum(values)}</span></li>"
        for i, (group, values) in enumerate(groups.items())
    )
    head = "".join(f"<th>{escape(group)}</th>" for group in groups)
    body = "".join(
        f"<tr><td>{escape(text)}</td>"
        + "".join(f'<td class="num">{values[i]}</td>' for values in groups.values())
        + "</tr>"
        for i, text in enumerate(days)
    )
    return (
        svg(stamps, groups)
        + f'<ul class="legend">{legend}</ul>'
        + '<details><summary>Calls per day as a table</summary><div class="scroll">'
        + f'<table id="per-day"><thead><tr><th>Day (UTC)</th>{head}</tr></thead>'
        + f"<tbody>{body}</tbody></table></div></details>"
    )


def render(data: Mapping[str, Any]) -> str:
    """The page's HTML for :func:`document`'s ``data``."""
    days = data["days_to_sunset"]
    sunset_day = _day(data["sunset"])
    if days >= 0:
        sunset = f'<strong id="days-to-sunset">{days:g}</strong> days to the sunset ({sunset_day})'
    else:
        sunset = (
            f'The sunset ({sunset_day}) passed <strong id="days-to-sunset">{-days:g}</strong> '
            "days ago"
        )
    notes = "".join(f"<li>{escape(note)}</li>" for note in data["notes"])
    rows = "".join(_row(row) for row in data["consumers"]) or (
        '<tr><td colspan="9">No consumer is listed or was seen calling.</td></tr>'
    )
    events = "".join(_event(event) for event in data["events"]) or "<li>None scheduled.</li>"
    head = "".join(f"<th>{name}</th>" for name in _COLUMNS)
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<link rel="icon" href="data:,">'
        "<title>Preview Marketplace migration</title>"
        f"<style>{STYLE}</style></head><body><main>"
        "<header><h1>Preview Marketplace &rarr; Marketplace v1 migration</h1>"
        f'<p class="sunset">{sunset}</p>'
        f'<p class="meta">Generated {escape(data["generated_at"])}. '
        f"{escape(data['source']['description'])}</p>"
        f'<ul class="notes">{notes}</ul></header>'
        '<section><h2>Consumers</h2><table id="consumers" class="cards">'
        f"<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table></section>"
        f'<section><h2>Coming events</h2><ol class="events" id="events">{events}</ol></section>'
        "<section><h2>Deprecated calls per day, last 30 days</h2>"
        f"{_burndown(data['burndown'])}</section>"
        "</main></body></html>"
    )
