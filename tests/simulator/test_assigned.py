"""2010 IncomingPhoneNumber AssignedAddOns: assign, list, fetch, extensions, unassign."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from .conftest import Caller


def new_number() -> str:
    return "PN" + uuid.uuid4().hex


def base(caller: Caller, number: str) -> str:
    return f"/2010-04-01/Accounts/{caller.account}/IncomingPhoneNumbers/{number}/AssignedAddOns"


async def _assign(caller: Caller, number: str, installed_sid: str) -> dict[str, Any]:
    reply = await caller.post(
        f"{base(caller, number)}.json", data={"InstalledAddOnSid": installed_sid}
    )
    assert reply.status == 201, reply.json
    result: dict[str, Any] = reply.json
    return result


async def test_assign_list_fetch_unassign(caller: Caller, catalogue: list[str]) -> None:
    installed = await caller.install(catalogue[0], Configuration='{"bad_words": true}')
    number = new_number()
    assigned = await _assign(caller, number, installed["sid"])
    uri = f"{base(caller, number)}/{installed['sid']}"
    assert assigned["sid"] == installed["sid"]
    assert assigned["account_sid"] == caller.account and assigned["resource_sid"] == number
    assert assigned["unique_name"] == installed["unique_name"]
    assert assigned["configuration"] == installed["configuration"]
    assert assigned["uri"] == f"{uri}.json"
    assert assigned["subresource_uris"] == {"extensions": f"{uri}/Extensions.json"}
    assert assigned["date_created"].endswith(" +0000") and assigned["date_created"][3:5] == ", "

    listed = (await caller.get(f"{base(caller, number)}.json")).json
    assert listed["assigned_add_ons"] == [assigned]
    assert (
        listed["page"] == 0
        and listed["page_size"] == 50
        and listed["start"] == 0
        and listed["end"] == 0
    )
    assert listed["uri"] == f"{base(caller, number)}.json?PageSize=50&Page=0"
    assert listed["first_page_uri"] == listed["uri"]
    assert listed["previous_page_uri"] is None and listed["next_page_uri"] is None

    assert (await caller.get(f"{uri}.json")).json == assigned
    by_name = await caller.get(f"{base(caller, number)}/{installed['unique_name']}.json")
    assert by_name.json == assigned  # the 2010 spec allows unique_name in place of the sid

    assert (await caller.delete(installed["url"])).status == 400  # still assigned
    gone = await caller.delete(f"{uri}.json")
    assert gone.status == 204 and gone.raw == b""
    assert (await caller.get(f"{uri}.json")).status == 404
    assert (await caller.delete(installed["url"])).status == 204


async def test_assigned_extensions_follow_installed_state(
    caller: Caller, catalogue: list[str]
) -> None:
    installed = await caller.install(catalogue[7])
    number = new_number()
    await _assign(caller, number, installed["sid"])
    exts_url = f"{base(caller, number)}/{installed['sid']}/Extensions.json"
    exts = (await caller.get(exts_url)).json["extensions"]
    assert len(exts) == 5 and not any(e["enabled"] for e in exts)
    first = exts[0]
    assert first["assigned_add_on_sid"] == installed["sid"] and first["resource_sid"] == number
    assert (
        first["uri"] == f"{base(caller, number)}/{installed['sid']}/Extensions/{first['sid']}.json"
    )
    await caller.post(
        f"{installed['links']['extensions']}/{first['sid']}", data={"Enabled": "true"}
    )
    fetched = await caller.get(first["uri"])
    assert fetched.status == 200 and fetched.json["enabled"] is True

    pages, uri = [], f"{exts_url}?PageSize=2"
    while uri:
        page = (await caller.get(uri)).json
        pages.append(page)
        uri = page["next_page_uri"]
    assert [len(p["extensions"]) for p in pages] == [2, 2, 1]
    assert [(p["start"], p["end"]) for p in pages] == [(0, 1), (2, 3), (4, 4)]
    assert "PageToken=PT" in pages[1]["uri"] and pages[1]["previous_page_uri"] is not None


@pytest.mark.parametrize("suffix", [f"/Extensions/XF{'0' * 32}.json", "/Extensions/nope.json"])
async def test_unknown_assigned_extension_is_404(
    caller: Caller, catalogue: list[str], suffix: str
) -> None:
    installed = await caller.install(catalogue[0])
    number = new_number()
    await _assign(caller, number, installed["sid"])
    reply = await caller.get(f"{base(caller, number)}/{installed['sid']}{suffix}")
    assert reply.status == 404 and reply.json["code"] == 20404


async def test_assign_errors(caller: Caller, other: Caller, catalogue: list[str]) -> None:
    installed = await caller.install(catalogue[0])
    number = new_number()
    url = f"{base(caller, number)}.json"
    missing = await caller.post(url, data={})
    assert missing.status == 400 and "InstalledAddOnSid" in missing.json["message"]
    malformed = await caller.post(url, data={"InstalledAddOnSid": "XE123"})
    assert malformed.status == 400
    unknown = await caller.post(url, data={"InstalledAddOnSid": "XE" + "0" * 32})
    assert unknown.status == 404
    foreign = await other.post(
        f"{base(other, number)}.json", data={"InstalledAddOnSid": installed["sid"]}
    )
    assert foreign.status == 404
    await _assign(caller, number, installed["sid"])
    again = await caller.post(url, data={"InstalledAddOnSid": installed["sid"]})
    assert again.status == 409
    await _assign(caller, new_number(), installed["sid"])  # one add-on, many numbers


async def test_path_account_must_be_the_authenticated_one(caller: Caller, other: Caller) -> None:
    number = new_number()
    reply = await other.get(f"{base(caller, number)}.json")
    assert reply.status == 401 and reply.json["code"] == 20003


async def test_malformed_phone_number_sid_is_404(caller: Caller) -> None:
    reply = await caller.get(
        f"/2010-04-01/Accounts/{caller.account}/IncomingPhoneNumbers/PN12/AssignedAddOns.json"
    )
    assert reply.status == 404


async def test_empty_number_lists_nothing(caller: Caller) -> None:
    listed = (await caller.get(f"{base(caller, new_number())}.json?PageSize=5")).json
    assert listed["assigned_add_ons"] == [] and listed["next_page_uri"] is None
    assert (listed["start"], listed["end"]) == (0, 0)


async def test_seeded_demo_assignment(caller: Caller) -> None:
    demo = Caller(caller.client, "AC" + "0" * 31 + "1")
    installed = (await demo.get("/v1/InstalledAddOns")).json["installed_add_ons"]
    assert [i["unique_name"] for i in installed] == ["voicebase_high_accuracy_transcription"]
    assert installed[0]["date_created"] == "2016-04-07T23:52:28Z"
    listed = (await demo.get(f"{base(demo, 'PN' + '0' * 31 + '1')}.json")).json
    assert [a["sid"] for a in listed["assigned_add_ons"]] == [installed[0]["sid"]]
    exts = (await demo.get(installed[0]["links"]["extensions"])).json["extensions"]
    assert {e["unique_name"]: e["enabled"] for e in exts}["recording-verb"] is True
