"""Deprecation / Sunset / Link header values, parsed back against the RFC syntax."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import pytest
from multidict import CIMultiDict

from gateway.config.instants import parse_instant
from gateway.config.policy import DeprecationPolicy
from gateway.migration.deprecation import DeprecationHeaders, deprecation_value, sunset_value
from tests.conftest import AUTH_HEADER, GatewayFactory
from tests.fake_upstream import FakeUpstream, sid

# RFC 9745: Deprecation = Date (structured field, "@" integer); RFC 8594: Sunset = HTTP-date.
STRUCTURED_DATE = re.compile(r"@-?[0-9]{1,15}")
IMF_FIXDATE = re.compile(
    r"(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-9]{2} "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT"
)
LINK_VALUE = re.compile(r'<([^>]+)>(?:\s*;\s*[a-z]+="[^"]*")+')


def test_values_follow_the_rfc_syntax() -> None:
    moment = datetime(2024, 6, 18, tzinfo=UTC)
    assert deprecation_value(moment) == "@1718668800"
    assert STRUCTURED_DATE.fullmatch(deprecation_value(moment))
    value = sunset_value(datetime(2024, 12, 1, tzinfo=UTC))
    assert value == "Sun, 01 Dec 2024 00:00:00 GMT"
    assert IMF_FIXDATE.fullmatch(value)
    assert parsedate_to_datetime(value) == datetime(2024, 12, 1, tzinfo=UTC)


def test_links_are_added_not_overwritten() -> None:
    policy = DeprecationPolicy(
        parse_instant("2024-06-18T00:00:00Z"),
        parse_instant("2024-12-01T00:00:00Z"),
        "https://docs.example/deprecation",
        "https://docs.example/sunset",
    )
    headers: CIMultiDict[str] = CIMultiDict({"Link": '<https://up.example/x>; rel="next"'})
    DeprecationHeaders.for_policy(policy).apply(headers, "https://marketplace.twilio.com/v1/X")
    links = headers.getall("Link")
    assert len(links) == 4
    assert all(LINK_VALUE.fullmatch(link) for link in links)
    assert '<https://marketplace.twilio.com/v1/X>; rel="successor-version"' in links
    assert any('rel="deprecation"' in link for link in links)
    assert any('rel="sunset"' in link for link in links)


@pytest.mark.upstream
async def test_deprecated_route_carries_headers_and_v1_does_not(
    fake_upstream: FakeUpstream, gateway_client: GatewayFactory
) -> None:
    client = await gateway_client(fake_upstream.url)
    xe = sid("XE", 4)
    response = await client.get(
        f"/marketplace/InstalledAddOns/{xe}/Extensions?PageSize=2",
        headers={"Authorization": AUTH_HEADER},
    )
    assert response.headers["Deprecation"] == "@1718668800"
    assert parsedate_to_datetime(response.headers["Sunset"]) >= datetime.fromtimestamp(
        1718668800, UTC
    )
    assert (
        f"<https://marketplace.twilio.com/v1/InstalledAddOns/{xe}/Extensions>; "
        'rel="successor-version"'
    ) in response.headers.getall("Link")
    plain = await client.get(f"/v1/InstalledAddOns/{xe}")
    assert "Deprecation" not in plain.headers and "Sunset" not in plain.headers


@pytest.mark.upstream
async def test_gateway_errors_on_deprecated_routes_carry_headers_too(
    gateway_client: GatewayFactory,
) -> None:
    client = await gateway_client("http://127.0.0.1:9", connect_timeout=0.5)
    response = await client.get("/marketplace/AvailableAddOns")
    assert response.status == 502
    assert response.headers["Deprecation"].startswith("@")
    assert "Sunset" in response.headers


@pytest.mark.upstream
async def test_per_rule_sunset_overrides_the_default(
    tmp_path, fake_upstream: FakeUpstream, gateway_client: GatewayFactory
) -> None:  # type: ignore[no-untyped-def]
    (tmp_path / "r.toml").write_text(
        '[[rule]]\nname = "legacy"\nmethods = ["GET"]\nfrom = "/marketplace/AvailableAddOns"\n'
        'to = "/v1/AvailableAddOns"\nupstream = "marketplace"\ndeprecated = true\n'
        "sunset = 2027-03-31T00:00:00Z\n"
    )
    client = await gateway_client(fake_upstream.url, rules=tmp_path)
    response = await client.get("/marketplace/AvailableAddOns")
    assert response.headers["Sunset"] == "Wed, 31 Mar 2027 00:00:00 GMT"
