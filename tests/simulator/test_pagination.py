"""Twilio-style paging: meta links, PageToken round trips, parameter validation."""

from __future__ import annotations

import pytest

from gateway.simulator.errors import SimulatorError
from gateway.simulator.pagination import (
    decode_token,
    encode_token,
    paginate,
    parse_page_request,
)

from .conftest import Caller


@pytest.mark.parametrize("offset", [0, 1, 2, 9, 10, 99, 100, 12345])
@pytest.mark.parametrize("anchor", [None, "XE" + "ab" * 16])
def test_tokens_round_trip_and_always_end_in_padding(offset: int, anchor: str | None) -> None:
    token = encode_token(offset, anchor)
    assert token.startswith("PT") and token.endswith("=")
    assert decode_token(token) == (offset, anchor)


@pytest.mark.parametrize(
    "token", ["", "PT", "XX" + encode_token(1)[2:], "PT!!!", "PTbm9wZQ==", "PT" + "A" * 5]
)
def test_bad_tokens_are_21481(token: str) -> None:
    with pytest.raises(SimulatorError) as info:
        decode_token(token)
    assert (info.value.status, info.value.code) == (400, 21481)


def test_paginate_resumes_after_anchor_when_earlier_records_vanish() -> None:
    records = [f"XE{i:032x}" for i in range(6)]
    first = paginate(records, parse_page_request({"PageSize": "2"}), str)
    assert first.items == records[:2] and first.next_token is not None
    del records[0]  # deleted between page requests
    second = paginate(
        records, parse_page_request({"PageSize": "2", "PageToken": first.next_token}), str
    )
    assert second.items == [f"XE{2:032x}", f"XE{3:032x}"]


async def _walk(
    caller: Caller, url: str, key: str
) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    records, metas = [], []
    next_url: object = url
    while next_url is not None:
        assert isinstance(next_url, str)
        reply = await caller.get(next_url)
        assert reply.status == 200, reply.json
        records += reply.json[key]
        metas.append(reply.json["meta"])
        next_url = reply.json["meta"]["next_page_url"]
        assert len(metas) < 50
    return records, metas


@pytest.mark.parametrize("size", [1, 2, 3, 4, 5])
async def test_available_add_ons_paging(caller: Caller, size: int) -> None:
    everything = (await caller.get("/v1/AvailableAddOns")).json
    assert everything["meta"]["page_size"] == 50
    assert everything["meta"]["next_page_url"] is None
    records, metas = await _walk(
        caller, f"/v1/AvailableAddOns?PageSize={size}", "available_add_ons"
    )
    assert records == everything["available_add_ons"]
    assert len(metas) >= 2 and (size > 2 or len(metas) >= 3)
    base = f"{caller.origin}/v1/AvailableAddOns"
    for k, meta in enumerate(metas):
        assert (
            meta["page"] == k and meta["page_size"] == size and meta["key"] == "available_add_ons"
        )
        assert meta["first_page_url"] == f"{base}?PageSize={size}&Page=0"
        if k == 0:
            assert meta["previous_page_url"] is None
            assert meta["url"] == f"{base}?PageSize={size}&Page=0"
        else:
            assert meta["previous_page_url"].startswith(
                f"{base}?PageSize={size}&Page={k - 1}&PageToken=PT"
            )
            assert meta["url"] == metas[k - 1]["next_page_url"]
        if k < len(metas) - 1:
            assert meta["next_page_url"].startswith(
                f"{base}?PageSize={size}&Page={k + 1}&PageToken=PT"
            )
            assert meta["next_page_url"].endswith("=")
    assert metas[-1]["next_page_url"] is None


async def test_previous_page_url_goes_back(caller: Caller) -> None:
    records, metas = await _walk(caller, "/v1/AvailableAddOns?PageSize=2", "available_add_ons")
    back = await caller.get(metas[2]["previous_page_url"])  # type: ignore[arg-type]
    assert back.json["available_add_ons"] == records[2:4]
    assert back.json["meta"]["page"] == 1


async def test_installed_and_extension_lists_page(caller: Caller, catalogue: list[str]) -> None:
    installed = [await caller.install(sid) for sid in catalogue[:5]]
    records, metas = await _walk(caller, "/v1/InstalledAddOns?PageSize=2", "installed_add_ons")
    assert [r["sid"] for r in records] == [i["sid"] for i in installed]
    assert len(metas) == 3
    url = installed[0]["links"]["extensions"] + "?PageSize=1"
    exts, ext_metas = await _walk(caller, url, "extensions")
    assert len(exts) == len(ext_metas) == 4
    avail, _ = await _walk(
        caller, f"/v1/AvailableAddOns/{catalogue[7]}/Extensions?PageSize=2", "extensions"
    )
    assert len(avail) == 5


async def test_page_without_token_uses_page_index(caller: Caller) -> None:
    everything = (await caller.get("/v1/AvailableAddOns")).json["available_add_ons"]
    reply = await caller.get("/v1/AvailableAddOns?PageSize=3&Page=1")
    assert reply.json["available_add_ons"] == everything[3:6]
    assert reply.json["meta"]["page"] == 1
    beyond = await caller.get("/v1/AvailableAddOns?PageSize=3&Page=9")
    assert beyond.json["available_add_ons"] == [] and beyond.json["meta"]["next_page_url"] is None


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("PageSize=0", 20001),
        ("PageSize=1001", 20001),
        ("PageSize=-1", 20001),
        ("PageSize=abc", 20001),
        ("PageSize=2.5", 20001),
        ("Page=-1", 20001),
        ("Page=x", 20001),
        ("PageToken=garbage", 21481),
        ("PageToken=PTbm9wZQ==", 21481),
        ("PageSize=2&PageToken=", 21481),
    ],
)
async def test_bad_paging_parameters_are_400(caller: Caller, query: str, code: int) -> None:
    for path in ("/v1/AvailableAddOns", "/v1/InstalledAddOns"):
        reply = await caller.get(f"{path}?{query}")
        assert reply.status == 400
        assert reply.json["code"] == code


@pytest.mark.parametrize("size", [1, 1000])
async def test_page_size_bounds_are_inclusive(caller: Caller, size: int) -> None:
    reply = await caller.get(f"/v1/AvailableAddOns?PageSize={size}")
    assert reply.status == 200
    assert reply.json["meta"]["page_size"] == size
