"""gateway.migration.policy: the decision on a deprecated call as a pure function of (config,
time, consumer SID)."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from gateway.config.consumers import parse_brownout_tables, parse_consumers
from gateway.config.policy import parse_schedule
from gateway.config.rules import load_rules
from gateway.config.settings import GatewayConfig
from gateway.errors import BadRequest, Brownout, CutOff
from gateway.migration.deprecation import sunset_value
from gateway.migration.policy import (
    BROWNOUT,
    CUTOFF,
    NOT_DEPRECATED,
    REHEARSAL,
    UNKNOWN_CONSUMER,
    UNLISTED,
    Caller,
    Forward,
    Policy,
    Refuse,
)
from gateway.routes import Route, compile_routes
from tests.conftest import make_config

BILLING = "AC" + "1" * 32
BILLING_KEY = "SK" + "1" * 32
WEB = "AC" + "2" * 32
REPORTS = "AC" + "3" * 32
STRANGER = "AC" + "9" * 32
SUCCESSOR = "https://marketplace.twilio.com/v1/AvailableAddOns"


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


CONSUMERS = [
    {
        "sid": [BILLING, BILLING_KEY],
        "name": "billing-api",
        "group": "payments",
        "cutoff": "2026-12-15T00:00:00Z",
    },
    {"sid": WEB, "name": "storefront", "group": "web"},
    {
        "sid": REPORTS,
        "name": "reporting-job",
        "group": "payments",
        "exempt_until": "2027-01-31T00:00:00Z",
        "cutoff": "2027-03-01T00:00:00Z",
    },
]


def config(
    consumers: list[dict[str, Any]] | None = None,
    windows: list[dict[str, Any]] | None = None,
    unknown: str | None = None,
    brownouts: str = "",
) -> GatewayConfig:
    return replace(
        make_config("http://127.0.0.1:9"),
        consumers=parse_consumers(CONSUMERS if consumers is None else consumers),
        brownout=parse_brownout_tables(windows or []),
        brownouts=parse_schedule(brownouts),
        unknown_consumers_cutoff=datetime.fromisoformat(unknown) if unknown else None,
    )


def routes(cfg: GatewayConfig) -> tuple[Route, Route]:
    router = compile_routes(cfg, load_rules())
    legacy = router.match("GET", "/marketplace/AvailableAddOns").route
    v1 = router.match("GET", "/v1/AvailableAddOns").route
    return legacy, v1


def basic(sid: str) -> str:
    return "Basic " + base64.b64encode(f"{sid}:secret".encode()).decode()


def decide(
    cfg: GatewayConfig,
    authorization: str | None,
    now: float,
    rehearsal: str | None = None,
    chance: float = 0.99,
) -> Forward | Refuse:
    legacy, _ = routes(cfg)
    policy = Policy.build(cfg, lambda: chance)
    return policy.decide(legacy, SUCCESSOR, Caller(authorization, rehearsal), now)


def headers(decision: Forward | Refuse) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in decision.headers:
        found.setdefault(name, []).append(value)
    return found


def test_a_route_that_is_not_deprecated_is_forwarded_bare_even_with_a_rehearsal() -> None:
    cfg = config(unknown="2020-01-01T00:00:00+00:00")
    _, v1 = routes(cfg)
    policy = Policy.build(cfg)
    assert policy.decide(v1, "", Caller(None, "cutoff"), at("2030-01-01")) is NOT_DEPRECATED


def test_with_no_policy_every_caller_gets_the_routes_headers() -> None:
    cfg = config(consumers=[])
    decision = decide(cfg, basic(STRANGER), at("2030-01-01"))
    assert isinstance(decision, Forward)
    assert headers(decision)["Sunset"] == ["Sun, 01 Dec 2024 00:00:00 GMT"]
    assert f'<{SUCCESSOR}>; rel="successor-version"' in headers(decision)["Link"]
    assert headers(decision)["Deprecation"] == ["@1718668800"]


def test_a_listed_consumer_gets_its_own_cutoff_as_sunset_then_is_cut_off() -> None:
    cfg = config()
    before = decide(cfg, basic(BILLING), at("2026-12-14T23:59:59"))
    assert isinstance(before, Forward)
    assert headers(before)["Sunset"] == [sunset_value(datetime(2026, 12, 15, tzinfo=UTC))]
    for credential in (BILLING, BILLING_KEY):  # its account SID and its API key alike
        after = decide(cfg, basic(credential), at("2026-12-15T00:00:00"))
        assert isinstance(after, Refuse)
        assert (after.reason, after.consumer) == (CUTOFF, "billing-api")
        assert isinstance(after.error, CutOff)
        assert (after.error.status, after.error.code) == (410, 88013)
        assert "Retry-After" not in after.error.headers  # a cut-off is permanent
        assert SUCCESSOR in after.error.message
        assert f'<{SUCCESSOR}>; rel="successor-version"' in headers(after)["Link"]
        assert headers(after)["Sunset"] == headers(before)["Sunset"]
    others = decide(cfg, basic(WEB), at("2026-12-15T00:00:00"))
    assert isinstance(others, Forward)
    assert headers(others)["Sunset"] == ["Sun, 01 Dec 2024 00:00:00 GMT"]  # the route's


@pytest.mark.parametrize(
    ("authorization", "label"),
    [
        (None, "anonymous"),
        ("Bearer abc", "bearer"),
        ("Basic !!!", "unrecognized"),
        (basic(STRANGER), UNLISTED),
    ],
)
def test_closing_the_list_cuts_off_every_caller_not_on_it(
    authorization: str | None, label: str
) -> None:
    cfg = config(unknown="2026-12-20T00:00:00+00:00")
    assert isinstance(decide(cfg, authorization, at("2026-12-19T23:59:59")), Forward)
    refused = decide(cfg, authorization, at("2026-12-20T00:00:00"))
    assert isinstance(refused, Refuse) and isinstance(refused.error, CutOff)
    assert (refused.reason, refused.consumer) == (UNKNOWN_CONSUMER, label)
    assert "not on the gateway's migration list" in refused.error.message
    listed = decide(cfg, basic(WEB), at("2030-01-01"))  # listed, no cut-off of its own
    assert isinstance(listed, Forward)


TARGETED = [
    {
        "start": "2026-12-08T14:00:00Z",
        "end": "2026-12-08T16:00:00Z",
        "groups": ["payments"],
        "except": ["billing-api"],
    },
    {"start": "2026-12-09T14:00:00Z", "end": "2026-12-09T16:00:00Z", "consumers": [WEB]},
]


def test_a_targeted_window_refuses_only_whom_it_selects() -> None:
    cfg = config(windows=TARGETED)
    window_one = at("2026-12-08T15:00:00")
    # payments minus billing-api: only reporting-job, which is exempt until 2027-01-31
    for sid in (BILLING, WEB, REPORTS, STRANGER):
        assert isinstance(decide(cfg, basic(sid), window_one), Forward), sid
    no_exemption = [dict(CONSUMERS[2], exempt_until="2026-12-01T00:00:00Z")]
    cfg = config(consumers=[*CONSUMERS[:2], *no_exemption], windows=TARGETED)
    refused = decide(cfg, basic(REPORTS), window_one)
    assert isinstance(refused, Refuse) and isinstance(refused.error, Brownout)
    assert (refused.reason, refused.consumer) == (BROWNOUT, "reporting-job")
    assert refused.error.headers["Retry-After"] == "3600"
    window_two = at("2026-12-09T14:00:00")
    assert isinstance(decide(cfg, basic(WEB), window_two), Refuse)
    assert isinstance(decide(cfg, basic(REPORTS), window_two), Forward)
    assert isinstance(decide(cfg, None, window_two), Forward)  # unlisted: not targeted


def test_an_exempt_consumer_is_never_refused_by_any_window_until_its_date() -> None:
    everyone = "2027-01-30T00:00:00Z/2027-02-02T00:00:00Z"
    cfg = config(brownouts=everyone)
    assert isinstance(decide(cfg, basic(REPORTS), at("2027-01-30T12:00:00")), Forward)
    assert isinstance(decide(cfg, basic(WEB), at("2027-01-30T12:00:00")), Refuse)
    assert isinstance(decide(cfg, None, at("2027-01-30T12:00:00")), Refuse)
    assert isinstance(decide(cfg, basic(REPORTS), at("2027-01-31T00:00:00")), Refuse)


def test_a_partial_window_gives_a_sid_one_answer_whatever_the_chance() -> None:
    cfg = config(brownouts="2026-12-08T14:00:00Z/2026-12-08T16:00:00Z@50")
    now = at("2026-12-08T14:30:10")
    answers = {
        sid: {type(decide(cfg, basic(sid), now, chance=c)) for c in (0.0, 0.99)}
        for sid in [f"AC{n:032x}" for n in range(40)]
    }
    assert all(len(kinds) == 1 for kinds in answers.values())
    assert {next(iter(kinds)) for kinds in answers.values()} == {Forward, Refuse}


def test_rehearsing_a_cutoff_gives_the_cut_off_answer_before_the_date() -> None:
    cfg = config()
    real = decide(cfg, basic(BILLING), at("2026-12-16"))
    rehearsed = decide(cfg, basic(BILLING), at("2026-01-01"), rehearsal="cutoff")
    assert isinstance(real, Refuse) and isinstance(rehearsed, Refuse)
    assert rehearsed.reason == REHEARSAL and rehearsed.consumer == "billing-api"
    assert (rehearsed.error.status, rehearsed.error.code, rehearsed.error.message) == (
        real.error.status,
        real.error.code,
        real.error.message,
    )
    assert rehearsed.headers == real.headers
    assert dict(rehearsed.error.headers) == dict(real.error.headers) == {}
    # an unlisted caller rehearses the closed list's answer
    stranger = decide(cfg, basic(STRANGER), at("2026-01-01"), rehearsal=" CutOff ")
    assert isinstance(stranger, Refuse) and stranger.consumer == UNLISTED
    assert "migration list" in stranger.error.message


def test_rehearsing_a_brownout_gives_88010_with_the_windows_remaining_seconds() -> None:
    cfg = config(brownouts="2026-12-08T14:00:00Z/2026-12-08T16:00:00Z@1")
    outside = decide(cfg, basic(WEB), at("2026-01-01"), rehearsal="brownout")
    assert isinstance(outside, Refuse) and isinstance(outside.error, Brownout)
    assert outside.error.headers["Retry-After"] == "3600"
    inside = decide(cfg, basic(WEB), at("2026-12-08T15:59:00"), rehearsal="brownout")
    assert isinstance(inside, Refuse) and inside.error.headers["Retry-After"] == "60"
    assert inside.reason == REHEARSAL
    # the exempt consumer rehearses too: a rehearsal does not depend on its dates
    exempt = decide(cfg, basic(REPORTS), at("2026-12-08T15:59:00"), rehearsal="brownout")
    assert isinstance(exempt, Refuse) and exempt.error.code == 88010


def test_any_other_rehearsal_value_is_a_bad_request_not_counted_as_a_refusal() -> None:
    decision = decide(config(), basic(WEB), at("2026-01-01"), rehearsal="yes please")
    assert isinstance(decision, Refuse) and isinstance(decision.error, BadRequest)
    assert (decision.error.status, decision.error.code, decision.reason) == (400, 88007, "")


def test_two_policies_of_one_config_decide_alike() -> None:
    """What makes a fleet agree: nothing but (config, time, SID) goes in."""
    cfg = config(windows=TARGETED, unknown="2026-12-20T00:00:00+00:00", brownouts="")
    moments = [at(f"2026-12-{day:02d}T15:00:00") for day in range(7, 22)]
    callers = [basic(s) for s in (BILLING, BILLING_KEY, WEB, REPORTS, STRANGER)] + [None]
    one, two = Policy.build(cfg), Policy.build(cfg)
    legacy, _ = routes(cfg)
    for now in moments:
        for authorization in callers:
            caller = Caller(authorization)
            assert outcome(one.decide(legacy, SUCCESSOR, caller, now)) == outcome(
                two.decide(legacy, SUCCESSOR, caller, now)
            )


def outcome(decision: Forward | Refuse) -> tuple[object, ...]:
    if isinstance(decision, Forward):
        return ("forward", decision.headers)
    error = decision.error
    return (decision.reason, decision.consumer, decision.headers, error.code, error.message)
