"""Fixtures for the simulator tests: a running simulator and authenticated callers."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.simulator import Seed, create_simulator_app, load_seed

from .spec_check import validate_response

SimClient = TestClient[web.Request, web.Application]


def new_account() -> str:
    return "AC" + uuid.uuid4().hex


def basic(username: str, password: str = "auth-token") -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


@dataclass
class Reply:
    status: int
    headers: Any
    raw: bytes

    @property
    def json(self) -> Any:
        return orjson.loads(self.raw)


@dataclass
class Caller:
    """Calls the simulator as one account; every reply is checked against the specs."""

    client: SimClient
    account: str
    username: str | None = None

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": basic(self.username or self.account)}

    @property
    def origin(self) -> str:
        return str(self.client.make_url("")).rstrip("/")

    async def call(
        self, method: str, url: str, *, data: Any = None, json: Any = None, **kw: Any
    ) -> Reply:
        headers = {**self.auth, **kw.pop("headers", {})}
        if url.startswith(self.origin):
            url = url[len(self.origin) :]
        async with self.client.request(method, url, data=data, json=json, headers=headers) as resp:
            raw = await resp.read()
            path = resp.url.path
            validate_response(
                method,
                path,
                resp.url.query_string,
                resp.status,
                resp.content_type if raw else "",
                raw,
            )
            if resp.status != 204 and resp.status != 304:
                assert resp.content_type == "application/json", resp.content_type
            return Reply(resp.status, resp.headers, raw)

    async def get(self, url: str, **kw: Any) -> Reply:
        return await self.call("GET", url, **kw)

    async def post(self, url: str, **kw: Any) -> Reply:
        return await self.call("POST", url, **kw)

    async def delete(self, url: str, **kw: Any) -> Reply:
        return await self.call("DELETE", url, **kw)

    async def install(self, available_sid: str, **form: str) -> dict[str, Any]:
        data = {"AvailableAddOnSid": available_sid, "AcceptTermsOfService": "true", **form}
        reply = await self.post("/v1/InstalledAddOns", data=data)
        assert reply.status == 201, reply.json
        result: dict[str, Any] = reply.json
        return result


@pytest.fixture(scope="session")
def default_seed() -> Seed:
    return load_seed()


@pytest.fixture
def catalogue(default_seed: Seed) -> list[str]:
    """Available add-on SIDs of the default seed, in catalogue order."""
    return [a.sid for a in default_seed.available_add_ons]


@pytest.fixture
async def sim(aiohttp_client: Callable[..., Awaitable[SimClient]], default_seed: Seed) -> SimClient:
    client: SimClient = await aiohttp_client(create_simulator_app(default_seed))
    return client


@pytest.fixture
def caller(sim: SimClient) -> Caller:
    return Caller(sim, new_account())


@pytest.fixture
def other(sim: SimClient) -> Caller:
    return Caller(sim, new_account())
