"""Intercepted connections take the gateway's one pipeline: rules, rewrite, headers, metrics,
brownouts and the access log, with URLs written as https://preview.twilio.com."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import ssl

import aiohttp
import pytest
from prometheus_client import REGISTRY

from gateway.config.policy import parse_schedule
from gateway.frontdoor import intercept

from .conftest import ACCOUNT, PREVIEW, TOKEN, StackFactory

AUTH = {"Authorization": "Basic " + base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()}


def requests_total(front_door: str, route: str = "preview_available_add_ons") -> float:
    labels = {
        "route": route,
        "method": "GET",
        "status_class": "2xx",
        "deprecated": "true",
        "front_door": front_door,
    }
    return REGISTRY.get_sample_value("gateway_requests_total", labels) or 0.0


def connects(outcome: str) -> float:
    return REGISTRY.get_sample_value("gateway_proxy_connects_total", {"outcome": outcome}) or 0.0


@pytest.mark.upstream
async def test_a_list_call_through_the_proxy_pages_back_through_it(
    front_stack: StackFactory,
) -> None:
    stack = await front_stack()
    before = (requests_total("proxy"), requests_total("direct"), connects("intercepted"))
    trust = stack.ca.client_context()
    url = f"https://{PREVIEW}/marketplace/AvailableAddOns?PageSize=3"
    pages = 0
    async with aiohttp.ClientSession(headers=AUTH) as session:
        next_url: str | None = url
        while next_url:
            async with session.get(next_url, proxy=stack.proxy_url, ssl=trust) as response:
                assert response.status == 200
                assert response.headers["Deprecation"].startswith("@")
                assert 'rel="successor-version"' in response.headers["Link"]
                body = await response.json()
            pages += 1
            meta = body["meta"]
            assert meta["url"].startswith(f"https://{PREVIEW}/marketplace/AvailableAddOns?")
            for add_on in body["available_add_ons"]:
                assert (
                    add_on["url"]
                    == f"https://{PREVIEW}/marketplace/AvailableAddOns/{add_on['sid']}"
                )
            next_url = meta["next_page_url"]
        # the same session, straight to the main listener: its own base, its own label
        async with session.get(f"{stack.gateway_url}/marketplace/AvailableAddOns") as response:
            direct = await response.json()
    assert pages >= 3
    assert direct["meta"]["url"].startswith(f"{stack.gateway_url}/marketplace/")
    assert requests_total("proxy") == before[0] + pages
    assert requests_total("direct") == before[1] + 1
    assert connects("intercepted") >= before[2] + 1  # kept alive: fewer CONNECTs than pages
    lines = stack.access_lines()
    assert [line["front_door"] for line in lines] == ["proxy"] * pages + ["direct"]
    assert all(line["route"] == "preview_available_add_ons" for line in lines)


@pytest.mark.upstream
async def test_errors_inside_the_tunnel_point_at_the_intercepted_host(
    front_stack: StackFactory,
) -> None:
    stack = await front_stack()
    async with aiohttp.ClientSession(headers=AUTH) as session:
        async with session.get(
            f"https://{PREVIEW}/marketplace/Nope",
            proxy=stack.proxy_url,
            ssl=stack.ca.client_context(),
        ) as response:
            assert response.status == 404
            error = await response.json()
    assert error["code"] == 20404
    async with aiohttp.ClientSession(headers=AUTH) as session:
        async with session.get(
            f"https://{PREVIEW}/marketplace/InstalledAddOns/XE{'f' * 32}",
            proxy=stack.proxy_url,
            ssl=stack.ca.client_context(),
        ) as response:
            assert response.status == 404
    async with aiohttp.ClientSession() as session:
        async with session.get(
            f"https://{PREVIEW}/errors/88011", proxy=stack.proxy_url, ssl=stack.ca.client_context()
        ) as response:
            assert (await response.json())["code"] == 88011


async def test_brownouts_apply_inside_the_tunnel(front_stack: StackFactory) -> None:
    now = datetime.datetime.now(datetime.UTC)
    hour = datetime.timedelta(hours=1)
    window = f"{(now - hour).isoformat()}/{(now + hour).isoformat()}"
    stack = await front_stack(brownouts=parse_schedule(window))
    async with aiohttp.ClientSession(headers=AUTH) as session:
        async with session.get(
            f"https://{PREVIEW}/marketplace/AvailableAddOns",
            proxy=stack.proxy_url,
            ssl=stack.ca.client_context(),
        ) as response:
            assert response.status == 410
            assert int(response.headers["Retry-After"]) > 0
            assert (await response.json())["more_info"] == f"https://{PREVIEW}/errors/88010"


async def test_a_client_that_does_not_trust_the_ca_fails_verification(
    front_stack: StackFactory,
) -> None:
    stack = await front_stack()
    before = requests_total("proxy")
    system_only = ssl.create_default_context()  # the public CAs, not ours
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await session.get(
                f"https://{PREVIEW}/marketplace/AvailableAddOns",
                proxy=stack.proxy_url,
                ssl=system_only,
            )
    await asyncio.sleep(0.1)
    assert requests_total("proxy") == before
    assert stack.door.open_count == 0  # the failed handshake gave its slot back


async def test_one_leaf_per_host_is_minted_and_reused(front_stack: StackFactory) -> None:
    stack = await front_stack()
    leaves = stack.door.settings.leaves
    for _ in range(3):
        async with aiohttp.ClientSession() as session:  # a new CONNECT and handshake each time
            async with session.get(
                f"https://{PREVIEW}/healthz", proxy=stack.proxy_url, ssl=stack.ca.client_context()
            ) as response:
                assert response.status == 200
    assert (leaves.minted, len(leaves)) == (1, 1)


async def test_an_intercepted_connection_is_closed_after_the_total_timeout(
    front_stack: StackFactory,
) -> None:
    stack = await front_stack(proxy_tunnel_total_timeout=0.5)
    reader, writer = await asyncio.open_connection("127.0.0.1", stack.proxy_port)
    writer.write(b"CONNECT preview.twilio.com:443 HTTP/1.1\r\nHost: preview.twilio.com\r\n\r\n")
    assert await reader.readuntil(b"\r\n\r\n") == intercept_established()
    await writer.start_tls(stack.ca.client_context(), server_hostname=PREVIEW)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: preview.twilio.com\r\n\r\n")
    await writer.drain()
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
    async with asyncio.timeout(5):
        while await reader.read(65536):  # the body, then the end of the connection
            pass
    writer.close()
    with contextlib.suppress(ConnectionError, ssl.SSLError):
        await writer.wait_closed()
    async with asyncio.timeout(5):
        while stack.door.open_count:  # the slot is free once the TCP connection is gone
            await asyncio.sleep(0.01)


def intercept_established() -> bytes:
    from gateway.frontdoor.connect import ESTABLISHED

    return ESTABLISHED


def test_the_handshake_has_a_deadline() -> None:
    assert 0 < intercept.HANDSHAKE_TIMEOUT <= 30
