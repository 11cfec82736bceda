"""The official twilio-python client (9.11.0) talking straight to the simulator.

The sync client uses ``requests``; it runs in a worker thread (``asyncio.to_thread``) while
the aiohttp test server keeps serving on the test's event loop.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from .conftest import SimClient, new_account

T = TypeVar("T")


@pytest.fixture
def client(sim: SimClient, monkeypatch: pytest.MonkeyPatch) -> Client:
    for name in ("TWILIO_REGION", "TWILIO_EDGE"):  # would be spliced into the hostname
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")  # requests honours *_PROXY
    twilio = Client(new_account(), "auth-token")
    origin = str(sim.make_url("")).rstrip("/")
    twilio.marketplace.base_url = origin
    twilio.api.base_url = origin
    return twilio


async def run(fn: Callable[[], T]) -> T:
    return await asyncio.to_thread(fn)


async def test_catalogue_operations(client: Client, catalogue: list[str]) -> None:
    v1 = client.marketplace.v1
    add_ons = await run(lambda: v1.available_add_ons.list())
    assert [a.sid for a in add_ons] == catalogue
    paged = await run(lambda: v1.available_add_ons.list(page_size=2))
    assert [a.sid for a in paged] == catalogue
    fetched = await run(lambda: v1.available_add_ons(catalogue[0]).fetch())
    assert fetched.friendly_name == add_ons[0].friendly_name
    assert fetched.configuration_schema["type"] == "object"
    exts = await run(lambda: v1.available_add_ons(catalogue[7]).extensions.list(page_size=2))
    assert len(exts) == 5
    ext = await run(lambda: v1.available_add_ons(catalogue[7]).extensions(exts[1].sid).fetch())
    assert ext.unique_name == exts[1].unique_name and ext.available_add_on_sid == catalogue[7]


async def test_installed_add_on_lifecycle(client: Client, catalogue: list[str]) -> None:
    installed = client.marketplace.v1.installed_add_ons
    created = await run(
        lambda: installed.create(
            available_add_on_sid=catalogue[0],
            accept_terms_of_service=True,
            configuration={"bad_words": True},
            unique_name="transcribe",
        )
    )
    assert created.sid.startswith("XE") and created.configuration["bad_words"] is True
    assert (
        created.date_created.year >= 2024
    )  # parsed: the date format is the one the client expects
    assert [i.sid for i in await run(lambda: installed.list())] == [created.sid]
    fetched = await run(lambda: installed(created.sid).fetch())
    assert fetched.unique_name == "transcribe"
    updated = await run(
        lambda: installed(created.sid).update(
            configuration={"bad_words": False}, unique_name="renamed"
        )
    )
    assert updated.unique_name == "renamed" and updated.configuration["bad_words"] is False

    exts = await run(lambda: installed(created.sid).extensions.list())
    assert len(exts) == 4 and not any(e.enabled for e in exts)
    one = await run(lambda: installed(created.sid).extensions(exts[0].sid).fetch())
    assert one.enabled is False
    enabled = await run(lambda: installed(created.sid).extensions(exts[0].sid).update(enabled=True))
    assert enabled.enabled is True

    assert await run(lambda: installed(created.sid).delete()) is True
    assert await run(lambda: installed.list()) == []


async def test_list_pages_through_next_page_url(client: Client, catalogue: list[str]) -> None:
    installed = client.marketplace.v1.installed_add_ons
    sids = []
    for sid in catalogue[:5]:
        item = await run(
            lambda sid=sid: installed.create(available_add_on_sid=sid, accept_terms_of_service=True)
        )
        sids.append(item.sid)
    assert [i.sid for i in await run(lambda: installed.list(page_size=2))] == sids

    def count_pages() -> list[int]:
        sizes, page = [], installed.page(page_size=2)
        while page is not None:
            sizes.append(len(list(page)))
            page = page.next_page()
        return sizes

    assert await run(count_pages) == [2, 2, 1]
    assert [i.sid for i in await run(lambda: installed.list(limit=3, page_size=1))] == sids[:3]


async def test_errors_raise_twilio_rest_exception(client: Client, catalogue: list[str]) -> None:
    installed = client.marketplace.v1.installed_add_ons
    unknown = "XE" + "0" * 32
    with pytest.raises(TwilioRestException) as info:
        await run(lambda: installed(unknown).fetch())
    assert (info.value.status, info.value.code) == (404, 20404)
    assert unknown in info.value.msg

    await run(
        lambda: installed.create(
            available_add_on_sid=catalogue[0], accept_terms_of_service=True, unique_name="x"
        )
    )
    with pytest.raises(TwilioRestException) as info:
        await run(
            lambda: installed.create(
                available_add_on_sid=catalogue[1], accept_terms_of_service=True, unique_name="x"
            )
        )
    assert (info.value.status, info.value.code) == (409, 20409)

    with pytest.raises(TwilioRestException) as info:
        await run(
            lambda: installed.create(
                available_add_on_sid=catalogue[0],
                accept_terms_of_service=True,
                configuration={"bad_words": "no"},
            )
        )
    assert (info.value.status, info.value.code) == (400, 20001)

    with pytest.raises(TwilioRestException) as info:
        await run(
            lambda: installed.create(
                available_add_on_sid=catalogue[0], accept_terms_of_service=False
            )
        )
    assert info.value.status == 400


async def test_usage_and_referral_conversion(client: Client, catalogue: list[str]) -> None:
    from twilio.rest.marketplace.v1.installed_add_on.installed_add_on_usage import (
        InstalledAddOnUsageList,
    )
    from twilio.rest.marketplace.v1.referral_conversion import ReferralConversionList

    v1 = client.marketplace.v1
    item = await run(
        lambda: v1.installed_add_ons.create(
            available_add_on_sid=catalogue[2], accept_terms_of_service=True
        )
    )
    bi = "BI" + uuid.uuid4().hex
    usage_list = InstalledAddOnUsageList
    billable = usage_list.MarketplaceV1InstalledAddOnInstalledAddOnUsageBillableItems(
        {"sid": bi, "quantity": 1.5}
    )
    usage = usage_list.MarketplaceV1InstalledAddOnInstalledAddOnUsage(
        {"billable_items": [billable]}
    )
    result: Any = await run(lambda: v1.installed_add_ons(item.sid).usage.create(usage))
    assert result.total_submitted == 1.5
    referred = new_account()
    request = ReferralConversionList.CreateReferralConversionRequest(
        {"referral_account_sid": referred}
    )
    converted = await run(lambda: v1.referral_conversion.create(request))
    assert converted.converted_account_sid == referred


async def test_assigned_add_ons_2010(client: Client, catalogue: list[str]) -> None:
    item = await run(
        lambda: client.marketplace.v1.installed_add_ons.create(
            available_add_on_sid=catalogue[7], accept_terms_of_service=True
        )
    )
    number = "PN" + uuid.uuid4().hex
    account_sid = client.account_sid
    assigned_list = (
        client.api.v2010.accounts(account_sid).incoming_phone_numbers(number).assigned_add_ons
    )
    assigned = await run(lambda: assigned_list.create(installed_add_on_sid=item.sid))
    assert assigned.sid == item.sid and assigned.resource_sid == number
    assert assigned.date_created.year >= 2024  # RFC 2822 parsed by the client
    assert [a.sid for a in await run(lambda: assigned_list.list())] == [item.sid]
    assert (await run(lambda: assigned_list(item.sid).fetch())).unique_name == item.unique_name
    exts = await run(lambda: assigned_list(item.sid).extensions.list(page_size=2))
    assert len(exts) == 5
    ext = await run(lambda: assigned_list(item.sid).extensions(exts[0].sid).fetch())
    assert ext.unique_name == exts[0].unique_name
    assert await run(lambda: assigned_list(item.sid).delete()) is True
    assert await run(lambda: assigned_list.list()) == []
