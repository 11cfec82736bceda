"""CONNECT targets and the intercept / tunnel / refuse decision (pure)."""

from __future__ import annotations

import pytest

from gateway.config.hosts import Target, parse_host_patterns, parse_target
from gateway.frontdoor.targets import Outcome, Policy


@pytest.mark.parametrize(
    ("target", "outcome"),
    [
        ("preview.twilio.com:443", Outcome.INTERCEPTED),
        ("preview.twilio.com:8443", Outcome.REFUSED),
        ("api.twilio.com:443", Outcome.TUNNELLED),
        ("chunderw-vpc-gll.twilio.com:443", Outcome.TUNNELLED),
        ("a.b.twilio.com:443", Outcome.TUNNELLED),
        ("api.twilio.com:80", Outcome.REFUSED),
        ("twilio.com:443", Outcome.REFUSED),
        ("eviltwilio.com:443", Outcome.REFUSED),
        ("twilio.com.evil.example:443", Outcome.REFUSED),
        ("127.0.0.1:443", Outcome.REFUSED),
        ("127.0.0.1:9000", Outcome.TUNNELLED),
    ],
)
def test_decide(target: str, outcome: Outcome) -> None:
    policy = Policy.of(
        ["preview.twilio.com"], parse_host_patterns("*.twilio.com:443,127.0.0.1:9000")
    )
    parsed = parse_target(target.encode())
    assert parsed is not None
    assert policy.decide(parsed) is outcome


def test_an_intercepted_host_is_never_tunnelled_on_another_port() -> None:
    policy = Policy.of(["preview.twilio.com"], parse_host_patterns("preview.twilio.com:8443"))
    assert policy.decide(Target("preview.twilio.com", 8443)) is Outcome.REFUSED


def test_no_tunnel_patterns_means_intercept_or_refuse() -> None:
    policy = Policy.of(["preview.twilio.com"], ())
    assert policy.decide(Target("api.twilio.com", 443)) is Outcome.REFUSED
