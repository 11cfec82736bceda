"""Brownout windows on and off with an injected clock."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client import REGISTRY

from gateway.app import create_app
from gateway.brownout import parse_schedule
from tests.conftest import make_config
from tests.fake_upstream import FakeUpstream

START = datetime(2026, 12, 1, 10, 0, tzinfo=UTC).timestamp()


def test_schedule_parsing_and_errors() -> None:
    schedule = parse_schedule(
        "2026-12-01T10:00:00Z/2026-12-01T11:00:00Z@25; 2026-12-08T10:00/2026-12-08T12:00"
    )
    assert [w.percentage for w in schedule.windows] == [25.0, 100.0]
    assert schedule.active(START + 60) is schedule.windows[0]
    assert schedule.active(START - 1) is None
    assert schedule.active(START + 3600) is None  # the end is exclusive
    assert schedule.windows[0].retry_after(START + 3000) == 600
    assert len(schedule.upcoming(START + 3600)) == 1
    for bad in ("2026-12-01T10:00Z", "2026-12-01T11:00Z/2026-12-01T10:00Z", "a/b", "x/y@200"):
        with pytest.raises(ValueError, match="brownout"):
            parse_schedule(bad)


Client = TestClient[web.Request, web.Application]


async def _client(
    aiohttp_client: Callable[..., Awaitable[Client]],
    upstream: FakeUpstream,
    now: float,
    chance: float = 0.0,
    windows: str = "2026-12-01T10:00:00Z/2026-12-01T11:00:00Z",
) -> Client:
    config = replace(make_config(upstream.url), brownouts=parse_schedule(windows))
    app = create_app(config, clock=lambda: now, chance=lambda: chance)
    return await aiohttp_client(app)


async def test_inside_a_window_deprecated_routes_answer_410(
    aiohttp_client: Callable[..., Awaitable[Client]], fake_upstream: FakeUpstream
) -> None:
    before = (
        REGISTRY.get_sample_value(
            "gateway_brownout_rejections_total", {"route": "preview_available_add_ons"}
        )
        or 0.0
    )
    client = await _client(aiohttp_client, fake_upstream, START + 1800)
    response = await client.get("/marketplace/AvailableAddOns")
    assert response.status == 410
    body = await response.json()
    assert body["code"] == 88010 and body["status"] == 410
    assert "https://marketplace.twilio.com/v1/AvailableAddOns" in body["message"]
    assert response.headers["Retry-After"] == "1800"
    assert response.headers["Deprecation"].startswith("@")
    assert fake_upstream.received == []
    after = REGISTRY.get_sample_value(
        "gateway_brownout_rejections_total", {"route": "preview_available_add_ons"}
    )
    assert after == before + 1
    # v1 routes are never browned out
    assert (await client.get("/v1/AvailableAddOns")).status == 200


async def test_outside_a_window_nothing_changes(
    aiohttp_client: Callable[..., Awaitable[Client]], fake_upstream: FakeUpstream
) -> None:
    client = await _client(aiohttp_client, fake_upstream, START + 3600)
    assert (await client.get("/marketplace/AvailableAddOns")).status == 200


async def test_percentage_spares_the_rest(
    aiohttp_client: Callable[..., Awaitable[Client]], fake_upstream: FakeUpstream
) -> None:
    windows = "2026-12-01T10:00:00Z/2026-12-01T11:00:00Z@30"
    spared = await _client(aiohttp_client, fake_upstream, START + 5, 0.5, windows)
    assert (await spared.get("/marketplace/AvailableAddOns")).status == 200
    hit = await _client(aiohttp_client, fake_upstream, START + 5, 0.1, windows)
    assert (await hit.get("/marketplace/AvailableAddOns")).status == 410


def test_brownout_plan_lists_active_and_upcoming(capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.cli import brownout_plan
    from tests.conftest import make_config

    config = replace(
        make_config(),
        brownouts=parse_schedule(
            "2026-12-01T10:00:00Z/2026-12-01T11:00:00Z@25;"
            "2026-12-08T10:00:00Z/2026-12-08T12:00:00Z;2020-01-01/2020-01-02"
        ),
    )
    assert brownout_plan(config, START + 60) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split() == ["2026-12-01", "10:00:00", "2026-12-01", "11:00:00", "25%", "ACTIVE"]
    assert lines[2].split()[-1] == "upcoming"
    assert "2020-01-01" not in "\n".join(lines)
    assert lines[-1].endswith("(1 window(s) already over not shown.)")
    assert brownout_plan(make_config(), START) == 0
    assert capsys.readouterr().out == "no brownout windows scheduled\n"


def test_brownout_plan_says_when_every_window_is_over(capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.cli import brownout_plan

    config = replace(
        make_config(),
        brownouts=parse_schedule("2020-01-01/2020-01-02; 2026-11-30T10:00Z/2026-11-30T12:00Z@50"),
    )
    assert brownout_plan(config, START) == 0
    assert capsys.readouterr().out == (
        "all 2 configured brownout window(s) are over (the last ended 2026-11-30 12:00:00 UTC); "
        "none is active or still to come\n"
    )
