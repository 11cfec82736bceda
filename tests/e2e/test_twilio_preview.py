"""The official twilio-python client (9.11.0), ``client.preview.marketplace``, through the gateway.

Covers all 12 preview operations, paging where every page goes through the gateway, and errors
raised as ``TwilioRestException`` with Twilio's status and code. ``client.marketplace.v1`` straight
against the simulator is covered by ``tests/simulator/test_twilio_client.py``.
"""

from __future__ import annotations

import socket
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.rest import Client

from gateway.app import create_app
from gateway.simulator import load_seed
from tests.conftest import make_config

from .conftest import Stack, new_account, new_client, run

pytestmark = pytest.mark.upstream

SEED = load_seed()
CATALOGUE = [a.sid for a in SEED.available_add_ons]
VOICEBASE = CATALOGUE[0]  # configuration_schema requires bad_words (boolean); 4 extensions
GOOGLE = CATALOGUE[7]  # 5 extensions


def _routes(lines: list[dict[str, Any]]) -> list[tuple[str, str, int]]:
    return [(line["route"], line["method"], line["status"]) for line in lines]


async def test_catalogue_operations(client: Client, stack: Stack) -> None:
    mark = stack.mark()
    available = client.preview.marketplace.available_add_ons
    add_ons = await run(lambda: available.list())
    assert [a.sid for a in add_ons] == CATALOGUE
    fetched = await run(lambda: available(VOICEBASE).fetch())
    assert fetched.friendly_name == SEED.available_add_ons[0].friendly_name
    assert fetched.configuration_schema["required"] == ["bad_words"]
    assert fetched.url == f"{stack.gateway_url}/marketplace/AvailableAddOns/{VOICEBASE}"
    assert fetched.links == {"extensions": f"{fetched.url}/Extensions"}
    exts = await run(lambda: available(GOOGLE).extensions.list())
    assert len(exts) == 5 and all(e.available_add_on_sid == GOOGLE for e in exts)
    one = await run(lambda: available(GOOGLE).extensions(exts[1].sid).fetch())
    assert (one.sid, one.unique_name) == (exts[1].sid, exts[1].unique_name)
    assert (
        one.url == f"{stack.gateway_url}/marketplace/AvailableAddOns/{GOOGLE}/Extensions/{one.sid}"
    )

    lines, received = stack.since(mark)
    assert _routes(lines) == [
        ("preview_available_add_ons", "GET", 200),
        ("preview_available_add_on", "GET", 200),
        ("preview_available_add_on_extensions", "GET", 200),
        ("preview_available_add_on_extension", "GET", 200),
    ]
    assert [r.path_qs.split("?")[0] for r in received] == [
        "/v1/AvailableAddOns",
        f"/v1/AvailableAddOns/{VOICEBASE}",
        f"/v1/AvailableAddOns/{GOOGLE}/Extensions",
        f"/v1/AvailableAddOns/{GOOGLE}/Extensions/{exts[1].sid}",
    ]
    stack.assert_all_via_gateway(mark)


def _assert_paged_via_gateway(
    stack: Stack, mark: tuple[int, int], route: str, gateway_path: str, pages: int
) -> None:
    """*pages* GETs of *route*, all answered by the gateway and each forwarded once."""
    lines, received = stack.since(mark)
    assert _routes(lines) == [(route, "GET", 200)] * pages
    # the access log names the path only (no query, so no PageToken); the query is checked
    # on the forwarded request, which carries it byte for byte
    assert [line["path"] for line in lines] == [gateway_path] * pages
    v1_path = "/v1/" + gateway_path.removeprefix("/marketplace/")
    forwarded = [urlsplit(r.path_qs) for r in received]
    assert [f.path for f in forwarded] == [v1_path] * pages
    assert forwarded[0].query == "PageSize=2"  # what the client asked for
    for page_number, parts in enumerate(forwarded[1:], start=1):  # next_page_url, verbatim
        query = parse_qs(parts.query)
        assert query["PageSize"] == ["2"] and query["Page"] == [str(page_number)]
        assert query["PageToken"][0].startswith("PT")
    stack.assert_all_via_gateway(mark)


async def test_list_pages_every_page_through_gateway(client: Client, stack: Stack) -> None:
    available = client.preview.marketplace.available_add_ons
    mark = stack.mark()
    assert [a.sid for a in await run(lambda: available.list(page_size=2))] == CATALOGUE
    _assert_paged_via_gateway(
        stack, mark, "preview_available_add_ons", "/marketplace/AvailableAddOns", 4
    )

    mark = stack.mark()
    streamed = await run(lambda: [a.sid for a in available.stream(page_size=2)])
    assert streamed == CATALOGUE
    _assert_paged_via_gateway(
        stack, mark, "preview_available_add_ons", "/marketplace/AvailableAddOns", 4
    )

    def page_sizes() -> list[int]:
        sizes, page = [], available.page(page_size=3)
        while page is not None:
            sizes.append(len(list(page)))
            page = page.next_page()
        return sizes

    mark = stack.mark()
    assert await run(page_sizes) == [3, 3, 2]
    stack.assert_all_via_gateway(mark)

    mark = stack.mark()
    exts = await run(lambda: available(GOOGLE).extensions.list(page_size=2))
    assert len(exts) == 5
    _assert_paged_via_gateway(
        stack,
        mark,
        "preview_available_add_on_extensions",
        f"/marketplace/AvailableAddOns/{GOOGLE}/Extensions",
        3,
    )


async def test_installed_lists_page_through_gateway(client: Client, stack: Stack) -> None:
    installed = client.preview.marketplace.installed_add_ons
    sids = []
    for sid in CATALOGUE[1:6]:  # none of these requires a configuration
        item = await run(
            lambda sid=sid: installed.create(available_add_on_sid=sid, accept_terms_of_service=True)
        )
        sids.append(item.sid)
    mark = stack.mark()
    assert [i.sid for i in await run(lambda: installed.list(page_size=2))] == sids
    _assert_paged_via_gateway(
        stack, mark, "preview_installed_add_ons", "/marketplace/InstalledAddOns", 3
    )

    google = await run(
        lambda: installed.create(
            available_add_on_sid=GOOGLE,
            accept_terms_of_service=True,
            configuration={"language_code": "en-US"},
        )
    )
    mark = stack.mark()
    exts = await run(lambda: [e.sid for e in installed(google.sid).extensions.stream(page_size=2)])
    assert len(exts) == 5
    _assert_paged_via_gateway(
        stack,
        mark,
        "preview_installed_add_on_extensions",
        f"/marketplace/InstalledAddOns/{google.sid}/Extensions",
        3,
    )


async def test_installed_add_on_lifecycle(client: Client, stack: Stack) -> None:
    mark = stack.mark()
    installed = client.preview.marketplace.installed_add_ons
    created = await run(
        lambda: installed.create(
            available_add_on_sid=VOICEBASE,
            accept_terms_of_service=True,
            configuration={"bad_words": True},
            unique_name="transcribe",
        )
    )
    assert created.sid.startswith("XE") and created.account_sid == client.account_sid
    assert created.configuration["bad_words"] is True
    assert created.date_created.year >= 2024  # parsed: ISO 8601 with Z kept by the gateway
    assert created.url == f"{stack.gateway_url}/marketplace/InstalledAddOns/{created.sid}"
    assert created.links == {
        "extensions": f"{created.url}/Extensions",
        "available_add_on": f"{stack.gateway_url}/marketplace/AvailableAddOns/{VOICEBASE}",
        # v1's usage link has no preview twin: it leads through the gateway's v1 route
        "usage": f"{stack.gateway_url}/v1/InstalledAddOns/{created.sid}/Usage",
    }
    assert [i.sid for i in await run(lambda: installed.list())] == [created.sid]
    fetched = await run(lambda: installed(created.sid).fetch())
    assert (fetched.unique_name, fetched.configuration["bad_words"]) == ("transcribe", True)
    updated = await run(
        lambda: installed(created.sid).update(
            configuration={"bad_words": False}, unique_name="renamed"
        )
    )
    assert updated.unique_name == "renamed" and updated.configuration["bad_words"] is False

    extensions = installed(created.sid).extensions
    exts = await run(lambda: extensions.list())
    assert len(exts) == 4 and not any(e.enabled for e in exts)
    assert all(e.installed_add_on_sid == created.sid for e in exts)
    one = await run(lambda: extensions(exts[0].sid).fetch())
    assert one.enabled is False and one.unique_name == exts[0].unique_name
    on = await run(lambda: extensions(exts[0].sid).update(enabled=True))
    assert on.enabled is True
    assert (await run(lambda: extensions(exts[0].sid).fetch())).enabled is True
    off = await run(lambda: extensions(exts[0].sid).update(enabled=False))
    assert off.enabled is False

    assert await run(lambda: installed(created.sid).delete()) is True
    assert await run(lambda: installed.list()) == []

    lines, received = stack.since(mark)
    assert _routes(lines) == [
        ("preview_installed_add_ons", "POST", 201),
        ("preview_installed_add_ons", "GET", 200),
        ("preview_installed_add_on", "GET", 200),
        ("preview_installed_add_on", "POST", 200),
        ("preview_installed_add_on_extensions", "GET", 200),
        ("preview_installed_add_on_extension", "GET", 200),
        ("preview_installed_add_on_extension", "POST", 200),
        ("preview_installed_add_on_extension", "GET", 200),
        ("preview_installed_add_on_extension", "POST", 200),
        ("preview_installed_add_on", "DELETE", 204),  # exactly 204: <= 9.8.8 need it
        ("preview_installed_add_ons", "GET", 200),
    ]
    # 9.x sends lowercase booleans; the gateway forwards the form bytes untouched
    assert b"AcceptTermsOfService=true" in received[0].body
    assert received[6].body == b"Enabled=true" and received[8].body == b"Enabled=false"
    stack.assert_all_via_gateway(mark)


async def test_delete_answers_exactly_204(client: Client, stack: Stack) -> None:
    installed = client.preview.marketplace.installed_add_ons
    item = await run(
        lambda: installed.create(available_add_on_sid=CATALOGUE[2], accept_terms_of_service=True)
    )
    answer = await run(lambda: installed(item.sid).delete_with_http_info())
    assert (answer.status_code, answer.data) == (204, True)
    assert stack.access_lines()[-1]["status"] == 204


async def test_errors_raise_twilio_rest_exception(client: Client, stack: Stack) -> None:
    mark = stack.mark()
    marketplace = client.preview.marketplace
    unknown = "XE" + "0" * 32
    with pytest.raises(TwilioRestException) as info:
        await run(lambda: marketplace.installed_add_ons(unknown).fetch())
    assert (info.value.status, info.value.code) == (404, 20404)
    assert unknown in info.value.msg
    assert info.value.uri == f"/InstalledAddOns/{unknown}"

    with pytest.raises(TwilioRestException) as info:
        await run(lambda: marketplace.available_add_ons("XB" + "0" * 32).fetch())
    assert (info.value.status, info.value.code) == (404, 20404)

    installed = marketplace.installed_add_ons
    await run(
        lambda: installed.create(
            available_add_on_sid=CATALOGUE[1], accept_terms_of_service=True, unique_name="dup"
        )
    )
    with pytest.raises(TwilioRestException) as info:
        await run(
            lambda: installed.create(
                available_add_on_sid=CATALOGUE[2], accept_terms_of_service=True, unique_name="dup"
            )
        )
    assert (info.value.status, info.value.code) == (409, 20409)

    with pytest.raises(TwilioRestException) as info:  # bad_words must be a boolean
        await run(
            lambda: installed.create(
                available_add_on_sid=VOICEBASE,
                accept_terms_of_service=True,
                configuration={"bad_words": "no"},
            )
        )
    assert (info.value.status, info.value.code) == (400, 20001)

    with pytest.raises(TwilioRestException) as info:  # unknown configuration key
        await run(
            lambda: installed.create(
                available_add_on_sid=CATALOGUE[1],
                accept_terms_of_service=True,
                configuration={"no_such_option": 1},
            )
        )
    assert (info.value.status, info.value.code) == (400, 20001)

    with pytest.raises(TwilioRestException) as info:
        await run(
            lambda: installed.create(
                available_add_on_sid=CATALOGUE[1], accept_terms_of_service=False
            )
        )
    assert info.value.status == 400

    lines, _ = stack.since(mark)
    assert [line["status"] for line in lines] == [404, 404, 201, 409, 400, 400, 400]
    assert all(line["upstream_status"] == line["status"] for line in lines)
    stack.assert_all_via_gateway(mark)


async def test_gateway_own_errors_are_twilio_rest_exceptions(
    aiohttp_server: Any, no_proxy: None
) -> None:
    """An unreachable upstream: the gateway's 502 still parses as Twilio's error, not 9.10+'s
    ``TwilioServiceException`` (no RFC 9457 ``type``/``title``)."""
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{probe.getsockname()[1]}"
    server = await aiohttp_server(create_app(make_config(closed)))
    client = new_client(new_account())
    client.preview.base_url = str(server.make_url("")).rstrip("/")
    # lists raise the base TwilioException "Unable to fetch page" on any non-200 (section 3.3)
    with pytest.raises(TwilioException, match="Unable to fetch page"):
        await run(lambda: client.preview.marketplace.available_add_ons.list())
    with pytest.raises(TwilioRestException) as info:
        await run(lambda: client.preview.marketplace.installed_add_ons("XE" + "1" * 32).fetch())
    assert type(info.value) is TwilioRestException
    assert (info.value.status, info.value.code) == (502, 88001)
