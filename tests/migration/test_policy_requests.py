"""The migration policy on the request path: what a cut-off, a closed list and a rehearsal answer
over HTTP, what reaches the upstream, and what the metrics and the access log count."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client import REGISTRY

from gateway.app import create_app
from gateway.config.consumers import parse_consumers
from gateway.telemetry.access_log import ACCESS_LOGGER
from tests.conftest import make_config
from tests.fake_upstream import FakeUpstream

pytestmark = pytest.mark.upstream

Client = TestClient[web.Request, web.Application]

CUT = "AC" + "c" * 32  # cut off since 2026-12-15
LATE = "AC" + "d" * 32  # listed, cut-off still to come
STRANGER = "AC" + "e" * 32
NOW = datetime(2026, 12, 20, 12, tzinfo=UTC).timestamp()
ROUTE = "preview_available_add_ons"
LIST = "/marketplace/AvailableAddOns"


def basic(sid: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{sid}:pw".encode()).decode()}


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def gateway(
    aiohttp_client: Callable[..., Awaitable[Client]],
    upstream: FakeUpstream,
    unknown: datetime | None = None,
) -> Client:
    consumers = parse_consumers(
        [
            {"sid": CUT, "name": "policy-cut", "cutoff": "2026-12-15T00:00:00Z"},
            {"sid": LATE, "name": "policy-late", "cutoff": "2027-02-01T00:00:00Z"},
        ]
    )
    config = replace(
        make_config(upstream.url), consumers=consumers, unknown_consumers_cutoff=unknown
    )
    return await aiohttp_client(create_app(config, clock=lambda: NOW))


async def test_a_cut_off_consumer_gets_410_88013_and_its_v1_calls_still_work(
    aiohttp_client: Callable[..., Awaitable[Client]], fake_upstream: FakeUpstream
) -> None:
    client = await gateway(aiohttp_client, fake_upstream)
    refusals = value(
        "gateway_policy_refusals_total", route=ROUTE, consumer="policy-cut", reason="cutoff"
    )
    calls = value("gateway_deprecated_requests_total", route=ROUTE, consumer="policy-cut")
    response = await client.get(LIST, headers=basic(CUT))
    assert response.status == 410
    body = await response.json()
    assert (body["code"], body["status"]) == (88013, 410)
    assert body["more_info"].endswith("/errors/88013")
    assert "https://marketplace.twilio.com/v1/AvailableAddOns" in body["message"]
    assert "Retry-After" not in response.headers
    assert (
        '<https://marketplace.twilio.com/v1/AvailableAddOns>; rel="successor-version"'
        in response.headers.getall("Link")
    )
    assert response.headers["Sunset"] == "Tue, 15 Dec 2026 00:00:00 GMT"  # its own cut-off
    assert fake_upstream.received == []  # not forwarded
    # counted as a refusal, and still as a deprecated call of that consumer
    await client.get("/healthz")  # the recording runs in the loop's next pass
    assert (
        value("gateway_policy_refusals_total", route=ROUTE, consumer="policy-cut", reason="cutoff")
        == refusals + 1
    )
    assert value("gateway_deprecated_requests_total", route=ROUTE, consumer="policy-cut") == (
        calls + 1
    )
    assert value("gateway_consumer_last_seen_timestamp_seconds", consumer="policy-cut") == NOW
    # v1 goes on unchanged, with no deprecation headers
    v1 = await client.get("/v1/AvailableAddOns", headers=basic(CUT))
    assert v1.status == 200 and "Sunset" not in v1.headers
    documented = await (await client.get("/errors/88013")).json()
    assert documented["title"] == "Cut off"


async def test_a_listed_consumer_before_its_cutoff_gets_its_own_sunset(
    aiohttp_client: Callable[..., Awaitable[Client]], fake_upstream: FakeUpstream
) -> None:
    client = await gateway(aiohttp_client, fake_upstream)
    response = await client.get(LIST, headers=basic(LATE))
    assert response.status == 200
    assert response.headers["Sunset"] == "Mon, 01 Feb 2027 00:00:00 GMT"
    other = await client.get(LIST, headers=basic(STRANGER))
    assert other.headers["Sunset"] == "Sun, 01 Dec 2024 00:00:00 GMT"  # the route's own


async def test_closing_the_list_refuses_unlisted_and_anonymous_callers(
    aiohttp_client: Callable[..., Awaitable[Client]], fake_upstream: FakeUpstream
) -> None:
    client = await gateway(aiohttp_client, fake_upstream, datetime(2026, 12, 18, tzinfo=UTC))
    before = {
        word: value(
            "gateway_policy_refusals_total", route=ROUTE, consumer=word, reason="unknown_consumer"
        )
        for word in ("unlisted", "anonymous")
    }
    for headers in (basic(STRANGER), {}):
        response = await client.get(LIST, headers=headers)
        assert response.status == 410 and (await response.json())["code"] == 88013
    assert (await client.get(LIST, headers=basic(LATE))).status == 200
    assert len(fake_upstream.received) == 1
    await client.get("/healthz")
    for word, count in before.items():
        assert (
            value(
                "gateway_policy_refusals_total",
                route=ROUTE,
                consumer=word,
                reason="unknown_consumer",
            )
            == count + 1
        )


async def test_a_rehearsal_is_refused_never_forwarded_and_not_a_deprecated_call(
    aiohttp_client: Callable[..., Awaitable[Client]],
    fake_upstream: FakeUpstream,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = await gateway(aiohttp_client, fake_upstream)
    rehearsals = value(
        "gateway_policy_refusals_total", route=ROUTE, consumer="policy-late", reason="rehearsal"
    )
    calls = value("gateway_deprecated_requests_total", route=ROUTE, consumer="policy-late")
    with caplog.at_level(logging.INFO, logger=ACCESS_LOGGER):
        response = await client.get(LIST, headers={**basic(LATE), "Gateway-Rehearsal": "cutoff"})
        assert response.status == 410
        assert (await response.json())["code"] == 88013
        assert response.headers["Sunset"] == "Mon, 01 Feb 2027 00:00:00 GMT"
        browned = await client.get(LIST, headers={**basic(LATE), "Gateway-Rehearsal": "brownout"})
        assert browned.status == 410 and browned.headers["Retry-After"] == "3600"
        assert (await browned.json())["code"] == 88010
        bad = await client.get(LIST, headers={**basic(LATE), "Gateway-Rehearsal": "now"})
        assert bad.status == 400 and (await bad.json())["code"] == 88007
        await client.get("/healthz")
    assert fake_upstream.received == []
    assert (
        value(
            "gateway_policy_refusals_total", route=ROUTE, consumer="policy-late", reason="rehearsal"
        )
        == rehearsals + 2
    )
    assert value("gateway_deprecated_requests_total", route=ROUTE, consumer="policy-late") == calls
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == ACCESS_LOGGER]
    assert [(line["status"], line.get("policy")) for line in lines[:3]] == [
        (410, "rehearsal"),
        (410, "rehearsal"),
        (400, "rehearsal"),
    ]
    # on a route that is not deprecated the header is ignored, and never forwarded
    v1 = await client.get(
        "/v1/AvailableAddOns", headers={**basic(LATE), "Gateway-Rehearsal": "cutoff"}
    )
    assert v1.status == 200
    assert "Gateway-Rehearsal" not in fake_upstream.received[-1].headers
