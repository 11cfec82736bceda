"""gateway.serving.headers: what crosses the gateway in each direction (pure; literal headers)."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.config.rules import load_rules
from gateway.rewrite.link_map import LinkRewriter
from gateway.serving.headers import (
    HOP_BY_HOP,
    VIA,
    connection_listed,
    inbound,
    map_locations,
    outbound,
    refusal,
)

AUTH = "Basic QUMwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZjpzZWNyZXQ="


def headers(*pairs: tuple[str, str]) -> CIMultiDictProxy[str]:
    out: CIMultiDict[str] = CIMultiDict()
    for name, value in pairs:
        out.add(name, value)
    return CIMultiDictProxy(out)


def test_hop_by_hop_list_is_exactly_rfc_9110_plus_proxy_headers() -> None:
    # One entry per name: a missing comma between two literals would merge two of them.
    assert HOP_BY_HOP == {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }


def test_connection_listed_names_from_every_connection_header() -> None:
    given = headers(("Connection", "close, X-Secret"), ("connection", " Keep-Alive ,,x-OTHER"))
    assert connection_listed(given) == {"close", "x-secret", "keep-alive", "x-other"}


def test_outbound_strips_hop_by_hop_and_connection_listed_and_keeps_the_rest() -> None:
    given = headers(
        ("Host", "gateway.test"),
        ("Authorization", AUTH),
        ("Connection", "keep-alive, X-Hop"),
        ("Keep-Alive", "timeout=5"),
        ("Proxy-Connection", "keep-alive"),
        ("Proxy-Authorization", "Basic cHJveHk6cHc="),
        ("TE", "trailers"),
        ("Trailer", "Expires"),
        ("Transfer-Encoding", "chunked"),
        ("Upgrade", "h2c"),
        ("X-Hop", "dropped because Connection names it"),
        ("Content-Length", "12"),
        ("Accept-Encoding", "gzip, deflate"),
        ("Expect", "100-continue"),
        ("Forwarded", "for=1.2.3.4"),
        ("X-Forwarded-For", "1.2.3.4"),
        ("X-Forwarded-Host", "evil.example"),
        ("X-Forwarded-Proto", "http"),
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("User-Agent", "twilio-python/9.11.0 (Linux x86_64) Python/3.11.9"),
        ("X-Twilio-Client", "python-9.11.0"),
        ("Accept-Charset", "utf-8"),
        ("Accept", "application/json"),
    )
    out = outbound(given)
    assert list(out.items()) == [
        ("Authorization", AUTH),
        ("Content-Type", "application/x-www-form-urlencoded"),
        ("User-Agent", "twilio-python/9.11.0 (Linux x86_64) Python/3.11.9"),
        ("X-Twilio-Client", "python-9.11.0"),
        ("Accept-Charset", "utf-8"),
        ("Accept", "application/json"),
        ("Accept-Encoding", "identity"),
        ("Via", VIA),
    ]
    assert VIA == "1.1 marketplace-gateway"


@pytest.mark.parametrize(
    "value",
    [AUTH, "Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig", "Basic U0sxMjM6c2VjcmV0IT0lMkY="],
)
def test_authorization_passes_byte_for_byte(value: str) -> None:
    assert outbound(headers(("authorization", value))).getall("Authorization") == [value]


def test_outbound_keeps_repeated_headers_and_appends_via_to_an_existing_one() -> None:
    given = headers(
        ("X-Multi", "one"),
        ("Cookie", "a=1"),
        ("X-Multi", "two"),
        ("Via", "1.1 corporate-proxy"),
    )
    out = outbound(given)
    assert out.getall("X-Multi") == ["one", "two"]
    assert out.getall("Via") == ["1.1 corporate-proxy", VIA]
    assert out.getall("Cookie") == ["a=1"]


def test_outbound_returns_a_new_mutable_multidict() -> None:
    given = headers(("Accept", "*/*"))
    out = outbound(given)
    assert isinstance(out, CIMultiDict)
    out["Accept"] = "changed"
    assert given["Accept"] == "*/*"


UPSTREAM = (
    ("Content-Type", "application/json; charset=utf-8"),
    ("Content-Length", "512"),
    ("Content-Encoding", "gzip"),
    ("Transfer-Encoding", "chunked"),
    ("Connection", "keep-alive, X-Upstream-Hop"),
    ("Keep-Alive", "timeout=5"),
    ("X-Upstream-Hop", "1"),
    ("ETag", '"abc"'),
    ("Content-MD5", "Q2hlY2sgSW50ZWdyaXR5IQ=="),
    ("Digest", "sha-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="),
    ("Repr-Digest", "sha-256=:X48=:"),
    ("Content-Digest", "sha-256=:X48=:"),
    ("Accept-Ranges", "bytes"),
    ("Set-Cookie", "a=1; Path=/"),
    ("Set-Cookie", "b=2; Path=/"),
    ("Twilio-Request-Id", "RQ123"),
    ("Access-Control-Allow-Origin", "*"),
)


def test_inbound_unchanged_body_keeps_digests_but_drops_framing() -> None:
    out = inbound(headers(*UPSTREAM), body_rewritten=False)
    assert list(out.items()) == [
        ("Content-Type", "application/json; charset=utf-8"),
        ("ETag", '"abc"'),
        ("Content-MD5", "Q2hlY2sgSW50ZWdyaXR5IQ=="),
        ("Digest", "sha-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="),
        ("Repr-Digest", "sha-256=:X48=:"),
        ("Content-Digest", "sha-256=:X48=:"),
        ("Accept-Ranges", "bytes"),
        ("Set-Cookie", "a=1; Path=/"),
        ("Set-Cookie", "b=2; Path=/"),
        ("Twilio-Request-Id", "RQ123"),
        ("Access-Control-Allow-Origin", "*"),
        ("Via", VIA),
    ]


def test_inbound_rewritten_body_also_drops_what_describes_the_old_bytes() -> None:
    out = inbound(headers(*UPSTREAM), body_rewritten=True)
    assert list(out.items()) == [
        ("Content-Type", "application/json; charset=utf-8"),
        ("Set-Cookie", "a=1; Path=/"),
        ("Set-Cookie", "b=2; Path=/"),
        ("Twilio-Request-Id", "RQ123"),
        ("Access-Control-Allow-Origin", "*"),
        ("Via", VIA),
    ]


def test_inbound_header_names_are_case_insensitive() -> None:
    given = headers(("content-length", "3"), ("CONTENT-ENCODING", "br"), ("etag", "W/1"))
    assert list(inbound(given, body_rewritten=True).items()) == [("Via", VIA)]


@pytest.mark.parametrize(
    "value",
    ["plain ASCII", "tab\there", "caf\u00e9", "\u00a0\u00ff visible Latin-1", "Basic QUM6eA=="],
)
def test_visible_ascii_and_latin_1_values_are_forwarded(value: str) -> None:
    assert refusal(CIMultiDict({"X-Value": value})) is None


@pytest.mark.parametrize(
    "value",
    [
        "caf\udce9",  # a Latin-1 byte that was not UTF-8: aiohttp hands over a lone surrogate
        "a\u0085b",  # C1 control
        "a\u0001b",
        "esc\u001b[31m",
        "euro \u20ac",  # beyond Latin-1
    ],
)
def test_other_values_are_refused_naming_the_header_not_the_value(value: str) -> None:
    reason = refusal(CIMultiDict({"Accept": "*/*", "X-Secret": value}))
    assert reason is not None and "X-Secret" in reason and value not in reason


def test_two_authorization_headers_are_refused() -> None:
    headers = CIMultiDict([("Authorization", "Basic QUM6eA=="), ("authorization", "Basic Yjpj")])
    assert refusal(headers) == "The request has more than one Authorization header"
    assert refusal(CIMultiDict({"Authorization": "Basic QUM6eA=="})) is None


# -- Location and Content-Location ---------------------------------------------------------

ORIGIN = "http://10.0.0.5:8443"  # where the gateway sends calls (a mirror, the simulator)
PUBLIC = "https://marketplace.twilio.com"  # the origin the upstream writes its URLs with
GATEWAY = "https://gw.example/twilio"


def _legacy_rewriter() -> LinkRewriter:
    rules = [r for r in load_rules(None).rules if r.deprecated and r.upstream == "marketplace"]
    return LinkRewriter.build((ORIGIN, PUBLIC), rules)


@pytest.mark.parametrize(
    ("value", "mapped"),
    [
        # naming the upstream: back to the gateway, a deprecated route's path to its legacy one
        (
            f"{PUBLIC}/v1/InstalledAddOns/XE1?x=%2F",
            f"{GATEWAY}/marketplace/InstalledAddOns/XE1?x=%2F",
        ),
        (f"{ORIGIN}/v1/AvailableAddOns", f"{GATEWAY}/marketplace/AvailableAddOns"),
        (f"{PUBLIC}/v1/Unknown/Thing", f"{GATEWAY}/v1/Unknown/Thing"),
        (PUBLIC, f"{GATEWAY}/"),
        # anything else: untouched
        ("https://marketplace.twilio.com.evil/v1/InstalledAddOns", None),
        ("https://elsewhere.example/v1/InstalledAddOns/XE1", None),
        ("/v1/InstalledAddOns/XE1", None),
        ("http://marketplace.twilio.com/v1/InstalledAddOns", None),  # another scheme
        ("", None),
    ],
)
def test_locations_naming_the_upstream_map_back_to_the_gateway(
    value: str, mapped: str | None
) -> None:
    rewriter = _legacy_rewriter()
    headers: CIMultiDict[str] = CIMultiDict(
        [("Location", value), ("Content-Location", value), ("Link", f"<{value}>")]
    )
    map_locations(headers, lambda url: rewriter.url(url, GATEWAY))
    expected = value if mapped is None else mapped
    assert headers.getall("Location") == [expected]
    assert headers.getall("Content-Location") == [expected]
    assert headers["Link"] == f"<{value}>"  # only the two location headers are mapped


def test_map_locations_keeps_every_value_and_leaves_headers_without_one_alone() -> None:
    headers: CIMultiDict[str] = CIMultiDict(
        [("Location", f"{PUBLIC}/v1/A"), ("X-Other", "1"), ("Location", "/relative")]
    )
    map_locations(headers, lambda url: url.replace(PUBLIC, GATEWAY))
    assert headers.getall("Location") == [f"{GATEWAY}/v1/A", "/relative"]
    assert headers["X-Other"] == "1"
    empty: CIMultiDict[str] = CIMultiDict([("Content-Type", "application/json")])
    map_locations(empty, lambda url: "never called")
    assert dict(empty) == {"Content-Type": "application/json"}
