"""A legacy Preview Marketplace session in raw HTTP, as twilio-python 6.x-8.x sends it.

Form bodies carry ``True``/``False`` (Python bools passed raw) and ``Configuration`` as
``json.dumps`` text with spaces, urlencoded by ``urllib.parse.urlencode``. Every response the
gateway returns is validated against the PREVIEW spec (request URL translated to
``https://preview.twilio.com``) and no URL-bearing field may still name
``marketplace.twilio.com``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
import orjson
import pytest

from gateway.simulator import load_seed
from tests.conftest import PREVIEW_OPERATIONS

from .conftest import Stack, basic, check_preview_response, new_account

pytestmark = pytest.mark.upstream

SEED = load_seed()
CATALOGUE = [a.sid for a in SEED.available_add_ons]
VOICEBASE = CATALOGUE[0]
LEGACY_HEADERS = {  # twilio-python 6.63.2 on requests, as recorded in api-mapping section 5
    "User-Agent": "twilio-python/6.63.2 (Python 3.11.9)",
    "X-Twilio-Client": "python-6.63.2",
    "Accept-Charset": "utf-8",
    "Accept": "application/json",
}
TIMEOUT = aiohttp.ClientTimeout(total=10)


@dataclass
class Answer:
    status: int
    headers: Any
    raw: bytes

    @property
    def json(self) -> Any:
        return orjson.loads(self.raw)


class LegacyApp:
    """Calls the gateway like an old client; checks every answer against the preview spec."""

    def __init__(self, session: aiohttp.ClientSession, stack: Stack, account: str) -> None:
        self.session, self.stack, self.account = session, stack, account
        self.base = f"{stack.gateway_url}/marketplace"
        self.answers: list[Answer] = []

    async def call(self, method: str, url: str, form: bytes | None = None) -> Answer:
        if not url.startswith("http"):
            url = self.base + url
        headers = {**LEGACY_HEADERS, "Authorization": basic(self.account)}
        if form is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        async with self.session.request(method, url, data=form, headers=headers) as response:
            raw = await response.read()
            content_type = response.content_type if raw else ""
            check_preview_response(
                method, url, response.status, content_type, raw, self.stack.gateway_url
            )
            if raw:
                assert content_type == "application/json"
                # this seed has no customer data naming the v1 host, so nothing may name it
                assert b"marketplace.twilio.com" not in raw, raw
            answer = Answer(response.status, response.headers, raw)
        self.answers.append(answer)
        return answer

    async def walk_pages(self, first_url: str) -> list[dict[str, Any]]:
        """GET *first_url*, then every ``next_page_url`` verbatim; the records of all pages."""
        answer = await self.call("GET", first_url)
        assert answer.status == 200
        body = answer.json
        records = list(body[body["meta"]["key"]])
        while body["meta"]["next_page_url"]:
            answer = await self.call("GET", body["meta"]["next_page_url"])
            assert answer.status == 200
            body = answer.json
            records.extend(body[body["meta"]["key"]])
        return records


async def _sim_get(session: aiohttp.ClientSession, stack: Stack, account: str, path: str) -> Any:
    """Ask the simulator itself (not through the gateway) for its state."""
    headers = {"Authorization": basic(account)}
    async with session.get(stack.simulator_url + path, headers=headers) as response:
        assert response.status == 200
        return await response.json()


async def test_legacy_session_raw_forms(stack: Stack) -> None:
    account = new_account()
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        app = LegacyApp(session, stack, account)

        # catalogue, two to a page: 4 pages, every one through the gateway
        mark = stack.mark()
        add_ons = await app.walk_pages("/AvailableAddOns?PageSize=2")
        assert [a["sid"] for a in add_ons] == CATALOGUE
        assert len(app.answers) == 4
        stack.assert_all_via_gateway(mark)
        assert (await app.call("GET", f"/AvailableAddOns/{VOICEBASE}")).status == 200
        exts = await app.walk_pages(f"/AvailableAddOns/{CATALOGUE[7]}/Extensions?PageSize=2")
        assert len(exts) == 5
        fetched = await app.call(
            "GET", f"/AvailableAddOns/{CATALOGUE[7]}/Extensions/{exts[4]['sid']}"
        )
        assert fetched.json["unique_name"] == exts[4]["unique_name"]

        # install: the exact bytes a 6.x-8.x client sends
        create_form = urlencode(
            {
                "AvailableAddOnSid": VOICEBASE,
                "AcceptTermsOfService": True,
                "Configuration": json.dumps({"bad_words": True}),
                "UniqueName": "legacy app",
            }
        ).encode()
        assert b"AcceptTermsOfService=True" in create_form
        assert b"%7B%22bad_words%22%3A+true%7D" in create_form  # '{"bad_words": true}'
        mark = stack.mark()
        created = await app.call("POST", "/InstalledAddOns", create_form)
        assert created.status == 201, created.json
        _, received = stack.since(mark)
        assert [(r.method, r.path_qs, r.body) for r in received] == [
            ("POST", "/v1/InstalledAddOns", create_form)  # forwarded byte for byte
        ]
        item = created.json
        assert item["unique_name"] == "legacy app" and item["configuration"]["bad_words"] is True
        sid = item["sid"]

        installed = await app.walk_pages("/InstalledAddOns?PageSize=2")
        assert [i["sid"] for i in installed] == [sid]
        assert (await app.call("GET", f"/InstalledAddOns/{sid}")).json[
            "unique_name"
        ] == "legacy app"
        update_form = urlencode(
            {"Configuration": json.dumps({"bad_words": False}), "UniqueName": "renamed app"}
        ).encode()
        updated = await app.call("POST", f"/InstalledAddOns/{sid}", update_form)
        assert updated.status == 200
        assert updated.json["configuration"]["bad_words"] is False
        assert updated.json["unique_name"] == "renamed app"
        on_sim = await _sim_get(session, stack, account, f"/v1/InstalledAddOns/{sid}")
        assert on_sim["configuration"]["bad_words"] is False
        assert on_sim["unique_name"] == "renamed app"

        # extensions: Enabled=True / Enabled=False flip the simulator's flag
        extensions = await app.walk_pages(f"/InstalledAddOns/{sid}/Extensions?PageSize=2")
        assert len(extensions) == 4 and not any(e["enabled"] for e in extensions)
        target = extensions[2]["sid"]
        ext_path = f"/InstalledAddOns/{sid}/Extensions/{target}"
        for flag, expected in ((True, True), (False, False), (True, True)):
            form = urlencode({"Enabled": flag}).encode()
            assert form == f"Enabled={flag}".encode()
            mark = stack.mark()
            answer = await app.call("POST", ext_path, form)
            assert answer.status == 200 and answer.json["enabled"] is expected
            assert stack.since(mark)[1][0].body == form
            on_sim = await _sim_get(session, stack, account, f"/v1{ext_path}")
            assert on_sim["enabled"] is expected
            assert (await app.call("GET", ext_path)).json["enabled"] is expected
        others = await _sim_get(session, stack, account, f"/v1/InstalledAddOns/{sid}/Extensions")
        assert [e["sid"] for e in others["extensions"] if e["enabled"]] == [target]

        # errors keep Twilio's error body (checked by check_preview_response)
        missing = await app.call("GET", f"/InstalledAddOns/XE{'f' * 32}")
        assert (missing.status, missing.json["code"]) == (404, 20404)
        duplicate = await app.call(
            "POST",
            "/InstalledAddOns",
            urlencode(
                {
                    "AvailableAddOnSid": CATALOGUE[1],
                    "AcceptTermsOfService": True,
                    "UniqueName": "renamed app",
                }
            ).encode(),
        )
        assert duplicate.status == 409
        bad = await app.call(
            "POST",
            f"/InstalledAddOns/{sid}",
            urlencode({"Configuration": json.dumps({"bad_words": "maybe"})}).encode(),
        )
        assert (bad.status, bad.json["code"]) == (400, 20001)
        refused = await app.call(
            "POST",
            "/InstalledAddOns",
            urlencode({"AvailableAddOnSid": CATALOGUE[1], "AcceptTermsOfService": False}).encode(),
        )
        assert refused.status == 400

        # uninstall: exactly 204, empty body
        deleted = await app.call("DELETE", f"/InstalledAddOns/{sid}")
        assert (deleted.status, deleted.raw) == (204, b"")
        assert (await app.call("GET", f"/InstalledAddOns/{sid}")).status == 404

    # the 12 operations were all exercised and answered by the gateway's preview routes
    routes = {(line["route"], line["method"]) for line in stack.access_lines()}
    assert routes == PREVIEW_OPERATIONS
    gateway_requests = [r for r in stack.sim_requests if r.via is not None]
    assert len(gateway_requests) == len(stack.access_lines())


async def test_preview_responses_validate_for_the_seeded_demo_account(stack: Stack) -> None:
    """The demo account's seeded installation (with an enabled extension) through the gateway."""
    demo = SEED.installed_add_ons[0]
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        app = LegacyApp(session, stack, demo.account_sid)
        installed = await app.walk_pages("/InstalledAddOns?PageSize=1")
        assert [i["sid"] for i in installed] == [demo.sid]
        item = installed[0]
        assert item["links"]["available_add_on"] == f"{app.base}/AvailableAddOns/{VOICEBASE}"
        extensions = await app.walk_pages(f"/InstalledAddOns/{demo.sid}/Extensions?PageSize=1")
        assert len(extensions) == 4
        assert [e["unique_name"] for e in extensions if e["enabled"]] == ["recording-verb"]
        for extension in extensions:
            answer = await app.call("GET", extension["url"])  # the rewritten url is callable
            assert answer.json == extension
    stack.assert_all_via_gateway()


async def test_customer_data_and_non_ascii_form_values_round_trip(stack: Stack) -> None:
    """Configuration naming the v1 host is customer data: never rewritten (api-mapping G16).

    The non-ASCII, ``+`` and ``&`` of a UniqueName reach the simulator as the client encoded them.
    """
    hook = "https://marketplace.twilio.com/v1/InstalledAddOns/hook?x=1"
    form = urlencode(
        {
            "AvailableAddOnSid": VOICEBASE,
            "AcceptTermsOfService": True,
            "Configuration": json.dumps({"bad_words": False, "callback_url": hook}),
            "UniqueName": "café ☕ a+b&c",
        }
    ).encode()
    account = new_account()
    async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
        headers = {
            **LEGACY_HEADERS,
            "Authorization": basic(account),
            "Content-Type": "application/x-www-form-urlencoded",
        }
        mark = stack.mark()
        url = f"{stack.gateway_url}/marketplace/InstalledAddOns"
        async with session.post(url, data=form, headers=headers) as response:
            raw = await response.read()
            assert response.status == 201, raw
        assert stack.since(mark)[1][0].body == form
        item = orjson.loads(raw)
        assert item["unique_name"] == "café ☕ a+b&c"
        assert item["configuration"]["callback_url"] == hook  # left alone
        assert item["url"] == f"{stack.gateway_url}/marketplace/InstalledAddOns/{item['sid']}"
        fetched = await _sim_get(session, stack, account, f"/v1/InstalledAddOns/{item['sid']}")
        assert fetched["configuration"]["callback_url"] == hook
