"""``gateway demo``'s staged migration: three named demo consumers in different stages, a few
calls from each so the migration page has something to show, and the banner lines about them."""

from __future__ import annotations

import base64
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

import aiohttp

from gateway.config.consumers import Consumer, check_references
from gateway.config.instants import iso
from gateway.config.options_migration import DEFAULT_SUNSET
from gateway.config.policy import Targets, Window
from gateway.config.settings import GatewayConfig

PAYMENTS_SID = "AC" + "b1" * 16
WEB_SID = "AC" + "5f" * 16
DATA_SID = "AC" + "da" * 16
DEMO_PASSWORD = "demo"


@dataclass(frozen=True, slots=True)
class DemoPolicy:
    consumers: tuple[Consumer, ...]
    brownout: tuple[Window, ...]
    calls: tuple[tuple[str, int], ...]  # (SID, deprecated calls the demo makes at start)


def demo_policy(now: datetime) -> DemoPolicy:
    """One team migrated and cut off a week ago; one whose group has a brownout tomorrow; one
    exempt for 30 more days (all dates from today, UTC)."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    consumers = (
        Consumer(
            "billing-api",
            (PAYMENTS_SID,),
            "payments",
            "payments-team@example.com",
            cutoff=today - timedelta(days=7),
        ),
        Consumer(
            "storefront",
            (WEB_SID,),
            "web",
            "web-team@example.com",
            cutoff=today + timedelta(days=60),
        ),
        Consumer(
            "reporting-job",
            (DATA_SID,),
            "data",
            "data-team@example.com",
            cutoff=today + timedelta(days=90),
            exempt_until=today + timedelta(days=30),
        ),
    )
    tomorrow = today + timedelta(days=1)
    window = Window(
        tomorrow + timedelta(hours=14),
        tomorrow + timedelta(hours=16),
        100.0,
        Targets(groups=("web",)),
    )
    calls = ((WEB_SID, 5), (DATA_SID, 3), (PAYMENTS_SID, 2))
    return DemoPolicy(consumers, (window,), calls)


def with_demo_policy(config: GatewayConfig, policy: DemoPolicy) -> GatewayConfig:
    """``config`` with the demo's consumers and window added to its own; unless a sunset was
    configured, the Preview API's sunset is the last demo cut-off (Twilio's own is past)."""
    consumers = (*config.consumers, *policy.consumers)
    brownout = (*config.brownout, *policy.brownout)
    check_references(consumers, brownout, config.consumer_names)
    sunset = config.sunset_date
    if sunset == DEFAULT_SUNSET:
        last = max(c.cutoff for c in policy.consumers if c.cutoff is not None)
        sunset = iso(last)
    return replace(config, consumers=consumers, brownout=brownout, sunset_date=sunset)


def _auth(sid: str) -> str:
    return "Basic " + base64.b64encode(f"{sid}:{DEMO_PASSWORD}".encode()).decode()


async def make_calls(gateway_url: str, policy: DemoPolicy) -> dict[str, list[int]]:
    """The demo consumers' first deprecated calls; the statuses each got, by name."""
    names = {sid: consumer.name for consumer in policy.consumers for sid in consumer.sids}
    statuses: dict[str, list[int]] = {}
    url = f"{gateway_url}/marketplace/AvailableAddOns?PageSize=1"
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for sid, count in policy.calls:
            for _ in range(count):
                async with session.get(url, headers={"Authorization": _auth(sid)}) as response:
                    await response.read()
                    statuses.setdefault(names[sid], []).append(response.status)
    return statuses


def banner(gateway_url: str, policy: DemoPolicy) -> str:
    """What the demo prints about its consumers and the migration page."""
    billing, storefront, reporting = policy.consumers
    window = policy.brownout[0]
    assert billing.cutoff and reporting.exempt_until and reporting.cutoff
    url = f"{gateway_url}/marketplace/AvailableAddOns"
    return f"""
Staged migration: three demo consumers in different stages (each made a few calls already)
  billing-api   (payments) cut off since {billing.cutoff:%Y-%m-%d}: 410, code 88013
    curl -s -u {billing.sids[0]}:{DEMO_PASSWORD} '{url}'
  storefront    (web) brownout of its group {window.start:%Y-%m-%d %H:%M}-{window.end:%H:%M} UTC
    curl -s -u {storefront.sids[0]}:{DEMO_PASSWORD} -H 'Gateway-Rehearsal: brownout' '{url}'
  reporting-job (data) exempt until {reporting.exempt_until:%Y-%m-%d}, cut off from \
{reporting.cutoff:%Y-%m-%d}
    curl -s -u {reporting.sids[0]}:{DEMO_PASSWORD} -H 'Gateway-Rehearsal: cutoff' '{url}'
Migration page: {gateway_url}/migration   (data: {gateway_url}/migration.json)
"""
