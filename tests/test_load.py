"""A bounded load test: real ``gateway serve`` and ``gateway simulate`` processes on loopback.

20,000 requests at concurrency 200 (a mix of the legacy list and fetch operations) must all
succeed, and the gateway's resident memory, read from /proc/PID/status, must stay flat: less
than ``RSS_GROWTH_BOUND`` between request 5,000 (pools, caches and allocator arenas warm) and
request 20,000. Afterwards SIGTERM stops the gateway with exit status 0; a second test shows
that during the grace period new connections are refused while the in-flight request ends.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.simulator import load_seed
from tests.processes import free_port, rss, spawn, start_gateway, wait_ready

pytestmark = [pytest.mark.slow, pytest.mark.upstream]

TOTAL = 20_000
WARM = 5_000
CONCURRENCY = 200
RSS_GROWTH_BOUND = 10 * 1024 * 1024  # bytes: a leak of ~700 bytes a request would cross it
DEADLINE = 90  # seconds for the requests; measured ~10 s (2,000 req/s) on 2 cores
AUTH = "Basic " + base64.b64encode(b"AC00000000000000000000000000000001:token").decode()


def paths() -> Iterator[str]:
    seed = load_seed(None)
    available = seed.available_add_ons[0]
    installed = seed.installed_add_ons[0]
    mix = [
        "/marketplace/AvailableAddOns?PageSize=5",
        f"/marketplace/AvailableAddOns/{available.sid}",
        f"/marketplace/AvailableAddOns/{available.sid}/Extensions",
        f"/marketplace/AvailableAddOns/{available.sid}/Extensions/{available.extensions[0].sid}",
        "/marketplace/InstalledAddOns",
        f"/marketplace/InstalledAddOns/{installed.sid}",
        f"/marketplace/InstalledAddOns/{installed.sid}/Extensions",
    ]
    return itertools.cycle(mix)


async def test_20000_requests_at_concurrency_200_with_flat_memory(tmp_path: Path) -> None:
    sim_port, gw_port = free_port(), free_port()
    simulator = spawn(tmp_path / "simulator.log", "simulate", "--listen", f"127.0.0.1:{sim_port}")
    upstream = f"http://127.0.0.1:{sim_port}"
    gateway = start_gateway(upstream, gw_port, "--pool-size", "100", log=tmp_path / "gateway.log")
    base = f"http://127.0.0.1:{gw_port}"
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    samples: dict[int, int] = {}
    try:
        await wait_ready(base, gateway)
        source = paths()
        done = 0
        started = time.monotonic()
        connector = aiohttp.TCPConnector(limit=CONCURRENCY)
        timeout = aiohttp.ClientTimeout(total=30)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as client:

            async def worker(count: int) -> None:
                nonlocal done
                for _ in range(count):
                    try:
                        async with client.get(
                            base + next(source), headers={"Authorization": AUTH}
                        ) as response:
                            await response.read()
                            statuses[response.status] += 1
                    except (aiohttp.ClientError, TimeoutError) as exc:
                        errors[type(exc).__name__] += 1
                    done += 1
                    if done in (WARM, TOTAL):
                        samples[done] = rss(gateway.pid)

            async with asyncio.timeout(DEADLINE):
                await asyncio.gather(*(worker(TOTAL // CONCURRENCY) for _ in range(CONCURRENCY)))
        elapsed = time.monotonic() - started
        gateway.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(gateway.wait, 20)
    finally:
        for process in (gateway, simulator):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)
    growth = samples[TOTAL] - samples[WARM]
    print(
        f"\nload: {TOTAL} requests in {elapsed:.1f} s ({TOTAL / elapsed:.0f}/s), "
        f"RSS {samples[WARM] / 2**20:.1f} -> {samples[TOTAL] / 2**20:.1f} MiB"
    )
    assert errors == Counter(), errors
    assert statuses == Counter({200: TOTAL}), statuses
    assert growth < RSS_GROWTH_BOUND, f"gateway RSS grew {growth / 2**20:.1f} MiB"
    assert code == 0


async def test_sigterm_refuses_new_connections_while_in_flight_requests_finish(
    aiohttp_server: Any, tmp_path: Path
) -> None:
    """Extends test_server's SIGTERM test: during the grace period the port is already closed
    to new clients, while the request under way still gets its answer."""
    from aiohttp import web

    async def slow(request: web.Request) -> web.Response:
        await asyncio.sleep(1.5)
        return web.json_response({"available_add_ons": [], "meta": {"key": "available_add_ons"}})

    app = web.Application()
    app.router.add_get("/v1/AvailableAddOns", slow)
    server = await aiohttp_server(app)
    upstream = str(server.make_url("")).rstrip("/")
    port = free_port()
    gateway = start_gateway(upstream, port, log=tmp_path / "gateway.log")
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(base, gateway)
        async with aiohttp.ClientSession() as client:
            in_flight = asyncio.create_task(client.get(base + "/marketplace/AvailableAddOns"))
            await asyncio.sleep(0.4)
            gateway.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.4)
            assert not in_flight.done()
            with pytest.raises(ConnectionRefusedError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
            async with asyncio.timeout(10):
                response = await in_flight
            assert response.status == 200
            assert (await response.json())["meta"]["key"] == "available_add_ons"
        assert await asyncio.to_thread(gateway.wait, 20) == 0
    finally:
        if gateway.poll() is None:
            gateway.kill()
            gateway.wait(10)
