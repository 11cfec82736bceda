"""Authority-form targets and tunnel host patterns, parsed (pure)."""

from __future__ import annotations

import pytest

from gateway.config.hosts import Target, parse_host_patterns, parse_target


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
