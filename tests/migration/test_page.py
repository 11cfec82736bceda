"""gateway.migration.page: the page's data document and its HTML, with everything escaped and
nothing loaded or run."""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import replace
from datetime import UTC, datetime
from html.parser import HTMLParser

from gateway.config.consumers import parse_brownout_tables, parse_consumers
from gateway.config.settings import GatewayConfig
from gateway.migration.page import (
    CONTENT_SECURITY_POLICY,
    NOT_LISTED,
    STYLE,
    UNGROUPED,
    Counts,
    document,
    render,
)
from gateway.migration.tally import DAY
from tests.conftest import make_config

NOW = datetime(2026, 12, 20, 12, tzinfo=UTC).timestamp()
DAYS = [float((int(NOW // DAY) - 29 + i) * DAY) for i in range(30)]
HOSTILE = "<img src=x onerror=alert(1)>"
STRANGER = "AC" + "9" * 32


def config(owner: str = "payments-team@example.com") -> GatewayConfig:
    consumers = parse_consumers(
        [
            {"sid": "AC" + "1" * 32, "name": "billing-api", "group": "payments",
             "owner": owner, "cutoff": "2026-12-15T00:00:00Z"},
            {"sid": "AC" + "2" * 32, "name": "storefront", "group": "web"},
            {"sid": "AC" + "3" * 32, "name": "loner"},
        ]
    )  # fmt: skip
    windows = parse_brownout_tables(
        [{"start": "2027-01-05T14:00:00Z", "end": "2027-01-05T16:00:00Z", "groups": ["web"]}]
    )
    return replace(
        make_config(),
        consumers=consumers,
        brownout=windows,
        sunset_date="2027-03-01T00:00:00Z",
    )


def counts(**labels: list[int]) -> Counts:
    per_day = {label: [0] * (30 - len(v)) + v for label, v in labels.items()}
    return Counts(
        calls={label: float(sum(v)) for label, v in per_day.items()},
        last_seen={label: NOW - 60 for label in per_day},
        days=DAYS,
        per_day=per_day,
        source="tally",
        description="Counted in memory.",
        notes=("one worker's share",),
    )


def test_the_document_holds_rows_events_and_one_line_per_group() -> None:
    data = document(
        config(),
        counts(**{"billing-api": [1, 2], "storefront": [4], "loner": [1], STRANGER: [3]}),
        NOW,
    )
    assert data["days_to_sunset"] == 70.5
    assert [(r["name"], r["stage"], r["deprecated_calls"]) for r in data["consumers"]] == [
        ("billing-api", "cut_off", 3),
        ("storefront", "calling", 4),
        ("loner", "calling", 1),
        (STRANGER, "unknown", 3),
    ]
    assert [e["kind"] for e in data["events"]] == ["brownout"]
    assert data["events"][0]["consumers"] == ["storefront"]
    groups = data["burndown"]["groups"]
    assert list(groups) == ["payments", "web", UNGROUPED, NOT_LISTED]
    assert groups["payments"][-2:] == [1, 2] and groups[NOT_LISTED][-1] == 3
    assert all(len(line) == 30 for line in groups.values())
    assert data["burndown"]["days"][-1] == "2026-12-20"
    assert data["source"] == {"kind": "tally", "description": "Counted in memory."}
    assert data["notes"] == ["one worker's share"]


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_every_string_from_the_config_or_callers_is_escaped() -> None:
    hostile_label = '"><script>alert(2)</script>'
    data = document(
        config(owner=HOSTILE),
        counts(**{"billing-api": [1], hostile_label: [2]}),
        NOW,
    )
    page = render(data)
    collector = _Collector()
    collector.feed(page)
    tags = [tag for tag, _ in collector.tags]
    assert "script" not in tags and "img" not in tags
    assert HOSTILE in "".join(collector.text)  # shown as text
    assert hostile_label in "".join(collector.text)
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_the_page_loads_nothing_and_its_style_is_allowed_by_hash() -> None:
    page = render(document(config(), counts(storefront=[1]), NOW))
    collector = _Collector()
    collector.feed(page)
    for tag, attributes in collector.tags:
        assert tag not in ("script", "iframe", "object", "embed", "img"), tag
        for name in ("src", "href"):
            value = attributes.get(name)
            assert value is None or value.startswith(("data:", "#")), (tag, name, value)
        assert "style" not in attributes  # the CSP allows the one <style> element only
        assert not any(name.startswith("on") for name in attributes)
    digest = base64.b64encode(hashlib.sha256(STYLE.encode()).digest()).decode()
    assert f"style-src 'sha256-{digest}'" in CONTENT_SECURITY_POLICY
    assert CONTENT_SECURITY_POLICY.startswith("default-src 'none'")
    assert "script-src" not in CONTENT_SECURITY_POLICY  # default-src 'none' forbids scripts
    assert page.count("<style>") == 1 and f"<style>{STYLE}</style>" in page
    assert "<svg" in page and 'id="consumers"' in page and 'id="events"' in page


def test_stages_are_badges_and_numbers_are_in_the_table() -> None:
    page = render(document(config(), counts(storefront=[2, 5]), NOW))
    row = re.search(r'<tr data-name="storefront" data-stage="calling">(.*?)</tr>', page)
    assert row is not None
    assert '<span class="badge stage-calling">calling</span>' in row[1]
    assert 'class="num calls">7</td>' in row[1]
    assert 'data-name="billing-api" data-stage="cut_off"' in page
    assert "cut off since 2026-12-15" in page
    assert "70.5</strong> days to the sunset (2027-03-01)" in page


def test_a_past_sunset_is_said_so() -> None:
    cfg = replace(config(), sunset_date="2026-12-10T12:00:00Z")
    page = render(document(cfg, counts(), NOW))
    assert "The sunset (2026-12-10) passed <strong" in page and ">10</strong> days ago" in page
