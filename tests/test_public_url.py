"""gateway.public_url: the base URL written into rewritten links (pure; literal headers)."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.public_url import public_base

FALLBACK = "127.0.0.1:8080"


def base(
    host: str | None = "gateway.test",
    headers: Mapping[str, str] | None = None,
    *,
    trust: bool = False,
    configured: str | None = None,
    scheme: str = "http",
) -> str:
    return public_base(
        configured=configured,
        scheme=scheme,
        host_header=host,
        headers=CIMultiDictProxy(CIMultiDict(headers or {})),
        trust_forwarded=trust,
        fallback_host=FALLBACK,
    )


FORWARDED = {
    "Forwarded": 'for=192.0.2.60;proto=https;host="gw.example.com:8443", for=10.0.0.1;host=inner',
    "X-Forwarded-Proto": "http",
    "X-Forwarded-Host": "xfh.example",
}


def test_configured_base_wins_over_everything() -> None:
    configured = "https://public.example/legacy"
    assert base("evil.example", FORWARDED, trust=True, configured=configured) == configured
    assert base(None, configured=configured) == configured


@pytest.mark.parametrize(
    ("host", "scheme", "expected"),
    [
        ("gateway.test", "http", "http://gateway.test"),
        ("gateway.test:8443", "https", "https://gateway.test:8443"),
        ("127.0.0.1:8080", "http", "http://127.0.0.1:8080"),
        ("[::1]:8080", "http", "http://[::1]:8080"),
        ("[2001:db8::1]", "https", "https://[2001:db8::1]"),
    ],
)
def test_request_scheme_and_host_are_used(host: str, scheme: str, expected: str) -> None:
    assert base(host, scheme=scheme) == expected


def test_forwarded_headers_are_ignored_unless_trusted() -> None:
    assert base("gateway.test", FORWARDED) == "http://gateway.test"


def test_forwarded_wins_over_x_forwarded_when_trusted() -> None:
    # The first element is the one the client-nearest (trusted) proxy wrote.
    assert base("gateway.test", FORWARDED, trust=True) == "https://gw.example.com:8443"


def test_forwarded_pairs_in_any_order_and_case() -> None:
    headers = {"Forwarded": "Host=gw.example;PROTO=HTTPS;for=1.2.3.4"}
    assert base("gateway.test", headers, trust=True) == "https://gw.example"


def test_x_forwarded_headers_when_trusted() -> None:
    headers = {"X-Forwarded-Proto": "HTTPS, http", "X-Forwarded-Host": "GW.example, inner"}
    assert base("gateway.test", headers, trust=True) == "https://gw.example"


def test_x_forwarded_proto_alone_keeps_the_host() -> None:
    assert base("gateway.test", {"X-Forwarded-Proto": "https"}, trust=True) == (
        "https://gateway.test"
    )


def test_forwarded_proto_other_than_http_or_https_is_ignored() -> None:
    headers = {"Forwarded": "proto=javascript;host=gw.example"}
    assert base("gateway.test", headers, trust=True) == "http://gw.example"


@pytest.mark.parametrize(
    "junk",
    [
        "evil.example/path",
        "user@evil.example",
        "evil.example @x",
        "gateway.test\r\nSet-Cookie: a=1",
        "gateway.test\n",
        "evil.example?x=1",
        "evil.example#x",
        "evil.example:80:80",
        "evil.example:port",
        "[::1",
        "",
        " ",
        "\\evil",
    ],
)
def test_junk_host_falls_back_to_the_listen_address(junk: str) -> None:
    assert base(junk) == f"http://{FALLBACK}"


@pytest.mark.parametrize(
    "headers",
    [
        {"Forwarded": 'host="evil.example/x"'},
        {"X-Forwarded-Host": "user@evil.example"},
        {"X-Forwarded-Host": "evil.example\r\nX: 1"},
    ],
)
def test_junk_forwarded_host_is_never_echoed(headers: dict[str, str]) -> None:
    assert "evil" not in base("gateway.test", headers, trust=True)


def test_missing_host_falls_back() -> None:
    assert base(None, scheme="https") == f"https://{FALLBACK}"
