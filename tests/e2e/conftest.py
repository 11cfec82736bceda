"""End to end: the official twilio client -> the gateway -> the embedded Marketplace v1 simulator.

Both run on real loopback sockets. The gateway's ``marketplace`` and ``api`` upstreams point at
the simulator. The simulator records every request it receives (with the gateway's ``Via``
header, or without it when a call bypassed the gateway) and the gateway's JSON access log is
captured, so tests can prove which hop every call took.

The ``stack`` fixture runs twice: once with the simulator writing absolute URLs with its own
origin (what the gateway knows as its upstream base) and once writing them with
``https://marketplace.twilio.com`` (the real v1 origin, known to the gateway as a public origin).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from openapi_core.templating.responses.exceptions import ResponseNotFound
from openapi_core.testing import MockRequest, MockResponse
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from gateway.app import create_app
from gateway.simulator import create_simulator_app, load_seed
from tests.conftest import make_config
from tests.simulator.spec_check import _spec, check_error_body

T = TypeVar("T")

PREVIEW_SPEC = "twilio_preview_marketplace.json"
PREVIEW_SERVER = "https://preview.twilio.com"
V1_ORIGIN = "https://marketplace.twilio.com"
VIA = "1.1 marketplace-gateway"
CALL_TIMEOUT = 20.0  # seconds for one twilio-client call (run in a worker thread)

ServerFactory = Callable[..., Awaitable[TestServer]]


def basic(username: str, password: str = "auth-token") -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


@dataclass(frozen=True)
class SimRequest:
    """One request as the simulator received it."""

    method: str
    path_qs: str
    via: str | None
    body: bytes


@dataclass
class Stack:
    simulator_url: str
    gateway_url: str
    sim_origin: str | None  # url_base the simulator writes URLs with (None: its own origin)
    sim_requests: list[SimRequest] = field(default_factory=list)
    caplog: pytest.LogCaptureFixture | None = None

    def access_lines(self) -> list[dict[str, Any]]:
        """The gateway's access-log lines so far, parsed."""
        assert self.caplog is not None
        return [
            orjson.loads(r.getMessage()) for r in self.caplog.records if r.name == "gateway.access"
        ]

    def mark(self) -> tuple[int, int]:
        """Positions in both logs, to look only at what happens after this point."""
        return len(self.access_lines()), len(self.sim_requests)

    def since(self, mark: tuple[int, int]) -> tuple[list[dict[str, Any]], list[SimRequest]]:
        return self.access_lines()[mark[0] :], self.sim_requests[mark[1] :]

    def assert_all_via_gateway(self, mark: tuple[int, int] = (0, 0)) -> None:
        """Every simulator request after *mark* was forwarded by the gateway, one for one."""
        lines, received = self.since(mark)
        bypassed = [r for r in received if r.via != VIA]
        assert not bypassed, f"requests reached the simulator without the gateway: {bypassed}"
        forwarded = [line for line in lines if line["upstream_status"] is not None]
        assert len(forwarded) == len(received), (forwarded, received)


def _recorder(requests: list[SimRequest]) -> Any:
    @web.middleware
    async def record(request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.read()  # cached: the handler reads the same bytes again
        requests.append(
            SimRequest(request.method, request.path_qs, request.headers.get("Via"), body)
        )
        response: web.StreamResponse = await handler(request)
        return response

    return record


@pytest.fixture(params=[None, V1_ORIGIN], ids=["sim-origin", "v1-origin"])
async def stack(
    request: pytest.FixtureRequest,
    aiohttp_server: ServerFactory,
    caplog: pytest.LogCaptureFixture,
) -> Stack:
    caplog.set_level(logging.INFO, logger="gateway.access")
    sim_origin: str | None = request.param
    recorded: list[SimRequest] = []
    sim_app = create_simulator_app(load_seed(), url_base=sim_origin)
    sim_app.middlewares.insert(0, _recorder(recorded))
    sim_server = await aiohttp_server(sim_app)
    simulator_url = str(sim_server.make_url("")).rstrip("/")
    gw_server = await aiohttp_server(create_app(make_config(simulator_url)))
    gateway_url = str(gw_server.make_url("")).rstrip("/")
    return Stack(simulator_url, gateway_url, sim_origin, recorded, caplog)


@pytest.fixture
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TWILIO_REGION", "TWILIO_EDGE"):  # would be spliced into the hostname
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # requests honours *_PROXY


def new_account() -> str:
    return "AC" + uuid.uuid4().hex


def new_client(account: str) -> Client:
    return Client(account, "auth-token", http_client=TwilioHttpClient(timeout=CALL_TIMEOUT))


@pytest.fixture
def client(stack: Stack, no_proxy: None) -> Client:
    """A legacy app: ``client.preview`` (and ``client.api``) redirected to the gateway."""
    twilio = new_client(new_account())
    twilio.preview.base_url = stack.gateway_url
    twilio.api.base_url = stack.gateway_url
    return twilio


async def run(fn: Callable[[], T]) -> T:
    """Run a blocking twilio-client call in a worker thread, bounded in time."""
    return await asyncio.wait_for(asyncio.to_thread(fn), CALL_TIMEOUT + 5)


# -- preview spec checks --------------------------------------------------------------------


def url_fields(body: Any) -> Iterator[tuple[str, str]]:
    """(where, value) of every URL-bearing field of a preview body: url, links.*, meta.*_url.

    Customer data (``configuration``, ``configuration_schema``) is deliberately not walked.
    """

    def of_record(record: Any, where: str) -> Iterator[tuple[str, str]]:
        if not isinstance(record, dict):
            return
        if isinstance(record.get("url"), str):
            yield f"{where}.url", record["url"]
        links = record.get("links")
        if isinstance(links, dict):
            for name, value in links.items():
                if isinstance(value, str):
                    yield f"{where}.links.{name}", value

    if not isinstance(body, dict):
        return
    meta = body.get("meta")
    if isinstance(meta, dict):
        for name, value in meta.items():
            if name.endswith("url") and isinstance(value, str):
                yield f"meta.{name}", value
        key = meta.get("key")
        for index, record in enumerate(body.get(key, []) if isinstance(key, str) else []):
            yield from of_record(record, f"{key}[{index}]")
    else:
        yield from of_record(body, "$")


def check_preview_response(
    method: str, url: str, status: int, content_type: str, raw: bytes, gateway_url: str
) -> None:
    """The gateway's answer to a preview call: valid against the PREVIEW spec, URLs its own.

    The request URL is translated to the preview server (``https://preview.twilio.com``).
    Errors are checked against Twilio's error contract; documented error statuses also go
    through openapi-core.
    """
    parts = urlsplit(url)
    assert parts.path.startswith("/marketplace/"), url
    args = dict(parse_qsl(parts.query, keep_blank_values=True))
    request = MockRequest(PREVIEW_SERVER, method.lower(), parts.path, args=args)
    response = MockResponse(raw, status_code=status, content_type=content_type)
    if status >= 400:
        check_error_body(status, orjson.loads(raw))
        try:
            _spec(PREVIEW_SPEC).validate_response(request, response)
        except (PathNotFound, OperationNotFound, ResponseNotFound):
            pass
        return
    _spec(PREVIEW_SPEC).validate_response(request, response)
    if status == 204:
        assert raw == b""
        return
    body = orjson.loads(raw)
    for where, value in url_fields(body):
        assert "marketplace.twilio.com" not in value, (where, value)
        if where.endswith("links.usage"):  # no preview twin: back through the v1 route
            assert NO_PREVIEW_TWIN.fullmatch(value.removeprefix(gateway_url)), (where, value)
        else:
            assert value.startswith(f"{gateway_url}/marketplace/"), (where, value)


# The one v1 resource a preview answer links to that has no preview route: its URL leads
# back through the gateway's v1 pass-through instead.
NO_PREVIEW_TWIN = re.compile(r"/v1/InstalledAddOns/XE[0-9a-f]{32}/Usage")
