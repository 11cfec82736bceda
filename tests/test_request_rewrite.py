"""gateway.request_rewrite: the upstream request, byte for byte (pure; literal data)."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.config.rules import Rule, load_rules
from gateway.models import RouteMatch, UpstreamRequest
from gateway.request_rewrite import build, upstream_url
from gateway.routing import Router
from gateway.serving.headers import VIA

XE = "XE" + "0123456789abcdef" * 2
XF = "XF" + "fedcba9876543210" * 2
XB = "XB" + "89abcdef01234567" * 2
AC = "AC" + "0123456789abcdef" * 2
PN = "PN" + "0123456789abcdef" * 2
ROUTER = Router.from_ruleset(load_rules())
BASE = "https://marketplace.twilio.com"


def match(method: str, target: str) -> RouteMatch[Rule]:
    return ROUTER.match(method, target)


@pytest.mark.parametrize(
    ("method", "target", "expected"),
    [
        ("GET", "/marketplace/AvailableAddOns", f"{BASE}/v1/AvailableAddOns"),
        (
            "POST",
            f"/marketplace/InstalledAddOns/{XE}/Extensions/{XF}",
            f"{BASE}/v1/InstalledAddOns/{XE}/Extensions/{XF}",
        ),
        ("GET", f"/v1/Listing/{XB}", f"{BASE}/v1/Listing/{XB}"),
        (
            # PageToken with "=" padding and %-escapes, parameters in client order
            "GET",
            "/marketplace/InstalledAddOns?PageToken=PTa%2Bb%2F%3D==&Page=1&PageSize=50",
            f"{BASE}/v1/InstalledAddOns?PageToken=PTa%2Bb%2F%3D==&Page=1&PageSize=50",
        ),
        (
            "GET",
            "/marketplace/InstalledAddOns?PageSize=1&PageToken=PT%25%2525=&Page=1",
            f"{BASE}/v1/InstalledAddOns?PageSize=1&PageToken=PT%25%2525=&Page=1",
        ),
        (
            # %-escapes in the path stay as sent (api-mapping section 5); "%30" is "0"
            "GET",
            f"/marketplace/InstalledAddOns/XE%30{XE[3:]}/Extensions",
            f"{BASE}/v1/InstalledAddOns/XE%30{XE[3:]}/Extensions",
        ),
        ("GET", "/marketplace/AvailableAddOns?", f"{BASE}/v1/AvailableAddOns"),
    ],
)
def test_upstream_url_keeps_path_values_and_query_raw(
    method: str, target: str, expected: str
) -> None:
    assert upstream_url(match(method, target), BASE) == expected


def test_upstream_base_with_a_path_prefix() -> None:
    found = match("GET", "/marketplace/InstalledAddOns?PageSize=2")
    assert upstream_url(found, "http://127.0.0.1:9999/twilio") == (
        "http://127.0.0.1:9999/twilio/v1/InstalledAddOns?PageSize=2"
    )


def test_2010_rule_targets_the_same_path() -> None:
    path = (
        f"/2010-04-01/Accounts/{AC}/IncomingPhoneNumbers/{PN}/AssignedAddOns/{XE}/Extensions.json"
    )
    assert upstream_url(match("GET", path + "?PageSize=5"), "https://api.twilio.com") == (
        f"https://api.twilio.com{path}?PageSize=5"
    )


def test_build_forwards_body_byte_for_byte_and_filters_headers() -> None:
    body = (
        b"AvailableAddOnSid=XB0123&AcceptTermsOfService=True"
        b"&Configuration=%7B%22a%22%3A+1%2C+%22b%22%3A+%22%C3%A9%22%7D&UniqueName=a%2Bb%3D%25"
    )
    client_headers: CIMultiDict[str] = CIMultiDict()
    client_headers.add("Host", "gateway.test")
    client_headers.add("Authorization", "Basic QUM6c2VjcmV0")
    client_headers.add("Content-Type", "application/x-www-form-urlencoded")
    client_headers.add("Content-Length", str(len(body)))
    client_headers.add("Connection", "close")
    client_headers.add("X-Twilio-Client", "python-6.63.2")
    found = match("POST", "/marketplace/InstalledAddOns")
    request = build(found, BASE, "POST", CIMultiDictProxy(client_headers), body)
    assert request == UpstreamRequest(
        method="POST",
        url=f"{BASE}/v1/InstalledAddOns",
        headers=CIMultiDict(
            [
                ("Authorization", "Basic QUM6c2VjcmV0"),
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("X-Twilio-Client", "python-6.63.2"),
                ("Accept-Encoding", "identity"),
                ("Via", VIA),
            ]
        ),
        body=body,
    )
    assert request.body is body


def test_build_keeps_a_json_body_and_an_empty_one() -> None:
    json_body = b'{"billable_items":[{"sid":"XI1","quantity":1.50}]}'
    found = match("POST", f"/v1/InstalledAddOns/{XE}/Usage")
    json_headers = CIMultiDict({"Content-Type": "application/json"})
    request = build(found, BASE, "POST", json_headers, json_body)
    assert (request.url, request.body) == (f"{BASE}/v1/InstalledAddOns/{XE}/Usage", json_body)
    assert request.headers["Content-Type"] == "application/json"
    get = build(match("GET", "/marketplace/AvailableAddOns"), BASE, "GET", CIMultiDict(), b"")
    assert get.body == b""
    assert list(get.headers.items()) == [("Accept-Encoding", "identity"), ("Via", VIA)]
