"""Shared fixtures: configs, a recording v1-shaped upstream on a real loopback socket."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.config import GatewayConfig, load_config
from gateway.upstreams import NAMES as UPSTREAM_NAMES
from tests.fake_upstream import FakeUpstream

AUTH_HEADER = "Basic QUMwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2RlZjpzZWNyZXQ="


def make_config(upstream_url: str | None = None, **overrides: Any) -> GatewayConfig:
    """Defaults as the CLI builds them, both upstreams at ``upstream_url`` when given."""
    flags = {f"{name}_upstream": upstream_url for name in UPSTREAM_NAMES} if upstream_url else {}
    return replace(load_config(flags, {}), **overrides)


@pytest.fixture
async def fake_upstream(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> FakeUpstream:
    upstream = FakeUpstream()
    server = await aiohttp_server(upstream.app())
    upstream.url = str(server.make_url("")).rstrip("/")
    return upstream


async def raw_http(host: str, port: int, request: bytes) -> bytes:
    """Send ``request`` bytes as they are (no client-side normalising) and read the reply."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(request)
    await writer.drain()
    reply = await reader.read()
    writer.close()
    await writer.wait_closed()
    return reply


def raw_get(path: str, host: str = "gateway.test") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode()


GatewayFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
def gateway_client(
    aiohttp_client: Callable[..., Awaitable[TestClient[web.Request, web.Application]]],
) -> GatewayFactory:
    """``await gateway_client(upstream_url, **config_overrides)`` -> a client of a gateway."""

    async def factory(
        upstream_url: str, **overrides: Any
    ) -> TestClient[web.Request, web.Application]:
        return await aiohttp_client(create_app(make_config(upstream_url, **overrides)))

    return factory
