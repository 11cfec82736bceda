"""gateway.tools.demo_consumers: the demo's three consumers in three stages (the running demo is
tested in test_demo)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from gateway.migration.standing import standings
from gateway.tools.demo_consumers import banner, demo_policy, with_demo_policy
from tests.conftest import make_config

NOW = datetime(2026, 12, 20, 9, 30, tzinfo=UTC)


def test_three_consumers_in_three_stages_and_a_window_for_one_group() -> None:
    policy = demo_policy(NOW)
    calls = {consumer.name: 1.0 for consumer in policy.consumers}
    seen = {name: NOW.timestamp() - 60 for name in calls}
    rows = standings(policy.consumers, calls, seen, NOW.timestamp())
    assert [(row.name, row.stage) for row in rows] == [
        ("billing-api", "cut_off"),
        ("storefront", "calling"),
        ("reporting-job", "exempt"),
    ]
    (window,) = policy.brownout
    assert window.start > NOW and window.targets is not None
    assert window.targets.groups == ("web",)


def test_the_policy_joins_the_config_and_the_sunset_follows_the_last_cutoff() -> None:
    policy = demo_policy(NOW)
    config = with_demo_policy(make_config(), policy)
    assert [c.name for c in config.consumers] == ["billing-api", "storefront", "reporting-job"]
    assert config.sunset_date == "2027-03-20T00:00:00Z"  # reporting-job's cut-off
    given = replace(make_config(), sunset_date="2030-01-01T00:00:00Z")
    assert with_demo_policy(given, policy).sunset_date == "2030-01-01T00:00:00Z"


def test_the_banner_names_the_page_and_how_to_rehearse() -> None:
    text = banner("http://127.0.0.1:8080", demo_policy(NOW))
    assert "Migration page: http://127.0.0.1:8080/migration " in text
    assert "cut off since 2026-12-13" in text
    assert "-H 'Gateway-Rehearsal: cutoff'" in text
