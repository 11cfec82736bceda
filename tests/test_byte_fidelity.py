"""Byte for byte through the gateway: a real loopback upstream sends each byte pattern, and
the client gets exactly those bytes with only the URL fields' strings replaced.

Each case is a template: ``@{path}`` marks a URL field (the upstream sends
``https://marketplace.twilio.com{path}``, the client must get the gateway's URL for it);
everything else, upstream URLs in customer data included, must arrive unchanged. Every case
runs on each way the rewrite can take (compiled, parse-and-prove, exact).
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDictProxy

from tests.conftest import GatewayFactory

pytestmark = [pytest.mark.usefixtures("rewrite_path"), pytest.mark.upstream]

V1 = "https://marketplace.twilio.com"
PUBLIC = "https://gw.example"
XE = "XE" + "0123456789abcdef" * 2
XB = "XB" + "fedcba9876543210" * 2
LEGACY = re.compile(rb"/v1/(Installed|Available)AddOns(/[^/?]+(/Extensions(/[^/?]+)?)?)?(\?.*)?")
DEEP = b'{"a":' * 5000 + b"[]" + b"}" * 5000

CASES: dict[str, bytes] = {
    "numbers in every form": (
        b'{"url":"@{/v1/InstalledAddOns/' + XE.encode() + b'}","configuration":{"a":1.50,'
        b'"b":1E5,"c":19.990000000000000001,"d":12345678901234567890.5,"e":1e-400,"f":-0,'
        b'"g":1e400,"h":-0.0,"i":0e0,"j":1E+2,"k":1e-2,"l":123456789012345678901234567890,'
        b'"m":-9223372036854775809,"n":[0,-1,2.5e-3]}}'
    ),
    "unicode escapes and raw UTF-8": (
        b'{"friendly_name":"caf\\u00e9 \\ud83d\\ude00 \\u2028 \\ud800 \\u0000","description":"'
        + "café 😀 \u2028".encode()
        + b'","url":"@{/v1/AvailableAddOns/'
        + XB.encode()
        + b'}"}'
    ),
    "slash escapes in customer data": (
        b'{"configuration":{"callback_url":"https:\\/\\/marketplace.twilio.com\\/v1\\/x",'
        b'"note":"a\\/b \\"quoted\\" \\\\ \\n"},"url":"@{/v1/InstalledAddOns}"}'
    ),
    "duplicate keys": (
        b'{"url":"@{/v1/InstalledAddOns/XE1}","friendly_name":"first","url":'
        b'"@{/v1/InstalledAddOns/XE2}","friendly_name":"second","links":{"x":"@{/v1/x}"},'
        b'"links":{"y":"@{/v1/InstalledAddOns/XE3/Extensions}"}}'
    ),
    "deep nesting": b'{"configuration":' + DEEP + b',"url":"@{/v1/InstalledAddOns/XE1}"}',
    "byte order mark": b'\xef\xbb\xbf{"url":"@{/v1/AvailableAddOns}","n":1.0}',
    "CRLF and other whitespace": (
        b'{\r\n\t"url" :\t"@{/v1/InstalledAddOns/XE1}" ,\r\n  "links" : { "extensions" : '
        b'"@{/v1/InstalledAddOns/XE1/Extensions}" } \r\n}\r\n'
    ),
    "customer fields holding upstream URLs": (
        b'{"url":"@{/v1/InstalledAddOns/XE1}","configuration":{"url":'
        b'"https://marketplace.twilio.com/v1/InstalledAddOns/keep","links":{"self":'
        b'"https://marketplace.twilio.com/v1/InstalledAddOns"},"callback_url":'
        b'"https://marketplace.twilio.com/v1/x"},"configuration_schema":{"properties":{"url":'
        b'{"default":"https://marketplace.twilio.com/v1/AvailableAddOns"}}},'
        b'"description":"see https://marketplace.twilio.com/v1/InstalledAddOns"}'
    ),
    "a list page": (
        b'{"installed_add_ons":[{"sid":"XE1","url":"@{/v1/InstalledAddOns/XE1}","links":{'
        b'"extensions":"@{/v1/InstalledAddOns/XE1/Extensions}","usage":'
        b'"@{/v1/InstalledAddOns/XE1/Usage}"},"configuration":{"url":'
        b'"https://marketplace.twilio.com/v1/keep"}},{}],"meta":{"page":0,"page_size":2,'
        b'"first_page_url":"@{/v1/InstalledAddOns?PageSize=2&Page=0}","previous_page_url":null,'
        b'"url":"@{/v1/InstalledAddOns?PageSize=2&Page=0}","next_page_url":'
        b'"@{/v1/InstalledAddOns?PageSize=2&PageToken=PT%2Bab%3D%3D&Page=1}","key":'
        b'"installed_add_ons"}}'
    ),
    "empty containers and key order": (b'{"z":{},"a":[],"url":"@{}","m":[{}],"b":"","y":{"":""}}'),
    "2010 relative URIs": (
        b'{"uri":"/2010-04-01/Accounts/AC1/IncomingPhoneNumbers/PN1/AssignedAddOns.json",'
        b'"subresource_uris":{"extensions":"/2010-04-01/x/Extensions.json"},"n":1.50}'
    ),
}


def _url(path: bytes, public: bool) -> bytes:
    if not public:
        return V1.encode() + path
    if LEGACY.fullmatch(path):
        return PUBLIC.encode() + b"/marketplace" + path[3:]  # a preview route's legacy path
    return PUBLIC.encode() + (path or b"/")


def expand(template: bytes, public: bool) -> bytes:
    return re.sub(rb"@\{([^}]*)\}", lambda m: _url(m.group(1), public), template)


@pytest.fixture
async def upstream(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
) -> dict[str, tuple[bytes, dict[str, str]]]:
    """Serves ``responses[case]`` (body, headers) for ``?case=...``; records Accept-Encoding."""
    responses: dict[str, tuple[bytes, dict[str, str]]] = {}

    async def handle(request: web.Request) -> web.Response:
        responses["received"] = (b"", {"Accept-Encoding": request.headers["Accept-Encoding"]})
        body, headers = responses[request.query["case"]]
        return web.Response(body=body, headers=headers)

    app = web.Application()
    app.router.add_get("/v1/InstalledAddOns", handle)
    server = await aiohttp_server(app)
    responses["url"] = (str(server.make_url("")).rstrip("/").encode(), {})
    return responses


async def fetch(
    upstream: dict[str, tuple[bytes, dict[str, str]]],
    gateway_client: GatewayFactory,
    body: bytes,
    headers: dict[str, str],
) -> tuple[int, bytes, CIMultiDictProxy[str]]:
    upstream["case"] = (body, headers)
    client = await gateway_client(upstream["url"][0].decode(), public_base_url=PUBLIC)
    response = await client.get("/marketplace/InstalledAddOns?case=case", auto_decompress=False)
    return response.status, await response.read(), response.headers


@pytest.mark.parametrize("case", sorted(CASES))
async def test_only_the_url_fields_change(
    case: str,
    upstream: dict[str, tuple[bytes, dict[str, str]]],
    gateway_client: GatewayFactory,
) -> None:
    sent = expand(CASES[case], public=False)
    status, got, headers = await fetch(
        upstream, gateway_client, sent, {"Content-Type": "application/json; charset=utf-8"}
    )
    assert status == 200
    expected = expand(CASES[case], public=True)
    assert got == expected
    assert headers["Content-Length"] == str(len(expected))
    assert upstream["received"][1]["Accept-Encoding"] == "identity"


@pytest.mark.parametrize(
    ("coding", "body"),
    [
        ("xyz", b"\x00opaque bytes https://marketplace.twilio.com/v1/InstalledAddOns"),
        ("gzip, gzip", gzip.compress(gzip.compress(b'{"url":"https://marketplace.twilio.com"}'))),
        ("br", b"\x1b\x03\x00\xf8\xa5\x82\x19"),
    ],
)
async def test_a_content_coding_the_gateway_does_not_decode_passes_with_its_header(
    coding: str,
    body: bytes,
    upstream: dict[str, tuple[bytes, dict[str, str]]],
    gateway_client: GatewayFactory,
) -> None:
    headers = {"Content-Type": "application/json", "Content-Encoding": coding, "ETag": '"e1"'}
    status, got, received = await fetch(upstream, gateway_client, body, headers)
    assert (status, got) == (200, body)
    assert received["Content-Encoding"] == coding
    assert received["ETag"] == '"e1"'  # the very bytes the upstream tagged


async def test_gzip_is_decoded_and_rewritten(
    upstream: dict[str, tuple[bytes, dict[str, str]]], gateway_client: GatewayFactory
) -> None:
    template = CASES["a list page"]
    headers = {"Content-Type": "application/json", "Content-Encoding": "gzip", "ETag": '"e1"'}
    status, got, received = await fetch(
        upstream, gateway_client, gzip.compress(expand(template, public=False)), headers
    )
    assert (status, got) == (200, expand(template, public=True))
    assert "Content-Encoding" not in received and "ETag" not in received


async def test_invalid_json_is_a_502_counted_as_invalid_json(
    upstream: dict[str, tuple[bytes, dict[str, str]]], gateway_client: GatewayFactory
) -> None:
    from gateway.telemetry import metrics

    failures = metrics.UPSTREAM_FAILURES.labels("invalid_json")
    before = failures._value.get()
    body = b'{"url":"https://marketplace.twilio.com/v1/InstalledAddOns","n":NaN}'
    headers = {"Content-Type": "application/json"}
    status, got, _ = await fetch(upstream, gateway_client, body, headers)
    assert status == 502
    assert b'"code":88003' in got
    assert failures._value.get() == before + 1
