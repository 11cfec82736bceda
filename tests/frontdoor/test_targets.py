"""CONNECT targets and the intercept / tunnel / refuse decision (pure)."""

from __future__ import annotations

import pytest

from gateway.frontdoor.targets import (
    Outcome,
    Policy,
    Target,
    parse_host_patterns,
    parse_target,
)


@pytest.mark.parametrize(
    ("raw", "target"),
    [
        (b"preview.twilio.com:443", Target("preview.twilio.com", 443)),
        (b"PREVIEW.Twilio.COM:443", Target("preview.twilio.com", 443)),
        (b"127.0.0.1:8443", Target("127.0.0.1", 8443)),
        (b"[::1]:443", Target("::1", 443)),
        (b"xn--bcher-kva.example:443", Target("xn--bcher-kva.example", 443)),
    ],
)
def test_clean_authority_form_targets(raw: bytes, target: Target) -> None:
    assert parse_target(raw) == target


@pytest.mark.parametrize(
    "raw",
    [
        b"preview.twilio.com",
        b"preview.twilio.com:",
        b"preview.twilio.com:0",
        b"preview.twilio.com:65536",
        b"preview.twilio.com:+443",
        b"preview.twilio.com:0443",
        b"preview.twilio.com:443/path",
        b"preview.twilio.com:443?q",
        b"preview.twilio.com:443#f",
        b"user@preview.twilio.com:443",
        b"http://preview.twilio.com:443",
        b"preview.twilio.com.:443",
        b"-preview.twilio.com:443",
        b"pre view.twilio.com:443",
        b"b\xc3\xbccher.example:443",
        b"::1:443",
        b":443",
        b"",
    ],
)
def test_anything_else_is_not_a_target(raw: bytes) -> None:
    assert parse_target(raw) is None


def test_patterns() -> None:
    assert [str(p) for p in parse_host_patterns(" *.twilio.com:443 , 127.0.0.1:9000,")] == [
        "*.twilio.com:443",
        "127.0.0.1:9000",
    ]
    assert parse_host_patterns("") == ()
    for bad in ("*.twilio.com", "twilio.com:https", "*twilio.com:443", "**.a.com:443", "a b:1"):
        with pytest.raises(ValueError, match="HOST:PORT"):
            parse_host_patterns(bad)


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
