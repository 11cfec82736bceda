"""The real ``gateway serve`` command in one process: readiness and graceful shutdown."""

from __future__ import annotations

import asyncio
import signal

import aiohttp
import pytest

from tests.processes import free_port, start_gateway, wait_ready

pytestmark = pytest.mark.slow


@pytest.mark.upstream
async def test_sigterm_finishes_in_flight_requests(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    from aiohttp import web

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1.0)
        return web.json_response({"available_add_ons": [], "meta": {"key": "available_add_ons"}})

    app = web.Application()
    app.router.add_get("/v1/AvailableAddOns", slow)
    server = await aiohttp_server(app)
    port = free_port()
    process = start_gateway(str(server.make_url("")).rstrip("/"), port)
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(url, process)
        async with aiohttp.ClientSession() as session:
            in_flight = asyncio.create_task(session.get(f"{url}/marketplace/AvailableAddOns"))
            await asyncio.sleep(0.3)
            process.send_signal(signal.SIGTERM)
            response = await in_flight
            assert response.status == 200
            response.release()
        assert await asyncio.to_thread(process.wait, 20) == 0
        with pytest.raises(aiohttp.ClientError):
            async with aiohttp.ClientSession() as session:
                await session.get(f"{url}/healthz")
    finally:
        if process.poll() is None:
            process.kill()


async def test_metrics_listen_serves_metrics_on_a_second_address(aiohttp_server) -> None:  # type: ignore[no-untyped-def]
    from aiohttp import web

    app = web.Application()
    server = await aiohttp_server(app)
    port, metrics_port = free_port(), free_port()
    process = start_gateway(
        str(server.make_url("")).rstrip("/"), port, "--metrics-listen", f"127.0.0.1:{metrics_port}"
    )
    try:
        await wait_ready(f"http://127.0.0.1:{port}", process)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{metrics_port}/metrics") as response:
                assert response.status == 200
                assert "gateway_build_info" in await response.text()
            async with session.get(
                f"http://127.0.0.1:{metrics_port}/marketplace/AvailableAddOns"
            ) as response:
                assert response.status == 404  # the metrics address forwards nothing
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, 20) == 0
