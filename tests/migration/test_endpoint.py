"""gateway.migration.endpoint: /migration and /migration.json where /metrics is served, their
headers, the tally they show, and a Prometheus that fails or hangs (never the event loop)."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import Awaitable, Callable
from dataclasses import replace

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.app import MIGRATION_PAGE, create_app, create_metrics_app
from gateway.config.consumers import parse_consumers
from gateway.migration.page import CONTENT_SECURITY_POLICY
from gateway.migration.prometheus import PrometheusCounts
from tests.conftest import make_config
from tests.fake_upstream import FakeUpstream
from tests.processes import free_port

Client = TestClient[web.Request, web.Application]
Factory = Callable[..., Awaitable[Client]]
LISTED = "AC" + "4a" * 16


def consumers() -> object:
    return parse_consumers([{"sid": LISTED, "name": "endpoint-app", "group": "tests"}])


def basic(sid: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{sid}:pw".encode()).decode()}


@pytest.mark.upstream
async def test_the_page_is_served_beside_metrics_with_its_headers(
    aiohttp_client: Factory, fake_upstream: FakeUpstream
) -> None:
    config = replace(make_config(fake_upstream.url), consumers=consumers())
    client = await aiohttp_client(create_app(config))
    for _ in range(2):
        assert (
            await client.get("/marketplace/AvailableAddOns", headers=basic(LISTED))
        ).status == 200
    page = await client.get("/migration")
    assert page.status == 200
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert page.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert page.headers["Cache-Control"] == "no-store"
    assert 'data-name="endpoint-app" data-stage="calling"' in await page.text()
    data = await (await client.get("/migration.json")).json()
    (row,) = [row for row in data["consumers"] if row["name"] == "endpoint-app"]
    assert (row["deprecated_calls"], row["group"]) == (2, "tests")
    assert data["burndown"]["groups"]["tests"][-1] == 2
    assert data["source"]["kind"] == "tally"
    assert "Counted in memory by this gateway process" in data["source"]["description"]
    assert not any("worker" in note for note in data["notes"])
    refused = await client.post("/migration")
    assert refused.status == 405 and refused.headers["Allow"] == "GET, HEAD"
    headed = await client.head("/migration")  # the GET's answer without its body
    assert headed.status == 200 and headed.headers["Content-Type"] == "text/html; charset=utf-8"
    assert await headed.read() == b""


async def test_kept_off_the_main_listener_when_metrics_are_not_public(
    aiohttp_client: Factory, fake_upstream: FakeUpstream
) -> None:
    config = replace(make_config(fake_upstream.url), metrics_public=False, workers=3)
    app = create_app(config)
    main = await aiohttp_client(app)
    for path in ("/metrics", "/migration", "/migration.json"):
        response = await main.get(path)
        assert response.status == 404, path
        assert (await response.json())["code"] == 20404
    metrics = await aiohttp_client(create_metrics_app(config, app[MIGRATION_PAGE]))
    assert (await metrics.get("/migration")).status == 200
    data = await (await metrics.get("/migration.json")).json()
    assert any("3 workers" in note and "share" in note for note in data["notes"])
    assert (await metrics.get("/metrics")).status == 200


async def test_an_unreachable_prometheus_falls_back_to_the_tally_and_says_so(
    aiohttp_client: Factory, fake_upstream: FakeUpstream
) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    config = replace(make_config(fake_upstream.url), migration_prometheus_url=dead)
    client = await aiohttp_client(create_app(config))
    data = await (await client.get("/migration.json")).json()
    assert data["source"]["kind"] == "tally"
    assert data["notes"][0].startswith(f"Prometheus could not be read (cannot reach {dead}")
    assert "Prometheus could not be read" in await (await client.get("/migration")).text()


@pytest.mark.upstream
async def test_a_hanging_prometheus_never_blocks_the_event_loop(
    aiohttp_client: Factory, fake_upstream: FakeUpstream
) -> None:
    hung: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hung.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        config = replace(make_config(fake_upstream.url), migration_prometheus_url=url)
        app = create_app(config)
        app[MIGRATION_PAGE].prometheus = PrometheusCounts(time_limit=1.5)
        client = await aiohttp_client(app)
        started = time.monotonic()
        page = asyncio.create_task(client.get("/migration.json"))
        await asyncio.sleep(0.2)
        # while the page waits for Prometheus, the gateway answers everything else at once
        health = await client.get("/healthz")
        proxied = await client.get("/v1/AvailableAddOns")
        assert (health.status, proxied.status) == (200, 200)
        assert time.monotonic() - started < 1.0
        data = await (await page).json()
        assert 1.4 < time.monotonic() - started < 4
        assert "no answer within 1.5 s" in data["notes"][0]
    finally:
        for writer in hung:
            writer.close()
        server.close()
        await server.wait_closed()
