"""Every operation of both specs is served, and its responses validate against the spec.

``Caller`` validates each reply with openapi-core as it arrives; this module makes sure the
walk below reaches every (method, path template) the specs define, success and error alike.
"""

from __future__ import annotations

import re
import uuid

import pytest

from gateway.simulator.app import ROUTES

from .conftest import Caller, Reply
from .spec_check import _raw_spec

SPEC_FILES = ("twilio_marketplace_v1.json", "twilio_api_v2010_assigned_add_ons.json")


def spec_operations() -> set[tuple[str, str]]:
    ops = set()
    for name in SPEC_FILES:
        for template, item in _raw_spec(name)["paths"].items():
            ops |= {
                (m.upper(), template)
                for m in item
                if m in {"get", "post", "delete", "put", "patch"}
            }
    return ops


def _matcher(template: str) -> re.Pattern[str]:
    return re.compile(re.sub(r"\\\{[A-Za-z]+\\\}", "[^/]+", re.escape(template)) + r"$")


def test_route_table_is_exactly_the_spec_operations() -> None:
    served = {(method, path) for method, path, _ in ROUTES}
    assert served == spec_operations()


class Recorder:
    def __init__(self, caller: Caller) -> None:
        self.caller = caller
        self.seen: set[tuple[str, str, int]] = set()
        self.matchers = [(m, t, _matcher(t)) for m, t in spec_operations()]

    async def __call__(self, method: str, url: str, **kw: object) -> Reply:
        reply = await self.caller.call(method, url, **kw)
        path = url.removeprefix(self.caller.origin).split("?")[0]
        hits = [t for m, t, rx in self.matchers if m == method and rx.match(path)]
        assert len(hits) == 1, (method, path, hits)
        self.seen.add((method, hits[0], reply.status))
        return reply


async def test_every_operation_validates(caller: Caller, catalogue: list[str]) -> None:
    call = Recorder(caller)
    xb = catalogue[0]
    add_ons = (await call("GET", "/v1/AvailableAddOns?PageSize=2")).json
    await call("GET", add_ons["meta"]["next_page_url"])
    await call("GET", f"/v1/AvailableAddOns/{xb}")
    exts = (await call("GET", f"/v1/AvailableAddOns/{xb}/Extensions?PageSize=1")).json
    await call("GET", exts["extensions"][0]["url"])

    form = {"AvailableAddOnSid": xb, "AcceptTermsOfService": "true", "UniqueName": "conf"}
    installed = (await call("POST", "/v1/InstalledAddOns", data=form)).json
    assert (await call("POST", "/v1/InstalledAddOns", data=form)).status == 409
    await call("GET", "/v1/InstalledAddOns")
    await call("GET", installed["url"])
    await call("POST", installed["url"], data={"Configuration": '{"bad_words": true}'})
    iexts = (await call("GET", installed["links"]["extensions"])).json["extensions"]
    await call("GET", iexts[0]["url"])
    await call("POST", iexts[0]["url"], data={"Enabled": "true"})
    usage = {"billable_items": [{"sid": "BI" + "c" * 32, "quantity": 3}]}
    await call("POST", installed["links"]["usage"], json=usage)

    await call(
        "POST", "/v1/ReferralConversion", json={"referral_account_sid": "AC" + uuid.uuid4().hex}
    )
    assert (await call("POST", "/v1/ReferralConversion", json={})).status == 400
    await call("GET", "/v1/Listings")
    listing = (await call("POST", "/v1/Listings", data={"ModuleInfo": '{"name": "x"}'})).json
    await call("GET", listing["url"])
    await call("POST", listing["url"], data={"Support": '{"customer_support_email": "a@b.c"}'})

    number = "PN" + uuid.uuid4().hex
    base = f"/2010-04-01/Accounts/{caller.account}/IncomingPhoneNumbers/{number}/AssignedAddOns"
    assigned = (
        await call("POST", f"{base}.json", data={"InstalledAddOnSid": installed["sid"]})
    ).json
    await call("GET", f"{base}.json")
    await call("GET", assigned["uri"])
    aexts = (await call("GET", assigned["subresource_uris"]["extensions"])).json["extensions"]
    await call("GET", aexts[0]["uri"])
    await call("DELETE", assigned["uri"])
    await call("DELETE", installed["url"])

    covered = {(m, t) for m, t, status in call.seen if status < 300}
    assert covered == spec_operations()


@pytest.mark.parametrize("name", SPEC_FILES)
def test_spec_documents_no_operation_we_skip(name: str) -> None:
    # Guards the assumption above: only GET/POST/DELETE occur in the specs.
    for item in _raw_spec(name)["paths"].values():
        assert set(item) - {"get", "post", "delete"} <= {"servers", "description", "x-twilio"}


@pytest.mark.parametrize("template", ["/v1/AvailableAddOns/{Sid}", "/v1/InstalledAddOns/{Sid}"])
async def test_links_are_the_spec_dependent_properties(
    caller: Caller, catalogue: list[str], template: str
) -> None:
    """Each resource's ``links`` holds every dependent property the v1 spec names for it
    (installed add-ons: extensions and usage) at the spec's resource_url."""
    path = (
        f"/v1/AvailableAddOns/{catalogue[0]}"
        if "Available" in template
        else (await caller.install(catalogue[0]))["url"].removeprefix(caller.origin)
    )
    body = (await caller.get(path)).json
    dependent = _raw_spec(SPEC_FILES[0])["paths"][template]["x-twilio"]["dependentProperties"]
    assert dependent, template
    for name, spec in dependent.items():
        url = spec["resource_url"]
        for placeholder, field in spec["mapping"].items():
            url = url.replace("{" + placeholder + "}", body[field])
        assert body["links"][name] == caller.origin + url, name
    for item in (await caller.get(template.rsplit("/", 1)[0])).json.values():
        if isinstance(item, list):  # the list page's records carry the same links
            assert all(set(dependent) <= set(record["links"]) for record in item)
