"""Upstream connection limits: pool size, per-host limit, keep-alive, queueing, disconnects.

The gateway runs under :class:`gateway.app.GatewayRunner` (as ``gateway serve`` runs it), not
under aiohttp's test server, because the test server cancels handlers of clients that hang up
on its own and would hide a gateway that does not.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import REGISTRY

from gateway.app import TRANSPORT, create_app
from gateway.serving.server import GatewayRunner
from tests.conftest import make_config, pool_settings

pytestmark = pytest.mark.upstream

LIST = "/marketplace/AvailableAddOns"
LIST_V1 = "/v1/AvailableAddOns"
FAST = "/marketplace/InstalledAddOns"
FAST_V1 = "/v1/InstalledAddOns"


@dataclass
class GatedUpstream:
    """Holds ``/v1/AvailableAddOns`` until ``gate`` opens (or ``hold`` seconds pass), answers
    ``/v1/InstalledAddOns`` at once; records concurrency, cancellations and client ports."""

    hold: float = 5.0
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    arrived: asyncio.Event = field(default_factory=asyncio.Event)
    active: int = 0
    peak: int = 0
    started: int = 0
    cancelled: int = 0
    ports: list[int] = field(default_factory=list)
    url: str = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get(LIST_V1, self.slow)
        app.router.add_get(FAST_V1, self.fast)
        return app

    def _note(self, request: web.Request) -> None:
        peer = request.transport.get_extra_info("peername") if request.transport else None
        self.ports.append(int(peer[1]) if peer else -1)

    async def slow(self, request: web.Request) -> web.Response:
        self._note(request)
        self.started += 1
        self.active += 1
        self.peak = max(self.peak, self.active)
        self.arrived.set()
        try:
            async with asyncio.timeout(self.hold):
                await self.gate.wait()
        except TimeoutError:
            pass
        except asyncio.CancelledError:
            self.cancelled += 1  # the gateway closed the connection
            raise
        finally:
            self.active -= 1
        return web.json_response({"available_add_ons": [], "meta": {"key": "available_add_ons"}})

    async def fast(self, request: web.Request) -> web.Response:
        self._note(request)
        return web.json_response({"installed_add_ons": [], "meta": {"key": "installed_add_ons"}})


@pytest.fixture
async def gated() -> AsyncIterator[GatedUpstream]:
    upstream = GatedUpstream()
    server = TestServer(upstream.app())  # cancels its handlers when the gateway hangs up
    await server.start_server()
    upstream.url = str(server.make_url("")).rstrip("/")
    yield upstream
    upstream.gate.set()
    await server.close()


Start = Callable[..., Awaitable[str]]


@pytest.fixture
async def start_gateway() -> AsyncIterator[Start]:
    runners: list[web.AppRunner] = []

    async def start(upstream_url: str, **overrides: Any) -> str:
        runner = GatewayRunner(create_app(make_config(upstream_url, **overrides)), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        runners.append(runner)
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}"

    yield start
    for runner in runners:
        await runner.cleanup()


async def test_pool_settings_reach_the_transport(fake_upstream: Any) -> None:
    app = create_app(
        make_config(fake_upstream.url, pool_size=7, pool_size_per_host=3, keepalive_timeout=2.5)
    )
    runner = GatewayRunner(app)
    await runner.setup()
    try:
        assert pool_settings(app[TRANSPORT]) == (7, 3, 2.5)
    finally:
        await runner.cleanup()


async def test_requests_over_the_pool_queue_and_then_complete(
    gated: GatedUpstream, start_gateway: Start
) -> None:
    gateway = await start_gateway(gated.url, pool_size=2, connect_timeout=5.0)
    async with aiohttp.ClientSession() as client:

        async def get() -> int:
            async with client.get(gateway + LIST) as response:
                await response.read()
                return response.status

        async with asyncio.timeout(10):
            tasks = [asyncio.create_task(get()) for _ in range(5)]
            await asyncio.sleep(0.5)
            assert gated.active == 2  # three requests wait for a pooled connection
            gated.gate.set()
            statuses = await asyncio.gather(*tasks)
    assert statuses == [200] * 5
    assert gated.peak == 2


@pytest.mark.parametrize(
    "limits", [{"pool_size": 1}, {"pool_size": 100, "pool_size_per_host": 1}], ids=str
)
async def test_an_exhausted_pool_fails_fast_with_504_instead_of_piling_up(
    limits: dict[str, int], gated: GatedUpstream, start_gateway: Start
) -> None:
    gateway = await start_gateway(gated.url, connect_timeout=0.3, total_timeout=5.0, **limits)
    async with aiohttp.ClientSession() as client:

        async def get() -> tuple[int, Any, float]:
            started = time.monotonic()
            async with client.get(gateway + LIST) as response:
                body = await response.json()
                return response.status, body, time.monotonic() - started

        async with asyncio.timeout(15):
            holder = asyncio.create_task(get())
            await gated.arrived.wait()
            waiting = await asyncio.gather(*(get() for _ in range(20)))
            gated.gate.set()
            first = await holder
    assert first[0] == 200
    for status, body, seconds in waiting:
        assert status == 504
        assert body["code"] == 88002
        assert seconds < 2.0  # the connect deadline covers the wait for a pooled connection
    assert gated.started == 1 and gated.peak == 1  # nothing queued past the limit reached it


async def test_keep_alive_reuses_one_connection_and_drops_it_when_idle(
    gated: GatedUpstream, start_gateway: Start
) -> None:
    gateway = await start_gateway(gated.url, keepalive_timeout=0.3)
    async with aiohttp.ClientSession() as client:
        for _ in range(3):
            async with client.get(gateway + FAST) as response:
                assert response.status == 200
        await asyncio.sleep(1.0)  # longer than keepalive_timeout
        async with client.get(gateway + FAST) as response:
            assert response.status == 200
    assert len(set(gated.ports[:3])) == 1  # three requests, one upstream connection
    assert gated.ports[3] != gated.ports[0]  # the idle one was closed, a new one opened


async def test_a_client_that_hangs_up_frees_its_upstream_connection(
    gated: GatedUpstream, start_gateway: Start
) -> None:
    gateway = await start_gateway(gated.url, pool_size=1, connect_timeout=2.0)
    labels = {
        "route": "preview_available_add_ons",
        "method": "GET",
        "status_class": "4xx",
        "deprecated": "true",
        "front_door": "direct",
    }
    hung_up_before = REGISTRY.get_sample_value("gateway_requests_total", labels) or 0.0
    port = int(gateway.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {LIST} HTTP/1.1\r\nHost: gw\r\n\r\n".encode())
    await writer.drain()
    async with asyncio.timeout(5):
        await gated.arrived.wait()
    writer.close()  # the client goes away while the upstream still works on its request
    await writer.wait_closed()
    started = time.monotonic()
    async with asyncio.timeout(5):
        while not gated.cancelled:
            await asyncio.sleep(0.02)
    assert time.monotonic() - started < 1.0  # the upstream saw the hang-up promptly
    async with aiohttp.ClientSession() as client, client.get(gateway + FAST) as response:
        assert response.status == 200  # the single pooled connection is free again
    assert time.monotonic() - started < 2.0
    # counted as a 499 (client closed the request), not as a gateway 5xx
    assert REGISTRY.get_sample_value("gateway_requests_total", labels) == hung_up_before + 1
