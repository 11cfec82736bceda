"""v1-only operations: billing Usage, ReferralConversion and Listings."""

from __future__ import annotations

import pytest

from .conftest import Caller, new_account

BI = "BI" + "a" * 32
BI2 = "BI" + "b" * 32
PUBLIC_LISTING = 0  # index of the seeded listing with no owner


async def test_usage_is_202_with_submitted_flags(caller: Caller, catalogue: list[str]) -> None:
    installed = await caller.install(catalogue[0])
    url = f"/v1/InstalledAddOns/{installed['sid']}/Usage"
    body = {"billable_items": [{"sid": BI, "quantity": 12.355}, {"sid": BI, "quantity": 44.02}]}
    reply = await caller.post(url, json=body)
    assert reply.status == 202
    assert reply.json == {
        "total_submitted": 44.02,
        "billable_items": [
            {"sid": BI, "quantity": 12.355, "submitted": False},
            {"sid": BI, "quantity": 44.02, "submitted": True},
        ],
    }
    mixed = await caller.post(
        url, json={"billable_items": [{"sid": BI2, "quantity": 2}, {"sid": "x", "quantity": 1}]}
    )
    assert mixed.json["total_submitted"] == 2
    assert [i["submitted"] for i in mixed.json["billable_items"]] == [True, False]
    empty = await caller.post(url, json={"billable_items": []})
    assert empty.status == 202 and empty.json["total_submitted"] == 0


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b"[]",
        b"{}",
        b'{"billable_items": {}}',
        b'{"billable_items": [{"sid": "BI1"}]}',
        b'{"billable_items": [{"quantity": 1}]}',
        b'{"billable_items": [{"sid": "BI1", "quantity": "1"}]}',
        b'{"billable_items": [{"sid": "BI1", "quantity": true}]}',
        b'{"billable_items": [7]}',
    ],
)
async def test_usage_rejects_bad_bodies(
    caller: Caller, catalogue: list[str], payload: bytes
) -> None:
    installed = await caller.install(catalogue[0])
    reply = await caller.post(
        f"/v1/InstalledAddOns/{installed['sid']}/Usage",
        data=payload,
        headers={"Content-Type": "application/json"},
    )
    assert reply.status == 400 and reply.json["code"] == 20001


async def test_usage_needs_an_installation_of_the_caller(
    caller: Caller, other: Caller, catalogue: list[str]
) -> None:
    installed = await caller.install(catalogue[0])
    body = {"billable_items": [{"sid": BI, "quantity": 1}]}
    assert (
        await other.post(f"/v1/InstalledAddOns/{installed['sid']}/Usage", json=body)
    ).status == 404
    assert (await caller.post(f"/v1/InstalledAddOns/XE{'0' * 32}/Usage", json=body)).status == 404


async def test_referral_conversion(caller: Caller) -> None:
    referred = new_account()
    first = await caller.post("/v1/ReferralConversion", json={"referral_account_sid": referred})
    assert first.status == 202 and first.json == {"converted_account_sid": referred}
    again = await caller.post("/v1/ReferralConversion", json={"referral_account_sid": referred})
    assert again.status == 200 and again.json == {"converted_account_sid": referred}


@pytest.mark.parametrize(
    "body", [{}, {"referral_account_sid": "AC123"}, {"referral_account_sid": 5}, []]
)
async def test_referral_conversion_rejects_bad_sids(caller: Caller, body: object) -> None:
    reply = await caller.post("/v1/ReferralConversion", json=body)
    assert reply.status == 400 and reply.json["code"] == 20001


async def test_listings_list_fetch_create_update(caller: Caller, other: Caller) -> None:
    listed = (await caller.get("/v1/Listings")).json
    assert set(listed) == {"listings"}  # no meta for this operation
    public = listed["listings"]
    assert len(public) == 1 and public[0]["module_info"]["name"] == "Acme Call Insights"
    fetched = await caller.get(public[0]["url"])
    assert fetched.json == public[0]
    assert fetched.json["url"] == f"{caller.origin}/v1/Listing/{public[0]['sid']}"

    created = await caller.post(
        "/v1/Listings",
        data={
            "ModuleInfo": '{"name": "Mine", "tagline": "Ours"}',
            "Configuration": '{"notification_configuration": {"callback_url": "https://example.com/cb"}}',
        },
    )
    assert created.status == 200
    mine = created.json
    assert mine["sid"].startswith("XB") and mine["module_info"]["name"] == "Mine"
    assert mine["pricing"] == {} and mine["support"] == {}
    assert len((await caller.get("/v1/Listings")).json["listings"]) == 2
    assert len((await other.get("/v1/Listings")).json["listings"]) == 1
    assert (await other.get(mine["url"])).status == 404

    updated = await caller.post(
        mine["url"], data={"Pricing": '{"body": "Free"}', "ModuleInfo": '{"name": "Mine 2"}'}
    )
    assert updated.status == 200
    assert updated.json["pricing"] == {"body": "Free"} and updated.json["module_info"] == {
        "name": "Mine 2"
    }
    unchanged = await caller.post(mine["url"], data={"Pricing": '{"body": "Free"}'})
    assert unchanged.status == 304 and unchanged.raw == b""
    bad = await caller.post(mine["url"], data={"Support": "nope"})
    assert bad.status == 400
    assert (await caller.get(f"/v1/Listing/XB{'0' * 32}")).status == 404
    assert (await caller.post("/v1/Listings", data={"ModuleInfo": "[]"})).status == 400
