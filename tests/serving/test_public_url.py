"""gateway.serving.public_url: the base URL written into rewritten links (pure; literal headers)."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.app import create_app
from gateway.config.parsers import FORWARDED, X_FORWARDED
from gateway.serving.public_url import (
    TrustedProxies,
    local_host,
    parse_forwarded,
    public_base,
)
from gateway.serving.server import GatewayRunner
from tests.conftest import AUTH_HEADER, GatewayFactory, make_config
from tests.fake_upstream import FakeUpstream, sid

FALLBACK = "127.0.0.1:8080"
Headers = dict[str, str] | list[tuple[str, str]]


def base(
    host: str | None = "gateway.test",
    headers: Headers | None = None,
    *,
    trust: bool = False,
    hops: int = 1,
    family: str = X_FORWARDED,
    configured: str | None = None,
    scheme: str = "http",
) -> str:
    return public_base(
        configured=configured,
        scheme=scheme,
        host_header=host,
        headers=CIMultiDictProxy(CIMultiDict(headers or {})),
        trusted=TrustedProxies(hops, family) if trust else None,
        fallback_host=FALLBACK,
    )


FORWARDED_HEADERS = {
    "Forwarded": 'for=10.0.0.1;host=inner, for=192.0.2.60;proto=https;host="gw.example.com:8443"',
    "X-Forwarded-Proto": "http",
    "X-Forwarded-Host": "xfh.example",
}


def test_configured_base_wins_over_everything() -> None:
    configured = "https://public.example/legacy"
    assert base("evil.example", FORWARDED_HEADERS, trust=True, configured=configured) == configured
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
    assert base("gateway.test", FORWARDED_HEADERS) == "http://gateway.test"


# -- X-Forwarded-*: exactly N hops from the right ------------------------------------------


def test_x_forwarded_takes_the_entry_the_nearest_proxy_appended() -> None:
    # nginx's $proxy_add_x_forwarded_for style: the client's own value comes first.
    headers = {"X-Forwarded-Host": "evil.example, gw.example", "X-Forwarded-Proto": "http, https"}
    assert base("gateway.test", headers, trust=True) == "https://gw.example"


def test_x_forwarded_with_two_trusted_hops_takes_the_second_from_the_right() -> None:
    headers = {
        "X-Forwarded-Host": "evil.example, outer.example, inner.internal",
        "X-Forwarded-Proto": "http, https, http",
    }
    assert base("gateway.test", headers, trust=True, hops=2) == "https://outer.example"


def test_fewer_entries_than_trusted_hops_are_not_used() -> None:
    # Two proxies should have appended; one entry may be the client's own (proxy bypassed).
    headers = {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}
    assert base("gateway.test", headers, trust=True, hops=2) == "http://gateway.test"


def test_x_forwarded_lines_are_joined_in_order() -> None:
    headers = [("X-Forwarded-Host", "evil.example"), ("X-Forwarded-Host", "gw.example")]
    assert base("gateway.test", headers, trust=True) == "http://gw.example"
    assert base("gateway.test", headers, trust=True, hops=2) == "http://evil.example"


def test_empty_list_elements_are_not_counted() -> None:
    headers = {"X-Forwarded-Host": "evil.example, , gw.example,"}
    assert base("gateway.test", headers, trust=True) == "http://gw.example"


def test_x_forwarded_proto_alone_keeps_the_host() -> None:
    assert base("gateway.test", {"X-Forwarded-Proto": "https"}, trust=True) == (
        "https://gateway.test"
    )


def test_a_clients_forwarded_does_not_beat_the_proxys_x_forwarded_host() -> None:
    headers = {"Forwarded": "host=evil.example;proto=https", "X-Forwarded-Host": "gw.example"}
    assert base("gateway.test", headers, trust=True) == "http://gw.example"


def test_with_the_forwarded_family_a_clients_x_forwarded_host_is_ignored() -> None:
    headers = {"Forwarded": "host=gw.example;proto=https", "X-Forwarded-Host": "evil.example"}
    assert base("gateway.test", headers, trust=True, family=FORWARDED) == "https://gw.example"


# -- RFC 7239 Forwarded ---------------------------------------------------------------------


def test_forwarded_takes_the_element_the_nearest_proxy_appended() -> None:
    assert base("gateway.test", FORWARDED_HEADERS, trust=True, family=FORWARDED) == (
        "https://gw.example.com:8443"
    )
    assert base("gateway.test", FORWARDED_HEADERS, trust=True, family=FORWARDED, hops=2) == (
        "http://inner"
    )


def test_forwarded_elements_across_lines_are_counted_from_the_right() -> None:
    headers = [("Forwarded", "host=evil.example"), ("Forwarded", "for=10.0.0.1;host=gw.example")]
    assert base("gateway.test", headers, trust=True, family=FORWARDED) == "http://gw.example"


def test_forwarded_host_inside_a_quoted_string_is_not_a_parameter() -> None:
    headers = {"Forwarded": 'host=gw.example;for="_x;host=evil.example"'}
    assert base("gateway.test", headers, trust=True, family=FORWARDED) == "http://gw.example"
    # A comma inside quotes does not start a new element either.
    headers = {"Forwarded": 'for="a, host=evil.example";host=gw.example'}
    assert base("gateway.test", headers, trust=True, family=FORWARDED) == "http://gw.example"


def test_forwarded_pairs_in_any_order_and_case() -> None:
    headers = {"Forwarded": "Host=gw.example;PROTO=HTTPS;for=1.2.3.4"}
    assert base("gateway.test", headers, trust=True, family=FORWARDED) == "https://gw.example"


def test_forwarded_proto_other_than_http_or_https_is_ignored() -> None:
    headers = {"Forwarded": "proto=javascript;host=gw.example"}
    assert base("gateway.test", headers, trust=True, family=FORWARDED) == "http://gw.example"


@pytest.mark.parametrize(
    "value",
    [
        'for=1.2.3.4, host="gw.example',  # unterminated quote swallows the proxy's element
        "host=evil.example;host=gw.example",  # a parameter twice in one element
        "host=gw.example host=evil.example",  # no separator
        "host=",
        "=gw.example",
        "host=gw example",
    ],
)
def test_a_forwarded_line_that_does_not_parse_is_not_trusted(value: str) -> None:
    headers = {"Forwarded": value}
    assert base("gateway.test", headers, trust=True, family=FORWARDED) == "http://gateway.test"


@pytest.mark.parametrize(
    ("line", "elements"),
    [  # RFC 7239 section 4 and 7.1 examples
        ('for="_gazonk"', [{"for": "_gazonk"}]),
        ('For="[2001:db8:cafe::17]:4711"', [{"for": "[2001:db8:cafe::17]:4711"}]),
        (
            "for=192.0.2.60;proto=http;by=203.0.113.43",
            [{"for": "192.0.2.60", "proto": "http", "by": "203.0.113.43"}],
        ),
        ("for=192.0.2.43, for=198.51.100.17", [{"for": "192.0.2.43"}, {"for": "198.51.100.17"}]),
        ('for="\\"quoted\\" \\\\ x"', [{"for": '"quoted" \\ x'}]),
        ("for=a ,, for=b ; proto=https", [{"for": "a"}, {"for": "b", "proto": "https"}]),
        (";;", []),
        ("", []),
    ],
)
def test_parse_forwarded(line: str, elements: list[dict[str, str]]) -> None:
    assert parse_forwarded(line) == elements


# -- hosts that are never echoed, and the listen address ------------------------------------


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
        "evil.example:99999",
        "[::1",
        "[evil]",
        "0.0.0.0:8080",
        "[::]:8080",
        "",
        " ",
        "\\evil",
    ],
)
def test_junk_host_falls_back(junk: str) -> None:
    assert base(junk) == f"http://{FALLBACK}"


@pytest.mark.parametrize(
    "headers",
    [
        {"X-Forwarded-Host": "user@evil.example"},
        {"X-Forwarded-Host": "evil.example\r\nX: 1"},
        {"X-Forwarded-Host": "0.0.0.0:8080"},
    ],
)
def test_junk_forwarded_host_is_never_echoed(headers: dict[str, str]) -> None:
    assert base("gateway.test", headers, trust=True) == "http://gateway.test"


def test_junk_host_in_forwarded_is_never_echoed() -> None:
    headers = {"Forwarded": 'host="evil.example/x";proto=https'}
    assert base("gateway.test", headers, trust=True, family=FORWARDED) == "https://gateway.test"


def test_missing_host_falls_back() -> None:
    assert base(None, scheme="https") == f"https://{FALLBACK}"


@pytest.mark.parametrize(
    ("sockname", "listen", "expected"),
    [
        (("10.1.2.3", 8080), ("0.0.0.0", 8080), "10.1.2.3:8080"),
        (("::1", 8080, 0, 0), ("::", 8080), "[::1]:8080"),
        (("fe80::1%eth0", 8080, 0, 2), ("::", 8080), "[fe80::1]:8080"),
        (None, ("0.0.0.0", 8080), "localhost:8080"),
        (None, ("::", 8080), "localhost:8080"),
        (None, ("gw.internal", 8080), "gw.internal:8080"),
        (None, ("::1", 9000), "[::1]:9000"),
    ],
)
def test_local_host_never_names_a_wildcard_address(
    sockname: object, listen: tuple[str, int], expected: str
) -> None:
    assert local_host(sockname, *listen) == expected


@pytest.mark.upstream
async def test_links_never_carry_the_wildcard_listen_address(fake_upstream: FakeUpstream) -> None:
    """A request without ``Host`` to a gateway configured for 0.0.0.0: links name the address
    the client really connected to."""
    app = create_app(make_config(fake_upstream.url, listen=("0.0.0.0", 8080)))
    runner = GatewayRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    xe = sid("XE", 1)
    try:
        async with asyncio.timeout(10):
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(
                f"GET /marketplace/InstalledAddOns/{xe} HTTP/1.0\r\n"
                f"Authorization: {AUTH_HEADER}\r\n\r\n".encode()
            )
            reply = await reader.read()
            writer.close()
            # An unparseable request: its more_info link is built without headers at all.
            reader, writer = await asyncio.open_connection(host, port)
            writer.write(b"GET / HTTP/1.1\r\nHost: a\r\nBad Header: x\r\n\r\n")
            bad = await reader.read()
            writer.close()
    finally:
        await runner.cleanup()
    assert b" 200 " in reply.split(b"\r\n", 1)[0]
    assert f"http://127.0.0.1:{port}/marketplace/InstalledAddOns/{xe}".encode() in reply
    assert b"0.0.0.0" not in reply and b"0.0.0.0" not in bad
    assert f"http://127.0.0.1:{port}/errors/88007".encode() in bad


@pytest.mark.upstream
@pytest.mark.parametrize(
    ("family", "hops", "headers", "expected"),
    [
        (X_FORWARDED, 2, {"X-Forwarded-Host": "evil.example, outer.example, inner"}, "outer"),
        (FORWARDED, 1, {"Forwarded": "host=evil.example, host=outer.example"}, "outer"),
        (FORWARDED, 1, {"X-Forwarded-Host": "evil.example"}, "gateway"),
    ],
)
async def test_the_config_decides_which_forwarded_entry_shapes_the_links(
    family: str,
    hops: int,
    headers: dict[str, str],
    expected: str,
    fake_upstream: FakeUpstream,
    gateway_client: GatewayFactory,
) -> None:
    client = await gateway_client(
        fake_upstream.url,
        trust_forwarded_headers=True,
        forwarded_header=family,
        forwarded_hops=hops,
    )
    xe = sid("XE", 1)
    async with client.get(
        f"/marketplace/InstalledAddOns/{xe}",
        headers={"Authorization": AUTH_HEADER, "Host": "gateway.test", **headers},
    ) as response:
        url = (await response.json())["url"]
    host = {"outer": "outer.example", "gateway": "gateway.test"}[expected]
    assert url == f"http://{host}/marketplace/InstalledAddOns/{xe}"


def test_the_fallback_is_worked_out_only_when_needed() -> None:
    calls: list[int] = []

    def fallback() -> str:
        calls.append(1)
        return "10.1.2.3:8080"

    def build(host: str | None) -> str:
        return public_base(
            configured=None,
            scheme="http",
            host_header=host,
            headers=CIMultiDictProxy(CIMultiDict()),
            trusted=None,
            fallback_host=fallback,
        )

    assert build("gateway.test") == "http://gateway.test" and calls == []
    assert build("0.0.0.0:8080") == "http://10.1.2.3:8080" and calls == [1]
