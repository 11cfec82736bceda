"""Staged migration end to end: a real ``gateway serve`` (uvloop, as in production) in front of a
real ``gateway simulate``, three teams on one policy, each calling with the official twilio
client: one cut off, one in its group's brownout, one exempt. What each gets, what /metrics
counts."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from gateway.simulator import load_seed
from tests.fleet import LEGACY_LIST, basic, iso, one_gateway, scrape

pytestmark = pytest.mark.upstream

BILLING = "AC" + "b1" * 16  # migrated, cut off since yesterday
STOREFRONT = "AC" + "5f" * 16  # its group is in a brownout now
REPORTS = "AC" + "3e" * 16  # in the brownout's group too, but exempt for 30 days
STRANGER = "AC" + "99" * 16  # not on the list


def policy_file(directory: Path, now: float) -> Path:
    path = directory / "gateway.toml"
    path.write_text(
        f"""
unknown_consumers_cutoff = "{iso(now + 90 * 86400)}"

[[consumers]]
sid = "{BILLING}"
name = "billing-api"
group = "payments"
cutoff = {iso(now - 86400)}

[[consumers]]
sid = "{STOREFRONT}"
name = "storefront"
group = "web"
cutoff = {iso(now + 60 * 86400)}

[[consumers]]
sid = "{REPORTS}"
name = "reporting-job"
group = "web"
owner = "data-team@example.com"
exempt_until = {iso(now + 30 * 86400)}
cutoff = {iso(now + 45 * 86400)}

[[brownout]]
start = {iso(now - 3600)}
end = {iso(now + 3600)}
groups = ["web"]
""",
        "utf-8",
    )
    return path


def twilio_client(sid: str, gateway: str) -> Client:
    client = Client(sid, "token")
    client.preview.base_url = gateway
    client.marketplace.base_url = gateway
    return client


def preview_list(sid: str, gateway: str) -> list[str]:
    add_ons = twilio_client(sid, gateway).preview.marketplace.available_add_ons.list(limit=2)
    return [add_on.sid for add_on in add_ons]


ADD_ON = load_seed(None).available_add_ons[0].sid


def preview_refusal(sid: str, gateway: str) -> TwilioRestException:
    """A fetch of one add-on, which the client raises as TwilioRestException on an error."""
    with pytest.raises(TwilioRestException) as caught:
        twilio_client(sid, gateway).preview.marketplace.available_add_ons(ADD_ON).fetch()
    return caught.value


@pytest.mark.slow
async def test_three_teams_on_one_policy(tmp_path: Path) -> None:
    now = time.time()
    config = policy_file(tmp_path, now)
    async with one_gateway(config, tmp_path) as gateway:
        # billing-api: cut off, with the code its error handling can key on
        cut = await asyncio.to_thread(preview_refusal, BILLING, gateway)
        assert (cut.status, cut.code) == (410, 88013)
        assert f"https://marketplace.twilio.com/v1/AvailableAddOns/{ADD_ON}" in cut.msg
        # ... while its Marketplace v1 calls work, through the same gateway
        v1 = await asyncio.to_thread(
            lambda: twilio_client(BILLING, gateway).marketplace.v1.available_add_ons.list(limit=2)
        )
        assert len(v1) == 2
        # storefront: its group's brownout
        browned = await asyncio.to_thread(preview_refusal, STOREFRONT, gateway)
        assert (browned.status, browned.code) == (410, 88010)
        # reporting-job: same group, exempt: served, and told its own date
        assert len(await asyncio.to_thread(preview_list, REPORTS, gateway)) == 2
        async with aiohttp.ClientSession() as session:
            auth = basic(REPORTS)
            async with session.get(gateway + LEGACY_LIST, headers=auth) as r:
                assert r.status == 200
                assert r.headers["Sunset"] == datetime.fromtimestamp(
                    datetime.fromisoformat(iso(now + 45 * 86400)).timestamp(), UTC
                ).strftime("%a, %d %b %Y %H:%M:%S GMT")
            # ...and it can rehearse its cut-off today, without anything reaching v1
            rehearsal = {**auth, "Gateway-Rehearsal": "cutoff"}
            async with session.get(gateway + LEGACY_LIST, headers=rehearsal) as r:
                assert r.status == 410 and (await r.json())["code"] == 88013
                assert "Retry-After" not in r.headers
        # a caller not on the list is served until the list closes
        assert len(await asyncio.to_thread(preview_list, STRANGER, gateway)) == 2
        samples = await asyncio.to_thread(scrape, gateway)

    def sample(name: str, **labels: str) -> float:
        return samples.get((name, tuple(sorted(labels.items()))), 0.0)

    route, one = "preview_available_add_ons", "preview_available_add_on"
    assert sample("gateway_policy_refusals_total", route=one, consumer="billing-api",
                  reason="cutoff") == 1  # fmt: skip
    assert sample("gateway_policy_refusals_total", route=route, consumer="reporting-job",
                  reason="rehearsal") == 1  # fmt: skip
    assert sample("gateway_brownout_rejections_total", route=one) == 1
    # refused calls still count as deprecated calls of their consumer; the rehearsal does not
    assert sample("gateway_deprecated_requests_total", route=one, consumer="billing-api") == 1
    assert sample("gateway_deprecated_requests_total", route=one, consumer="storefront") == 1
    assert sample("gateway_deprecated_requests_total", route=route, consumer="reporting-job") == 2
    seen = sample("gateway_consumer_last_seen_timestamp_seconds", consumer="billing-api")
    assert now - 5 < seen < time.time() + 5
