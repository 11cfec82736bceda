"""Marketplace v1 behaviour: catalogue, installs, extensions, errors, account scoping."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from gateway.simulator import Seed, create_simulator_app

from .conftest import Caller, SimClient, new_account

XE_UNKNOWN = "XE" + "0" * 32


async def test_catalogue_has_realistic_add_ons(caller: Caller) -> None:
    reply = await caller.get("/v1/AvailableAddOns")
    assert reply.status == 200
    add_ons = reply.json["available_add_ons"]
    assert len(add_ons) >= 6
    names = {
        e["unique_name"]
        for a in add_ons
        for e in (await caller.get(a["links"]["extensions"])).json["extensions"]
    }
    assert names == {
        "lookup-api",
        "sms-incoming",
        "taskrouter-create-task",
        "voice-incoming",
        "recording-verb",
        "recording-api",
        "recording-conference",
        "recording-dial",
    }
    for add_on in add_ons:
        assert add_on["configuration_schema"]["type"] == "object"
        assert add_on["url"] == f"{caller.origin}/v1/AvailableAddOns/{add_on['sid']}"


async def test_fetch_available_and_extension(caller: Caller, catalogue: list[str]) -> None:
    add_on = (await caller.get(f"/v1/AvailableAddOns/{catalogue[0]}")).json
    exts = (await caller.get(add_on["links"]["extensions"])).json["extensions"]
    one = await caller.get(exts[0]["url"])
    assert one.status == 200
    assert one.json == exts[0]
    assert one.json["available_add_on_sid"] == catalogue[0]


async def test_create_installed_add_on(caller: Caller, catalogue: list[str]) -> None:
    body = await caller.install(catalogue[0], Configuration='{"bad_words": true}', UniqueName="vb")
    assert body["sid"].startswith("XE") and len(body["sid"]) == 34
    assert body["account_sid"] == caller.account
    assert body["unique_name"] == "vb"
    assert body["configuration"]["bad_words"] is True
    assert body["date_created"].endswith("Z") and len(body["date_created"]) == 20
    assert body["links"] == {
        "extensions": f"{caller.origin}/v1/InstalledAddOns/{body['sid']}/Extensions",
        "available_add_on": f"{caller.origin}/v1/AvailableAddOns/{catalogue[0]}",
        "usage": f"{caller.origin}/v1/InstalledAddOns/{body['sid']}/Usage",
    }
    fetched = await caller.get(body["url"])
    assert fetched.json == body


async def test_create_without_configuration_uses_schema_defaults(
    caller: Caller, catalogue: list[str]
) -> None:
    body = await caller.install(catalogue[1])
    assert body["configuration"] == {"include_address": False, "detail_level": "standard"}
    assert body["unique_name"] == "whitepages_pro_caller_identity"
    again = await caller.install(catalogue[1])
    assert again["unique_name"] == "whitepages_pro_caller_identity_1"


@pytest.mark.parametrize("accept", ["true", "True", "TRUE"])
async def test_accept_terms_boolean_spellings(
    caller: Caller, catalogue: list[str], accept: str
) -> None:
    reply = await caller.post(
        "/v1/InstalledAddOns",
        data={"AvailableAddOnSid": catalogue[2], "AcceptTermsOfService": accept},
    )
    assert reply.status == 201


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"AvailableAddOnSid": None}, "AvailableAddOnSid"),
        ({"AvailableAddOnSid": "XBnope"}, "AvailableAddOnSid"),
        ({"AcceptTermsOfService": None}, "AcceptTermsOfService"),
        ({"AcceptTermsOfService": "false"}, "AcceptTermsOfService"),
        ({"AcceptTermsOfService": "yes"}, "AcceptTermsOfService"),
        ({"Configuration": "{not json"}, "valid JSON"),
        ({"Configuration": "[1, 2]"}, "JSON object"),
        ({"Configuration": '{"bad_words": "yes"}'}, "Configuration.bad_words: expected boolean"),
        ({"Configuration": '{"bad_words": true, "x": 1}'}, "Configuration.x"),
        ({"Configuration": '{"callback_method": "PUT"}'}, "one of"),
        ({"UniqueName": ""}, "UniqueName"),
    ],
)
async def test_create_rejects_bad_input(
    caller: Caller, catalogue: list[str], overrides: dict[str, str | None], fragment: str
) -> None:
    form = {"AvailableAddOnSid": catalogue[0], "AcceptTermsOfService": "true"}
    form.update({k: v for k, v in overrides.items() if v is not None})
    for key in [k for k, v in overrides.items() if v is None]:
        del form[key]
    reply = await caller.post("/v1/InstalledAddOns", data=form)
    assert reply.status == 400
    assert reply.json["code"] == 20001
    assert fragment in reply.json["message"]
    assert (await caller.get("/v1/InstalledAddOns")).json["installed_add_ons"] == []


async def test_create_unknown_available_add_on_is_404(caller: Caller) -> None:
    xb = "XB" + "f" * 32
    reply = await caller.post(
        "/v1/InstalledAddOns", data={"AvailableAddOnSid": xb, "AcceptTermsOfService": "true"}
    )
    assert reply.status == 404
    assert reply.json["code"] == 20404
    assert reply.json["message"] == f"The requested resource /v1/AvailableAddOns/{xb} was not found"


async def test_duplicate_unique_name_is_409(
    caller: Caller, other: Caller, catalogue: list[str]
) -> None:
    await caller.install(catalogue[0], UniqueName="dup")
    reply = await caller.post(
        "/v1/InstalledAddOns",
        data={
            "AvailableAddOnSid": catalogue[1],
            "AcceptTermsOfService": "true",
            "UniqueName": "dup",
        },
    )
    assert reply.status == 409
    assert reply.json["status"] == 409
    await other.install(catalogue[0], UniqueName="dup")  # unique per account only


async def test_update_installed_add_on(caller: Caller, catalogue: list[str]) -> None:
    body = await caller.install(catalogue[0], UniqueName="before")
    taken = await caller.install(catalogue[1], UniqueName="taken")
    reply = await caller.post(
        body["url"], data={"Configuration": '{"bad_words": true}', "UniqueName": "after"}
    )
    assert reply.status == 200
    assert reply.json["unique_name"] == "after"
    assert reply.json["configuration"]["bad_words"] is True
    assert (await caller.post(body["url"], data={"UniqueName": "after"})).status == 200  # own name
    conflict = await caller.post(body["url"], data={"UniqueName": taken["unique_name"]})
    assert conflict.status == 409
    bad = await caller.post(body["url"], data={"Configuration": '{"bad_words": 3}'})
    assert bad.status == 400 and "Configuration.bad_words" in bad.json["message"]
    assert (await caller.get(body["url"])).json["unique_name"] == "after"


async def test_delete_installed_add_on(caller: Caller, catalogue: list[str]) -> None:
    body = await caller.install(catalogue[0])
    reply = await caller.delete(body["url"])
    assert reply.status == 204
    assert reply.raw == b""
    gone = await caller.get(body["url"])
    assert gone.status == 404
    assert (
        gone.json["message"]
        == f"The requested resource /v1/InstalledAddOns/{body['sid']} was not found"
    )
    assert (await caller.delete(body["url"])).status == 404


@pytest.mark.parametrize(
    "path",
    [
        f"/v1/InstalledAddOns/{XE_UNKNOWN}",
        "/v1/InstalledAddOns/XEnot-a-sid",
        "/v1/InstalledAddOns/some_unique_name",
        f"/v1/InstalledAddOns/{XE_UNKNOWN}/Extensions",
        f"/v1/InstalledAddOns/{XE_UNKNOWN}/Extensions/XF{'0' * 32}",
        f"/v1/AvailableAddOns/XB{'0' * 32}",
        "/v1/AvailableAddOns/XB123",
        f"/v1/AvailableAddOns/XB{'0' * 32}/Extensions",
    ],
)
async def test_unknown_or_malformed_sids_are_404(caller: Caller, path: str) -> None:
    reply = await caller.get(path)
    assert reply.status == 404
    assert reply.json["code"] == 20404
    assert reply.json["message"] == f"The requested resource {path} was not found"


async def test_unknown_extension_sid_is_404(caller: Caller, catalogue: list[str]) -> None:
    body = await caller.install(catalogue[0])
    for base in (body["links"]["extensions"], f"/v1/AvailableAddOns/{catalogue[0]}/Extensions"):
        reply = await caller.get(f"{base}/XF{'9' * 32}")
        assert reply.status == 404 and reply.json["code"] == 20404


async def test_extensions_start_disabled_and_toggle(caller: Caller, catalogue: list[str]) -> None:
    body = await caller.install(catalogue[0])
    available = (await caller.get(f"/v1/AvailableAddOns/{catalogue[0]}/Extensions")).json[
        "extensions"
    ]
    exts = (await caller.get(body["links"]["extensions"])).json["extensions"]
    assert [e["unique_name"] for e in exts] == [e["unique_name"] for e in available]
    assert all(e["enabled"] is False for e in exts)
    assert all(e["installed_add_on_sid"] == body["sid"] for e in exts)
    url = exts[0]["url"]
    on = await caller.post(url, data={"Enabled": "True"})
    assert on.status == 200 and on.json["enabled"] is True
    assert (await caller.get(url)).json["enabled"] is True
    off = await caller.post(url, data={"Enabled": "false"})
    assert off.json["enabled"] is False
    on_again = await caller.post(url, data={"Enabled": "true"})
    assert on_again.json["enabled"] is True
    for data in ({}, {"Enabled": "1"}, {"Enabled": "on"}):
        bad = await caller.post(url, data=data)
        assert bad.status == 400 and "Enabled" in bad.json["message"]


async def test_accounts_are_isolated(caller: Caller, other: Caller, catalogue: list[str]) -> None:
    body = await caller.install(catalogue[0])
    assert (await other.get(body["url"])).status == 404
    assert (await other.post(body["url"], data={"UniqueName": "steal"})).status == 404
    assert (await other.delete(body["url"])).status == 404
    assert (await other.get(body["links"]["extensions"])).status == 404
    assert (await other.get("/v1/InstalledAddOns")).json["installed_add_ons"] == []
    mine = (await caller.get("/v1/InstalledAddOns")).json["installed_add_ons"]
    assert [i["sid"] for i in mine] == [body["sid"]]
    # The catalogue is global.
    assert (await other.get("/v1/AvailableAddOns")).json == (
        await caller.get("/v1/AvailableAddOns")
    ).json


async def test_url_base_is_used_for_v1_urls(
    aiohttp_client: Callable[..., Awaitable[SimClient]], default_seed: Seed, catalogue: list[str]
) -> None:
    client = await aiohttp_client(
        create_simulator_app(default_seed, url_base="https://marketplace.twilio.com/")
    )
    caller = Caller(client, new_account())
    body = await caller.install(catalogue[0])
    assert body["url"].startswith("https://marketplace.twilio.com/v1/InstalledAddOns/XE")
    meta = (await caller.get("/v1/AvailableAddOns?PageSize=2")).json["meta"]
    assert meta["next_page_url"].startswith("https://marketplace.twilio.com/v1/AvailableAddOns?")
