"""Brownout windows on and off with an injected clock."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client import REGISTRY

from gateway.app import create_app
from gateway.config.policy import parse_schedule
from gateway.migration.brownout import CONSISTENT_SECONDS, refuses
from tests.conftest import make_config
from tests.fake_upstream import FakeUpstream

START = datetime(2026, 12, 1, 10, 0, tzinfo=UTC).timestamp()


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


@pytest.mark.upstream
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


@pytest.mark.upstream
async def test_outside_a_window_nothing_changes(
    aiohttp_client: Callable[..., Awaitable[Client]], fake_upstream: FakeUpstream
) -> None:
    client = await _client(aiohttp_client, fake_upstream, START + 3600)
    assert (await client.get("/marketplace/AvailableAddOns")).status == 200


@pytest.mark.upstream
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


# --- which requests a partial window refuses (gateway.migration.brownout.refuses) -------------


def _basic(sid: str) -> str:
    return "Basic " + base64.b64encode(f"{sid}:secret".encode()).decode()


QUARTER = parse_schedule("2026-12-01T10:00:00Z/2026-12-01T18:00:00Z@25").windows[0]
SIDS = [f"AC{index:032x}" for index in range(20_000)]


def _never() -> float:
    raise AssertionError("a SID's answer must not depend on chance")


def test_a_sid_gets_one_answer_for_a_whole_minute() -> None:
    for sid in SIDS[:200]:
        for minute in (0, 1, 7, 479):
            start = START + minute * CONSISTENT_SECONDS
            answers = {
                refuses(QUARTER, _basic(sid), start + offset, _never)
                for offset in (0.0, 0.001, 17.5, CONSISTENT_SECONDS - 0.001)
            }
            assert len(answers) == 1, (sid, minute)


def test_a_quarter_of_the_sids_are_refused_in_a_minute() -> None:
    # Deterministic: fixed SIDs, a fixed window and minute. 20,000 draws: sd 0.31 points.
    refused = sum(refuses(QUARTER, _basic(sid), START + 90, _never) for sid in SIDS)
    assert refused / len(SIDS) == pytest.approx(0.25, abs=0.01)


def test_every_sid_meets_the_brownout_in_about_a_quarter_of_the_minutes() -> None:
    minutes = range(480)  # the whole 8-hour window
    for sid in SIDS[:20]:
        hits = sum(
            refuses(QUARTER, _basic(sid), START + m * CONSISTENT_SECONDS, _never) for m in minutes
        )
        assert 0.25 * 480 - 60 < hits < 0.25 * 480 + 60, (sid, hits)  # sd 9.5: > 6 sd apart


def test_the_minutes_and_the_windows_draw_independently() -> None:
    def refused_set(window_text: str, moment: float) -> set[str]:
        window = parse_schedule(window_text).windows[0]
        return {sid for sid in SIDS[:4000] if refuses(window, _basic(sid), moment, _never)}

    first = refused_set("2026-12-01T10:00:00Z/2026-12-01T18:00:00Z@25", START + 30)
    next_minute = refused_set("2026-12-01T10:00:00Z/2026-12-01T18:00:00Z@25", START + 90)
    other_window = refused_set("2026-12-01T10:00:01Z/2026-12-01T18:00:00Z@25", START + 30)
    # Independent quarters overlap in about 1/16 of the SIDs (250 of 4000).
    assert 150 < len(first & next_minute) < 350
    assert 150 < len(first & other_window) < 350


def test_api_key_sids_count_as_callers_too() -> None:
    keys = [f"SK{index:032x}" for index in range(4000)]
    refused = sum(refuses(QUARTER, _basic(sid), START, _never) for sid in keys)
    assert 0.22 < refused / len(keys) < 0.28


@pytest.mark.parametrize(
    "authorization", [None, "", "Bearer abc", _basic("not-a-sid"), "Basic %%%"]
)
def test_callers_without_a_sid_are_refused_at_random(authorization: str | None) -> None:
    assert refuses(QUARTER, authorization, START, lambda: 0.2499)
    assert not refuses(QUARTER, authorization, START, lambda: 0.25)


def test_a_full_window_refuses_everyone_without_drawing() -> None:
    full = parse_schedule("2026-12-01T10:00:00Z/2026-12-01T11:00:00Z").windows[0]
    assert all(refuses(full, _basic(sid), START, _never) for sid in SIDS[:100])
    assert refuses(full, None, START, _never)


@pytest.mark.upstream
async def test_two_replicas_give_a_sid_the_same_answers(
    aiohttp_client: Callable[..., Awaitable[Client]], fake_upstream: FakeUpstream
) -> None:
    """Two apps with nothing shared but the configuration (as two pods) agree, SID by SID."""
    windows = "2026-12-01T10:00:00Z/2026-12-01T18:00:00Z@25"
    replicas = [
        await _client(aiohttp_client, fake_upstream, START + 61, chance, windows)
        for chance in (0.0, 0.99)  # opposite draws: only the SID may decide
    ]
    answers: dict[str, set[int]] = {}
    for sid in SIDS[:80]:
        for replica in replicas:
            response = await replica.get(
                "/marketplace/AvailableAddOns", headers={"Authorization": _basic(sid)}
            )
            answers.setdefault(sid, set()).add(response.status)
    assert all(len(statuses) == 1 for statuses in answers.values()), answers
    refused = sum(statuses == {410} for statuses in answers.values())
    assert 0 < refused < 80


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
