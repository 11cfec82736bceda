"""End to end through the gateway to a real loopback upstream (tests/fake_upstream.py)."""

from __future__ import annotations

import asyncio
import socket

import orjson
import pytest
from aiohttp import web

from tests.conftest import AUTH_HEADER, GatewayFactory, head_then_get, raw_get, raw_http
from tests.fake_upstream import FakeUpstream, sid

XE = sid("XE", 1)
XF = sid("XF", 2)
XB = sid("XB", 3)

PREVIEW_OPERATIONS = [
    ("GET", "/marketplace/AvailableAddOns", "/v1/AvailableAddOns"),
    ("GET", f"/marketplace/AvailableAddOns/{XB}", f"/v1/AvailableAddOns/{XB}"),
    (
        "GET",
        f"/marketplace/AvailableAddOns/{XB}/Extensions",
        f"/v1/AvailableAddOns/{XB}/Extensions",
    ),
    (
        "GET",
        f"/marketplace/AvailableAddOns/{XB}/Extensions/{XF}",
        f"/v1/AvailableAddOns/{XB}/Extensions/{XF}",
    ),
    ("GET", "/marketplace/InstalledAddOns", "/v1/InstalledAddOns"),
    ("POST", "/marketplace/InstalledAddOns", "/v1/InstalledAddOns"),
    ("GET", f"/marketplace/InstalledAddOns/{XE}", f"/v1/InstalledAddOns/{XE}"),
    ("POST", f"/marketplace/InstalledAddOns/{XE}", f"/v1/InstalledAddOns/{XE}"),
    ("DELETE", f"/marketplace/InstalledAddOns/{XE}", f"/v1/InstalledAddOns/{XE}"),
    (
        "GET",
        f"/marketplace/InstalledAddOns/{XE}/Extensions",
        f"/v1/InstalledAddOns/{XE}/Extensions",
    ),
    (
        "GET",
        f"/marketplace/InstalledAddOns/{XE}/Extensions/{XF}",
        f"/v1/InstalledAddOns/{XE}/Extensions/{XF}",
    ),
    (
        "POST",
        f"/marketplace/InstalledAddOns/{XE}/Extensions/{XF}",
        f"/v1/InstalledAddOns/{XE}/Extensions/{XF}",
    ),
]


@pytest.mark.upstream
async def test_all_twelve_preview_operations_reach_their_v1_path(
    fake_upstream: FakeUpstream, gateway_client: GatewayFactory
) -> None:
    client = await gateway_client(fake_upstream.url)
    form = b"AvailableAddOnSid=XB1&AcceptTermsOfService=True&Configuration=%7B%22a%22%3A+1%7D"
    for method, legacy, v1 in PREVIEW_OPERATIONS:
        data = form if method == "POST" else None
        headers = {"Authorization": AUTH_HEADER}
        if data:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        response = await client.request(method, legacy, data=data, headers=headers)
        expected = {"POST": 200, "GET": 200, "DELETE": 204}[method]
        if legacy == "/marketplace/InstalledAddOns" and method == "POST":
            expected = 201
        assert response.status == expected, (method, legacy)
        received = fake_upstream.received[-1]
        assert (received.method, received.raw_path) == (method, v1)
        assert received.body == (data or b"")
        assert received.headers["Authorization"] == AUTH_HEADER
        if method == "DELETE":
            assert await response.read() == b""
        else:
            body = await response.json()
            assert "marketplace.twilio.com" not in str(body.get("url")), legacy
    assert len(fake_upstream.received) == 12


@pytest.mark.upstream
async def test_paging_walks_every_page_through_the_gateway(
    fake_upstream: FakeUpstream, gateway_client: GatewayFactory
) -> None:
    client = await gateway_client(fake_upstream.url)
    base = str(client.make_url("")).rstrip("/")
    url = f"{base}/marketplace/InstalledAddOns?PageSize=3"
    seen: list[str] = []
    pages = 0
    while url:
        assert url.startswith(f"{base}/marketplace/InstalledAddOns?"), url
        response = await client.session.get(url, headers={"Authorization": AUTH_HEADER})
        assert response.status == 200
        page = await response.json()
        seen += [record["sid"] for record in page["installed_add_ons"]]
        for record in page["installed_add_ons"]:
            assert record["url"] == f"{base}/marketplace/InstalledAddOns/{record['sid']}"
            assert record["links"]["available_add_on"].startswith(
                f"{base}/marketplace/AvailableAddOns/XB"
            )
        url = page["meta"]["next_page_url"]
        pages += 1
    assert pages == 3
    assert seen == [sid("XE", n) for n in range(7)]
    # The token went back to the upstream exactly as the upstream wrote it.
    assert fake_upstream.received[-1].raw_path == (
        "/v1/InstalledAddOns?PageToken=PT6a%2Bb==&Page=2&PageSize=3"
    )


@pytest.mark.upstream
async def test_v1_and_2010_routes_pass_through(
    fake_upstream: FakeUpstream, gateway_client: GatewayFactory
) -> None:
    client = await gateway_client(fake_upstream.url)
    base = str(client.make_url("")).rstrip("/")
    response = await client.get(f"/v1/InstalledAddOns/{XE}")
    body = await response.json()
    assert body["url"] == f"{base}/v1/InstalledAddOns/{XE}"
    assert "Deprecation" not in response.headers
    number = f"/2010-04-01/Accounts/AC{'a' * 32}/IncomingPhoneNumbers/PN{'b' * 32}"
    path = f"{number}/AssignedAddOns/{XE}.json"
    response = await client.get(path)
    assert response.status == 200
    body = await response.json()
    assert body["uri"] == path  # relative 2010 URIs pass unchanged
    assert fake_upstream.received[-1].raw_path == path


@pytest.mark.upstream
async def test_headers_hop_by_hop_stripped_auth_forwarded(
    fake_upstream: FakeUpstream, gateway_client: GatewayFactory
) -> None:
    client = await gateway_client(fake_upstream.url)
    response = await client.get(
        f"/marketplace/InstalledAddOns/{XE}",
        headers={
            "Authorization": AUTH_HEADER,
            "Connection": "keep-alive, X-Secret-Hop",
            "X-Secret-Hop": "drop me",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Proxy-Authorization": "Basic Zm9vOmJhcg==",
            "X-Twilio-Client": "python-9.11.0",
            "Host": "evil.example",
        },
    )
    assert response.status == 200
    received = fake_upstream.received[-1].headers
    assert received["Authorization"] == AUTH_HEADER
    assert received["X-Twilio-Client"] == "python-9.11.0"
    for name in ("X-Secret-Hop", "Keep-Alive", "TE", "Proxy-Authorization"):
        assert name not in received
    assert received["Host"] == fake_upstream.url.split("://")[1]
    assert received["Accept-Encoding"] == "identity"
    assert "marketplace-gateway" in received["Via"]
    # the rewritten body invalidates the upstream ETag; Content-Length is recomputed
    assert "ETag" not in response.headers
    assert response.headers["X-Custom"] == "1"
    body = await response.read()
    assert int(response.headers["Content-Length"]) == len(body)


@pytest.mark.upstream
async def test_gzip_upstream_is_decoded_and_reframed(
    fake_upstream: FakeUpstream, gateway_client: GatewayFactory
) -> None:
    client = await gateway_client(fake_upstream.url)
    response = await client.get(f"/marketplace/InstalledAddOns/{XE}?gzip=1", auto_decompress=False)
    assert response.status == 200
    assert "Content-Encoding" not in response.headers
    raw = await response.read()
    assert int(response.headers["Content-Length"]) == len(raw)
    body = orjson.loads(raw)  # plain JSON, not gzip
    assert body["url"].endswith(f"/marketplace/InstalledAddOns/{XE}")


@pytest.mark.upstream
async def test_refused_upstream_is_502_in_twilio_shape(gateway_client: GatewayFactory) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = await gateway_client(f"http://127.0.0.1:{port}", connect_timeout=1.0)
    response = await client.get("/marketplace/AvailableAddOns")
    assert response.status == 502
    body = await response.json()
    assert body["code"] == 88001 and body["status"] == 502
    assert body["more_info"].endswith("/errors/88001")
    assert set(body) == {"code", "message", "more_info", "status"}


@pytest.mark.upstream
async def test_slow_upstream_is_504(aiohttp_server, gateway_client: GatewayFactory) -> None:  # type: ignore[no-untyped-def]
    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(5)
        return web.Response(text="late")

    app = web.Application()
    app.router.add_get("/v1/AvailableAddOns", slow)
    server = await aiohttp_server(app)
    client = await gateway_client(
        str(server.make_url("")).rstrip("/"), read_timeout=0.3, total_timeout=0.5
    )
    started = asyncio.get_running_loop().time()
    response = await client.get("/marketplace/AvailableAddOns")
    assert response.status == 504
    assert (await response.json())["code"] == 88002
    assert asyncio.get_running_loop().time() - started < 3


async def test_unknown_route_is_404_and_never_forwarded(
    fake_upstream: FakeUpstream, gateway_client: GatewayFactory
) -> None:
    client = await gateway_client(fake_upstream.url)
    for path in (
        "/marketplace/Nope",
        "/v1/Nope",
        "/marketplace/InstalledAddOns/XE1%2F..%2F..%2Fadmin",
        "/marketplace/InstalledAddOns/../AvailableAddOns",
        "/marketplace//InstalledAddOns",
        "/marketplace/InstalledAddOns/%2e%2e",
        "/marketplace/InstalledAddOns/a\\b",
    ):
        raw = await raw_http(client.server.host, client.server.port, raw_get(path))
        assert raw.startswith(b"HTTP/1.1 404"), (path, raw[:200])
        assert b'"code":20404' in raw
    response = await client.delete("/marketplace/AvailableAddOns")
    assert response.status == 405
    assert response.headers["Allow"] == "GET, HEAD"
    assert fake_upstream.received == []


@pytest.mark.upstream
async def test_absolute_form_and_spoofed_host_do_not_change_the_upstream(
    fake_upstream: FakeUpstream, gateway_client: GatewayFactory
) -> None:
    client = await gateway_client(fake_upstream.url)
    raw = await raw_http(
        client.server.host,
        client.server.port,
        raw_get("http://evil.example/marketplace/AvailableAddOns", "evil.example"),
    )
    assert raw.startswith(b"HTTP/1.1 400"), raw[:100]
    assert fake_upstream.received == []
    response = await client.get(
        "/marketplace/AvailableAddOns",
        headers={"Host": "evil.example", "X-Forwarded-Host": "evil2.example"},
    )
    assert response.status == 200
    assert len(fake_upstream.received) == 1  # went to the configured upstream, nowhere else
    assert fake_upstream.received[0].headers["Host"] != "evil.example"


async def test_body_over_limit_is_413(
    fake_upstream: FakeUpstream, gateway_client: GatewayFactory
) -> None:
    client = await gateway_client(fake_upstream.url, max_body_size=1000)
    response = await client.post("/marketplace/InstalledAddOns", data=b"x" * 5000)
    assert response.status == 413
    assert (await response.json())["code"] == 88004
    assert fake_upstream.received == []


async def test_health_and_readiness(
    fake_upstream: FakeUpstream, gateway_client: GatewayFactory
) -> None:
    client = await gateway_client(fake_upstream.url)
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["rules"] > 20
    doc = await client.get("/errors/88002")
    assert (await doc.json())["title"] == "Upstream timeout"


@pytest.mark.upstream
async def test_head_on_a_get_route_is_the_get_answer_without_its_body(
    fake_upstream: FakeUpstream, gateway_client: GatewayFactory
) -> None:
    """The upstream is asked with GET: only its GET answer, rewritten, gives the headers the
    client's GET gets (the rewritten body's Content-Length, the deprecation headers)."""
    client = await gateway_client(fake_upstream.url)
    host, port = client.server.host, client.server.port
    auth = f"Authorization: {AUTH_HEADER}\r\n"
    for path in ("/marketplace/InstalledAddOns?PageSize=2", f"/v1/InstalledAddOns/{XE}"):
        fake_upstream.received.clear()
        head, get, body = await head_then_get(host, port, path, auth)
        assert get[0] == "HTTP/1.1 200 OK"
        assert b"http://gateway.test/" in body  # rewritten: its length is not the upstream's
        assert head == get, path
        assert [r.method for r in fake_upstream.received] == ["GET", "GET"]
    preview = await head_then_get(host, port, "/marketplace/AvailableAddOns", auth)
    assert {"deprecation", "sunset", "link"} <= set(preview[0][1])
    # A route without GET has no HEAD either.
    response = await client.head("/marketplace/ReferralConversion")
    assert response.status == 404
    response = await client.put(f"/marketplace/InstalledAddOns/{XE}")
    assert response.headers["Allow"] == "DELETE, GET, HEAD, POST"
