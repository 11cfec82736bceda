"""The 2010 IncomingPhoneNumber AssignedAddOns API through the gateway (``api`` upstream).

Assign, list (paged), fetch, extensions list/fetch, unassign (204), and the preview DELETE of an
installed add-on that is still assigned to a number answering 400. Raw responses are checked
against the 2010 spec with ``tests/simulator/spec_check.validate_response``; the official client
(``client.api`` pointed at the gateway) runs the same flow.
"""

from __future__ import annotations

import uuid
from typing import Any

import aiohttp
import orjson
import pytest
from twilio.base.exceptions import TwilioRestException
from twilio.rest import Client

from gateway.simulator import load_seed
from tests.simulator.spec_check import validate_response

from .conftest import Stack, basic, check_preview_response, new_account, run

pytestmark = pytest.mark.upstream

SEED = load_seed()
CATALOGUE = [a.sid for a in SEED.available_add_ons]
TIMEOUT = aiohttp.ClientTimeout(total=10)


def new_number() -> str:
    return "PN" + uuid.uuid4().hex


class Raw:
    """Raw calls to the gateway as one account; 2010 answers checked against the 2010 spec."""

    def __init__(self, session: aiohttp.ClientSession, stack: Stack, account: str) -> None:
        self.session, self.stack, self.account = session, stack, account

    async def call(
        self, method: str, path: str, form: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        headers = {"Authorization": basic(self.account)}
        url = self.stack.gateway_url + path
        async with self.session.request(method, url, data=form, headers=headers) as response:
            raw = await response.read()
            content_type = response.content_type if raw else ""
            if path.startswith("/marketplace/"):
                check_preview_response(
                    method, url, response.status, content_type, raw, self.stack.gateway_url
                )
            else:
                validate_response(
                    method,
                    response.url.path,
                    response.url.query_string,
                    response.status,
                    content_type,
                    raw,
                )
            return response.status, orjson.loads(raw) if raw else None

    def base(self, number: str) -> str:
        return f"/2010-04-01/Accounts/{self.account}/IncomingPhoneNumbers/{number}/AssignedAddOns"

    async def install(self, available_sid: str) -> str:
        status, body = await self.call(
            "POST",
            "/marketplace/InstalledAddOns",
            {"AvailableAddOnSid": available_sid, "AcceptTermsOfService": "True"},
        )
        assert status == 201, body
        sid: str = body["sid"]
        return sid


async def test_assigned_flow_raw(stack: Stack) -> None:
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        raw = Raw(session, stack, new_account())
        installed = [await raw.install(sid) for sid in (CATALOGUE[7], CATALOGUE[1], CATALOGUE[2])]
        number = new_number()
        base = raw.base(number)

        status, assigned = await raw.call(
            "POST", f"{base}.json", {"InstalledAddOnSid": installed[0]}
        )
        assert status == 201, assigned
        assert (assigned["sid"], assigned["resource_sid"]) == (installed[0], number)
        # 2010 URIs are relative and must come back untouched (no host to rewrite)
        assert assigned["uri"] == f"{base}/{installed[0]}.json"
        assert assigned["subresource_uris"] == {
            "extensions": f"{base}/{installed[0]}/Extensions.json"
        }
        for sid in installed[1:]:
            assert (await raw.call("POST", f"{base}.json", {"InstalledAddOnSid": sid}))[0] == 201

        # list, one to a page, following next_page_uri (relative, made absolute on the gateway)
        status, page = await raw.call("GET", f"{base}.json?PageSize=1")
        listed = [a["sid"] for a in page["assigned_add_ons"]]
        while page["next_page_uri"]:
            assert page["next_page_uri"].startswith(f"{base}.json?")
            status, page = await raw.call("GET", page["next_page_uri"])
            assert status == 200
            listed.extend(a["sid"] for a in page["assigned_add_ons"])
        assert sorted(listed) == sorted(installed)

        status, fetched = await raw.call("GET", f"{base}/{installed[0]}.json")
        assert status == 200 and fetched["sid"] == installed[0]
        status, exts = await raw.call("GET", f"{base}/{installed[0]}/Extensions.json?PageSize=2")
        assert status == 200 and len(exts["extensions"]) == 2 and exts["next_page_uri"]
        ext_sid = exts["extensions"][1]["sid"]
        status, ext = await raw.call("GET", f"{base}/{installed[0]}/Extensions/{ext_sid}.json")
        assert status == 200
        assert (ext["sid"], ext["assigned_add_on_sid"], ext["resource_sid"]) == (
            ext_sid,
            installed[0],
            number,
        )

        # uninstalling through the preview route is refused while the number has it
        status, error = await raw.call("DELETE", f"/marketplace/InstalledAddOns/{installed[0]}")
        assert status == 400, error
        assert number in error["message"]
        assert (await raw.call("GET", f"/marketplace/InstalledAddOns/{installed[0]}"))[0] == 200

        # unassign: 204, empty; then the uninstall goes through
        assert await raw.call("DELETE", f"{base}/{installed[0]}.json") == (204, None)
        assert (await raw.call("GET", f"{base}/{installed[0]}.json"))[0] == 404
        assert await raw.call("DELETE", f"/marketplace/InstalledAddOns/{installed[0]}") == (
            204,
            None,
        )

    api_lines = [line for line in stack.access_lines() if line["path"].startswith("/2010-04-01/")]
    assert api_lines and not any(line["deprecated"] for line in api_lines)
    stack.assert_all_via_gateway()


async def test_seeded_assignment_blocks_uninstall(stack: Stack) -> None:
    demo = SEED.installed_add_ons[0]
    number = demo.assigned_to[0]
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        raw = Raw(session, stack, demo.account_sid)
        status, error = await raw.call("DELETE", f"/marketplace/InstalledAddOns/{demo.sid}")
        assert (status, error["status"]) == (400, 400)
        status, listed = await raw.call("GET", f"{raw.base(number)}.json")
        assert [a["sid"] for a in listed["assigned_add_ons"]] == [demo.sid]
    stack.assert_all_via_gateway()


async def test_assigned_flow_twilio_client(client: Client, stack: Stack) -> None:
    """The official client: ``client.preview`` installs, ``client.api`` assigns, via the gateway."""
    marketplace = client.preview.marketplace
    item = await run(
        lambda: marketplace.installed_add_ons.create(
            available_add_on_sid=CATALOGUE[7],
            accept_terms_of_service=True,
            configuration={"language_code": "en-US"},
        )
    )
    number = new_number()
    assigned_list = (
        client.api.v2010.accounts(client.account_sid)
        .incoming_phone_numbers(number)
        .assigned_add_ons
    )
    assigned = await run(lambda: assigned_list.create(installed_add_on_sid=item.sid))
    assert (assigned.sid, assigned.resource_sid) == (item.sid, number)
    assert assigned.date_created.year >= 2024  # RFC 2822 parsed by the client
    assert [a.sid for a in await run(lambda: assigned_list.list(page_size=1))] == [item.sid]
    fetched = await run(lambda: assigned_list(item.sid).fetch())
    assert fetched.unique_name == item.unique_name

    mark = stack.mark()
    exts = await run(lambda: assigned_list(item.sid).extensions.list(page_size=2))
    assert len(exts) == 5
    lines, _ = stack.since(mark)
    assert len(lines) == 3  # three pages, each one through the gateway
    ext = await run(lambda: assigned_list(item.sid).extensions(exts[4].sid).fetch())
    assert ext.unique_name == exts[4].unique_name and ext.enabled is False

    with pytest.raises(TwilioRestException) as info:
        await run(lambda: marketplace.installed_add_ons(item.sid).delete())
    assert info.value.status == 400

    assert await run(lambda: assigned_list(item.sid).delete()) is True
    assert stack.access_lines()[-1]["status"] == 204
    assert await run(lambda: assigned_list.list()) == []
    assert await run(lambda: marketplace.installed_add_ons(item.sid).delete()) is True
    stack.assert_all_via_gateway()
