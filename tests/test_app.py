"""create_app: shared state, health endpoints, error rendering and the transport's lifetime."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.app import LIVE, TRANSPORT, create_app, create_metrics_app
from gateway.config.rules import RuleError
from gateway.routing import Router
from tests.conftest import head_then_get, make_config, pool_settings, raw_get, raw_http

Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[..., Awaitable[Client]]


@pytest.mark.upstream
async def test_the_transport_lives_with_the_app(
    aiohttp_client: ClientFactory, upstream_transport: str
) -> None:
    app = create_app(make_config("http://127.0.0.1:9"))
    client = await aiohttp_client(app)
    transport = app[TRANSPORT]
    assert type(transport).__name__.lower().startswith(upstream_transport)
    assert not transport.closed
    assert pool_settings(transport)[0] == 100
    assert (await (await client.get("/readyz")).json())["status"] == "ready"
    await client.close()
    assert transport.closed


@pytest.mark.upstream
async def test_pool_limits_come_from_the_config(aiohttp_client: ClientFactory) -> None:
    app = create_app(
        make_config("http://127.0.0.1:9", pool_size=7, pool_size_per_host=3, keepalive_timeout=2.0)
    )
    await aiohttp_client(app)
    assert pool_settings(app[TRANSPORT]) == (7, 3, 2.0)


class BrokenRouter(Router):
    def match(self, method: str, target: str) -> Any:
        raise RuntimeError("secret internals")


async def test_unexpected_errors_are_twilio_json_500(aiohttp_client: ClientFactory) -> None:
    app = create_app(make_config("http://127.0.0.1:9"))
    app[LIVE].pipeline = replace(app[LIVE].pipeline, router=BrokenRouter({}, ()))
    client = await aiohttp_client(app)
    response = await client.get("/marketplace/AvailableAddOns")
    assert response.status == 500
    body = await response.json()
    assert body["code"] == 88099 and body["status"] == 500
    assert "secret internals" not in body["message"]


async def test_error_code_pages(aiohttp_client: ClientFactory) -> None:
    client = await aiohttp_client(create_app(make_config("http://127.0.0.1:9")))
    assert (await client.get("/errors/88001")).status == 200
    missing = await client.get("/errors/12345")
    assert missing.status == 404
    assert (await missing.json())["code"] == 20404
    metrics = await aiohttp_client(create_metrics_app())
    assert "gateway_build_info" in await (await metrics.get("/metrics")).text()


def test_sunset_before_deprecation_in_a_rule_stops_start_up(tmp_path: Any) -> None:
    (tmp_path / "r.toml").write_text(
        '[[rule]]\nname = "legacy"\nmethods = ["GET"]\nfrom = "/marketplace/AvailableAddOns"\n'
        'to = "/v1/AvailableAddOns"\nupstream = "marketplace"\ndeprecated = true\n'
        "sunset = 2020-01-01T00:00:00Z\n"
    )
    with pytest.raises(RuleError, match="legacy"):
        create_app(make_config("http://127.0.0.1:9", rules=tmp_path))


@pytest.mark.parametrize(
    "path",
    ["/%6detrics", "/%6Detrics", "/metric%73", "/%68ealthz", "/ready%7a", "/errors/%388001"],
)
async def test_escaped_forms_of_the_gateways_own_paths_are_unknown_paths(
    aiohttp_client: ClientFactory, path: str
) -> None:
    """Sent raw: an HTTP client would normalise %6d to m before sending."""
    client = await aiohttp_client(create_app(make_config("http://127.0.0.1:9")))
    assert client.host and client.port
    unknown = await raw_http(client.host, client.port, raw_get("/no-such-path"))
    escaped = await raw_http(client.host, client.port, raw_get(path))
    assert escaped.startswith(b"HTTP/1.1 404 ") and unknown.startswith(b"HTTP/1.1 404 ")
    assert b'"code":20404' in escaped and b'"code":20404' in unknown
    assert b"gateway_build_info" not in escaped and b'"status":"ok"' not in escaped


async def test_own_paths_answer_get_and_head_only(aiohttp_client: ClientFactory) -> None:
    client = await aiohttp_client(create_app(make_config("http://127.0.0.1:9")))
    for method in ("POST", "PUT", "DELETE"):
        response = await client.request(method, "/healthz")
        assert (response.status, response.headers["Allow"]) == (405, "GET, HEAD")
    assert (await client.get("/healthz?probe=1")).status == 200


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics", "/errors/88002"])
async def test_head_on_an_own_path_is_the_get_answer_without_its_body(
    aiohttp_client: ClientFactory, path: str
) -> None:
    client = await aiohttp_client(create_app(make_config("http://127.0.0.1:9")))
    assert client.host and client.port
    head, get, body = await head_then_get(client.host, client.port, path)
    assert get[0] == "HTTP/1.1 200 OK" and body
    if path == "/metrics":  # the exposition grows between the two (the HEAD was counted)
        head[1].pop("content-length"), get[1].pop("content-length")
    assert head == get


async def test_head_on_the_metrics_listener(aiohttp_client: ClientFactory) -> None:
    client = await aiohttp_client(create_metrics_app(make_config("http://127.0.0.1:9")))
    assert client.host and client.port
    head, get, body = await head_then_get(client.host, client.port, "/metrics")
    assert head[0] == get[0] == "HTTP/1.1 200 OK"
    assert head[1]["content-type"] == get[1]["content-type"] and b"gateway_build_info" in body


async def test_metrics_public_false_keeps_metrics_off_the_main_listener(
    aiohttp_client: ClientFactory,
) -> None:
    app = create_app(
        make_config("http://127.0.0.1:9", metrics_public=False, metrics_listen=("127.0.0.1", 0))
    )
    client = await aiohttp_client(app)
    hidden = await client.get("/metrics")
    assert hidden.status == 404 and (await hidden.json())["code"] == 20404
    assert (await client.get("/healthz")).status == 200
    metrics = await aiohttp_client(create_metrics_app())
    assert "gateway_requests_total" in await (await metrics.get("/metrics")).text()


async def test_the_metrics_listener_serves_the_gateways_probes(
    aiohttp_client: ClientFactory,
) -> None:
    gateway = create_app(make_config("http://127.0.0.1:9"))
    metrics = await aiohttp_client(create_metrics_app(probes_of=gateway))
    assert (await metrics.get("/healthz")).status == 200
    starting = await metrics.get("/readyz")  # the gateway app is not started: no session yet
    assert starting.status == 503 and (await starting.json())["status"] == "starting"
    await aiohttp_client(gateway)  # started: its upstream session is open
    ready = await metrics.get("/readyz")
    assert ready.status == 200 and (await ready.json())["status"] == "ready"
    bare = await aiohttp_client(create_metrics_app())
    assert (await bare.get("/readyz")).status == 404  # no probes without a gateway app


def test_metrics_public_false_without_a_metrics_listener_is_refused() -> None:
    from gateway.config.settings import ConfigError, load_config

    with pytest.raises(ConfigError, match="metrics_listen is not set"):
        load_config({"metrics_public": "false"}, {})
    config = load_config({"metrics_public": "false", "metrics_listen": "127.0.0.1:9100"}, {})
    assert (config.metrics_public, config.metrics_listen) == (False, ("127.0.0.1", 9100))
