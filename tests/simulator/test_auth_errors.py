"""HTTP Basic auth, API keys, and the Twilio error contract for routing failures."""

from __future__ import annotations

import base64

import orjson
import pytest

from gateway.simulator.auth import account_for
from gateway.simulator.errors import SimulatorError
from tests.conftest import raw_http

from .conftest import Caller, SimClient, basic, new_account
from .spec_check import check_error_body

DEMO_KEY = "SK" + "0" * 31 + "1"
DEMO_ACCOUNT = "AC" + "0" * 31 + "1"


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "Bearer abc",
        "Basic not-base64!",
        "Basic " + base64.b64encode(b"no-colon").decode(),
        basic("AC" + "1" * 32, ""),
        basic("ACshort"),
        basic("someone"),
        basic("SK" + "f" * 32),  # API key not in the seed
        basic("XE" + "1" * 32),
    ],
)
async def test_bad_credentials_are_401(sim: SimClient, header: str | None) -> None:
    headers = {} if header is None else {"Authorization": header}
    for method, path in [
        ("GET", "/v1/AvailableAddOns"),
        ("POST", "/v1/InstalledAddOns"),
        ("GET", "/v1/Listings"),
        ("GET", "/nowhere"),
        ("PUT", "/v1/InstalledAddOns"),
    ]:
        async with sim.request(method, path, headers=headers) as resp:
            assert resp.status == 401
            assert resp.headers["WWW-Authenticate"] == 'Basic realm="Twilio API"'
            assert resp.content_type == "application/json"
            body = await resp.json()
            check_error_body(401, body)
            assert body["code"] == 20003


@pytest.mark.parametrize(
    "value",
    [
        b"Basic " + base64.b64encode(b"AC" + b"0" * 32 + b":\xff\xfe"),  # base64, not UTF-8
        b"Basic " + base64.b64encode(b"AC" + b"0" * 32 + b":pw") + b"\xff",  # a raw byte after
        "Basic QUMwMTIzNDU2Nzg5YWJjZGVm6Q==é".encode(),  # UTF-8 text that is not ASCII
        b"Basic \xe9",  # one Latin-1 byte
        "Básic QUM6cHc=".encode(),
    ],
    ids=["base64-not-utf8", "raw-byte", "utf8-text", "latin1-byte", "non-ascii-scheme"],
)
async def test_credentials_that_are_not_text_are_401_not_500(sim: SimClient, value: bytes) -> None:
    """As Twilio answers: the header's bytes as they come on the wire, on a real socket."""
    assert sim.server.host is not None and sim.server.port is not None
    request = b"GET /v1/AvailableAddOns HTTP/1.1\r\nHost: sim\r\nConnection: close\r\n"
    reply = await raw_http(
        sim.server.host, sim.server.port, request + b"Authorization: " + value + b"\r\n\r\n"
    )
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401 "), reply[:300]
    assert b'WWW-Authenticate: Basic realm="Twilio API"' in head
    check_error_body(401, orjson.loads(body))


def test_account_for_accepts_account_sid_and_mapped_api_key() -> None:
    account = new_account()
    assert account_for(basic(account), {}) == account
    assert account_for(basic(DEMO_KEY, "secret"), {DEMO_KEY: DEMO_ACCOUNT}) == DEMO_ACCOUNT
    with pytest.raises(SimulatorError):
        account_for(basic(DEMO_KEY, "secret"), {})


async def test_api_key_acts_as_its_account(sim: SimClient, catalogue: list[str]) -> None:
    as_key = Caller(sim, DEMO_ACCOUNT, username=DEMO_KEY)
    as_account = Caller(sim, DEMO_ACCOUNT)
    body = await as_key.install(catalogue[3])
    assert body["account_sid"] == DEMO_ACCOUNT
    listed = (await as_account.get("/v1/InstalledAddOns")).json["installed_add_ons"]
    assert body["sid"] in [i["sid"] for i in listed]


async def test_unknown_route_is_json_404(caller: Caller) -> None:
    for path in (
        "/",
        "/v2/AvailableAddOns",
        "/v1/AvailableAddOns/",
        "/marketplace/AvailableAddOns",
    ):
        reply = await caller.get(path)
        assert reply.status == 404
        assert reply.json["code"] == 20404
        assert reply.json["message"] == f"The requested resource {path} was not found"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/v1/InstalledAddOns", "GET, POST"),
        ("DELETE", "/v1/AvailableAddOns", "GET"),
        ("PATCH", "/v1/InstalledAddOns/XE" + "0" * 32, "DELETE, GET, POST"),
        ("GET", "/v1/ReferralConversion", "POST"),
        ("DELETE", "/v1/Listing/XB" + "0" * 32, "GET, POST"),
    ],
)
async def test_wrong_method_is_405_with_allow(
    caller: Caller, method: str, path: str, allowed: str
) -> None:
    reply = await caller.call(method, path)
    assert reply.status == 405
    assert reply.headers["Allow"] == allowed
    assert reply.json["code"] == 20004


async def test_success_responses_carry_spec_cors_headers(caller: Caller) -> None:
    reply = await caller.get("/v1/AvailableAddOns")
    assert reply.headers["Access-Control-Allow-Origin"] == "*"
    assert reply.headers["Access-Control-Allow-Headers"] == "Content-Type, Authorization"


async def test_internal_errors_are_twilio_json(
    caller: Caller, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gateway.simulator import render

    def boom(*_: object) -> dict[str, object]:
        raise RuntimeError("boom")

    monkeypatch.setattr(render, "available_add_on", boom)
    with pytest.MonkeyPatch.context() as quiet:
        quiet.setattr("gateway.simulator.errors._log.exception", lambda *a, **k: None)
        reply = await caller.get("/v1/AvailableAddOns")
    assert reply.status == 500
    assert reply.json["code"] == 20500


async def test_unreadable_form_body_is_400_not_500(sim: SimClient) -> None:
    response = await sim.post(
        "/v1/InstalledAddOns",
        data=b"--x\r\n",
        headers={"Authorization": basic(new_account()), "Content-Type": "multipart/form-data"},
    )
    assert response.status == 400
    body = await response.json()
    check_error_body(400, body)
    assert "form" in body["message"]
