"""gateway.migration.standing: each consumer's stage, and the coming events in date order."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from gateway.config.consumers import parse_brownout_tables, parse_consumers
from gateway.config.policy import parse_schedule
from gateway.migration.standing import (
    CALLING,
    CUT_OFF,
    EXEMPT,
    QUIET,
    UNKNOWN,
    coverage,
    selectors_text,
    standings,
    upcoming,
)
from tests.processes import gateway_output

DAY = 86400.0
NOW = datetime(2026, 12, 20, tzinfo=UTC).timestamp()
STRANGER = "AC" + "9" * 32

CONSUMERS = parse_consumers(
    [
        {"sid": "AC" + "1" * 32, "name": "billing-api", "group": "payments",
         "cutoff": "2026-12-15T00:00:00Z", "owner": "payments@example.com"},
        {"sid": "AC" + "2" * 32, "name": "storefront", "group": "web",
         "cutoff": "2027-02-01T00:00:00Z"},
        {"sid": "AC" + "3" * 32, "name": "reporting-job", "group": "payments",
         "exempt_until": "2027-01-31T00:00:00Z", "cutoff": "2027-03-01T00:00:00Z"},
        {"sid": ["AC" + "4" * 32, "SK" + "4" * 32], "name": "old-cron"},
    ]
)  # fmt: skip


def test_stages_first_match_wins() -> None:
    calls = {"billing-api": 3, "storefront": 10, "reporting-job": 5, STRANGER: 7, "anonymous": 2}
    last = {
        "billing-api": NOW - DAY,  # after its cut-off: refused, still calling
        "storefront": NOW - 3600,
        "reporting-job": NOW - 20 * DAY,
        "old-cron": NOW - 15 * DAY,
    }
    rows = standings(CONSUMERS, calls, last, NOW)
    assert [(row.name, row.stage, row.deprecated_calls) for row in rows] == [
        ("billing-api", CUT_OFF, 3),
        ("storefront", CALLING, 10),
        ("reporting-job", EXEMPT, 5),
        ("old-cron", QUIET, 0),  # no deprecated call for 14 days: ready to cut off
        (STRANGER, UNKNOWN, 7),
        ("anonymous", UNKNOWN, 2),
    ]
    assert [row.stage_text for row in rows[:3]] == [
        "cut off since 2026-12-15",
        "calling",
        "exempt until 2027-01-31",
    ]
    assert rows[0].called_after_cutoff and not rows[1].called_after_cutoff
    assert rows[4].sids == (STRANGER,) and rows[5].sids == ()
    assert rows[1].days_left(NOW) == 43.0 and rows[0].days_left(NOW) == -5.0
    # quiet-days is the caller's to choose
    assert standings(CONSUMERS, {}, last, NOW, quiet_days=21)[3].stage == CALLING


def test_json_rows_carry_the_documented_keys() -> None:
    row = standings(CONSUMERS, {"billing-api": 1}, {"billing-api": NOW - 60}, NOW)[0]
    assert row.to_json(NOW) == {
        "sid": "AC" + "1" * 32,
        "sids": ["AC" + "1" * 32],
        "name": "billing-api",
        "group": "payments",
        "owner": "payments@example.com",
        "stage": "cut_off",
        "stage_text": "cut off since 2026-12-15",
        "deprecated_calls": 1,
        "last_deprecated_call": "2026-12-19T23:59:00Z",
        "cutoff": "2026-12-15T00:00:00Z",
        "days_left": -5.0,
        "exempt_until": None,
    }


WINDOWS = parse_brownout_tables(
    [
        {"start": "2027-01-10T14:00:00Z", "end": "2027-01-10T16:00:00Z", "groups": ["payments"],
         "except": ["old-cron"]},
        {"start": "2026-12-01T00:00:00Z", "end": "2026-12-02T00:00:00Z"},  # over
        {"start": "2027-01-05T14:00:00Z", "end": "2027-01-05T15:00:00Z", "percent": 25,
         "consumers": ["storefront", "SK" + "4" * 32]},
    ]
)  # fmt: skip


def test_coverage_leaves_out_the_cut_off_and_names_the_exempt() -> None:
    covers, exempt, everyone = coverage(WINDOWS[0], CONSUMERS)
    assert covers == () and exempt == ("reporting-job",) and not everyone
    assert coverage(WINDOWS[2], CONSUMERS) == (("storefront", "old-cron"), (), False)
    everyone_window = parse_schedule("2027-02-02T00:00:00Z/2027-02-03T00:00:00Z").windows[0]
    # storefront is cut off by then; reporting-job is no longer exempt
    assert coverage(everyone_window, CONSUMERS) == (("reporting-job", "old-cron"), (), True)
    assert selectors_text(WINDOWS[0]) == "groups payments; except old-cron"
    assert selectors_text(everyone_window) == "every caller"


def test_upcoming_events_in_date_order() -> None:
    events = upcoming(CONSUMERS, WINDOWS, datetime(2027, 1, 6, tzinfo=UTC), NOW)
    assert [(event.at.date().isoformat(), event.kind, event.covers) for event in events] == [
        ("2027-01-05", "brownout", ("storefront", "old-cron")),
        ("2027-01-06", "unknown_cutoff", ()),
        ("2027-01-10", "brownout", ()),
        ("2027-02-01", "cutoff", ("storefront",)),
        ("2027-03-01", "cutoff", ("reporting-job",)),
    ]
    assert events[0].to_json()["percent"] == 25.0
    assert events[1].everyone_else


def test_brownout_plan_shows_selectors_and_coverage(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(
        f"""
[[consumers]]
sid = "{"AC" + "2" * 32}"
name = "storefront"
group = "web"

[[consumers]]
sid = "{"AC" + "3" * 32}"
name = "reporting-job"
group = "web"
exempt_until = 2099-01-01T00:00:00Z

[[brownout]]
start = 2098-12-08T14:00:00Z
end = 2098-12-08T16:00:00Z
groups = ["web"]
""",
        "utf-8",
    )
    out = gateway_output("brownout", "plan", "--config", str(path))
    assert "  selects: groups web\n" in out
    assert "  covers:  storefront\n" in out
    assert "  exempt:  reporting-job" in out
