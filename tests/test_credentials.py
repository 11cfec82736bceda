"""Credentials: Authorization reaches the configured upstream and nothing else.

It is never sent to another host (redirects are passed back unfollowed, a Location naming
another host untouched, one naming the upstream mapped back to the gateway; Host and forwarding
headers never pick the upstream), never appears in a log record, a metric or an error body,
whatever the outcome of the request; upstream TLS is verified unless switched off, and
switching it off warns.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from gateway.app import create_app
from gateway.serving.server import GatewayRunner
from tests.conftest import make_config, raw_http
from tests.fake_upstream import FakeUpstream, sid

TOKEN = "s3cr3t-t0k3n-9f8e7d6c5b4a"
ACCOUNT = "AC" + "7e57" * 8  # a SID no other test uses (metrics are process-wide)
AUTH = "Basic " + base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
BLOB = AUTH.split()[1]
XE = sid("XE", 1)


async def serve(app: web.Application, **site: Any) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, **site).start()
    host, port = runner.addresses[0][:2]
    scheme = "https" if site.get("ssl_context") else "http"
    return runner, f"{scheme}://{host}:{port}"


async def start_gateway(upstream: str, **overrides: Any) -> tuple[web.AppRunner, str]:
    runner = GatewayRunner(create_app(make_config(upstream, **overrides)), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


# --- redirects --------------------------------------------------------------------------------


@pytest.fixture
async def thief(aiohttp_server: Any) -> FakeUpstream:
    """Another host a redirect points at; it must never hear from the gateway."""
    upstream = FakeUpstream()
    server = await aiohttp_server(upstream.app())
    upstream.url = str(server.make_url("")).rstrip("/")
    return upstream


@pytest.mark.upstream
@pytest.mark.parametrize(("method", "status"), [("GET", 302), ("GET", 301), ("POST", 307)])
async def test_redirects_pass_back_unfollowed_with_location_untouched(
    method: str, status: int, thief: FakeUpstream
) -> None:
    location = f"{thief.url}/v1/InstalledAddOns/{XE}?steal=1"

    async def redirect(request: web.Request) -> web.Response:
        return web.Response(status=status, headers={"Location": location})

    upstream_app = web.Application()
    upstream_app.router.add_route("*", "/{tail:.*}", redirect)
    upstream_runner, upstream = await serve(upstream_app)
    gateway_runner, gateway = await start_gateway(upstream)
    try:
        async with aiohttp.ClientSession() as client:
            async with client.request(
                method,
                f"{gateway}/marketplace/InstalledAddOns/{XE}",
                headers={"Authorization": AUTH},
                data=b"UniqueName=x" if method == "POST" else None,
                allow_redirects=False,
            ) as response:
                assert response.status == status
                # Passed back exactly: twilio clients never follow redirects, and a
                # rewritten Location would invite them to send credentials elsewhere.
                assert response.headers["Location"] == location
    finally:
        await gateway_runner.cleanup()
        await upstream_runner.cleanup()
    assert thief.received == []


@pytest.mark.upstream
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308, 201])
async def test_a_location_naming_the_upstream_points_back_at_the_gateway_still_unfollowed(
    status: int,
) -> None:
    hits: list[str] = []

    async def redirect(request: web.Request) -> web.Response:
        hits.append(request.path)
        own = f"{request.scheme}://{request.host}"  # the upstream's own address
        headers = {
            "Location": f"{own}/v1/InstalledAddOns/{XE}?Page=1",
            "Content-Location": f"https://marketplace.twilio.com/v1/InstalledAddOns/{XE}",
        }
        return web.Response(status=status, headers=headers)

    upstream_app = web.Application()
    upstream_app.router.add_route("*", "/{tail:.*}", redirect)
    upstream_runner, upstream = await serve(upstream_app)
    gateway_runner, gateway = await start_gateway(upstream, public_base_url="https://gw.example")
    try:
        async with (
            aiohttp.ClientSession() as client,
            client.get(
                f"{gateway}/marketplace/InstalledAddOns/{XE}",
                headers={"Authorization": AUTH},
                allow_redirects=False,
            ) as response,
        ):
            assert response.status == status
            legacy = f"https://gw.example/marketplace/InstalledAddOns/{XE}"
            assert response.headers["Location"] == f"{legacy}?Page=1"
            assert response.headers["Content-Location"] == legacy
    finally:
        await gateway_runner.cleanup()
        await upstream_runner.cleanup()
    assert hits == [f"/v1/InstalledAddOns/{XE}"]  # asked once, never followed


# --- never in logs, metrics or error bodies ---------------------------------------------------


@pytest.mark.upstream
async def test_credentials_never_reach_logs_metrics_or_error_bodies(
    fake_upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    runner, gateway = await start_gateway(fake_upstream.url, max_body_size=100)
    refused_runner, refused_gateway = await start_gateway("http://127.0.0.1:9")
    auth_headers = {
        "Authorization": AUTH,
        "Cookie": f"token={TOKEN}",
        "X-Twilio-Token": TOKEN,
        "Proxy-Authorization": AUTH,
    }
    bodies: list[bytes] = []
    try:
        with caplog.at_level(logging.DEBUG):
            async with aiohttp.ClientSession() as client:
                for base, method, path, data in [
                    (gateway, "GET", f"/marketplace/InstalledAddOns/{XE}", None),
                    (gateway, "GET", "/marketplace/Nope", None),
                    (gateway, "DELETE", "/marketplace/AvailableAddOns", None),
                    (gateway, "POST", "/marketplace/InstalledAddOns", b"x" * 500),
                    (gateway, "GET", "http://evil.example/marketplace/AvailableAddOns", None),
                    (refused_gateway, "GET", "/marketplace/AvailableAddOns", None),
                ]:
                    url = path if path.startswith("http:") else base + path
                    if path.startswith("http:"):
                        raw = (
                            f"GET {path} HTTP/1.1\r\nHost: evil.example\r\n"
                            f"Authorization: {AUTH}\r\nConnection: close\r\n\r\n"
                        ).encode()
                        port = int(gateway.rsplit(":", 1)[1])
                        bodies.append(await raw_http("127.0.0.1", port, raw))
                        continue
                    async with client.request(
                        method, url, headers=auth_headers, data=data
                    ) as response:
                        assert response.status in (200, 404, 405, 413, 502), (path, response)
                        bodies.append(await response.read())
                # A header block aiohttp cannot parse, holding the credentials.
                port = int(gateway.rsplit(":", 1)[1])
                raw = (
                    f"GET /marketplace/AvailableAddOns HTTP/1.1\r\nHost: x\r\n"
                    f"Authorization: {AUTH}\x01{TOKEN}\r\nConnection: close\r\n\r\n"
                ).encode()
                bodies.append(await raw_http("127.0.0.1", port, raw))
                raw = (
                    f"GET /marketplace/AvailableAddOns HTTP/1.1\r\nHost: x\r\n"
                    f"Authorization: Basic {BLOB}{'A' * 9000}\r\nConnection: close\r\n\r\n"
                ).encode()
                bodies.append(await raw_http("127.0.0.1", port, raw))
                async with client.get(f"{gateway}/metrics") as response:
                    exposition = await response.text()
    finally:
        await runner.cleanup()
        await refused_runner.cleanup()

    assert len(bodies) == 8
    assert b"88007" in bodies[-1] and b"88007" in bodies[-2]  # the parse errors were answered
    for body in bodies:
        assert TOKEN.encode() not in body and BLOB.encode() not in body
    assert TOKEN not in exposition and BLOB not in exposition
    assert ACCOUNT in exposition  # the consumer label is the SID, never the secret
    assert len(caplog.records) >= 8
    for record in caplog.records:
        text = record.getMessage()
        if record.exc_info:
            text += logging.Formatter().formatException(record.exc_info)
        assert TOKEN not in text and BLOB not in text, (record.name, text[:300])
    # The upstream did get the credentials, untouched, and nothing it must not have.
    [received] = fake_upstream.received
    assert received.headers["Authorization"] == AUTH
    assert "Proxy-Authorization" not in received.headers


# --- TLS --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    assert openssl, "the TLS tests need the openssl command"
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


@pytest.fixture
async def https_upstream(
    self_signed: tuple[Path, Path],
) -> AsyncIterator[tuple[str, FakeUpstream]]:
    cert, key = self_signed
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    recorder = FakeUpstream()
    runner, url = await serve(recorder.app(), ssl_context=context)
    recorder.url = url
    yield url, recorder
    await runner.cleanup()


async def get_through(gateway: str) -> tuple[int, dict[str, Any]]:
    async with aiohttp.ClientSession() as client:
        async with asyncio.timeout(10):
            async with client.get(
                f"{gateway}/marketplace/InstalledAddOns/{XE}", headers={"Authorization": AUTH}
            ) as response:
                return response.status, await response.json()


@pytest.mark.upstream
async def test_tls_is_verified_by_default(https_upstream: tuple[str, FakeUpstream]) -> None:
    url, recorder = https_upstream
    runner, gateway = await start_gateway(url)
    try:
        status, body = await get_through(gateway)
    finally:
        await runner.cleanup()
    assert status == 502
    assert body["code"] == 88001 and "TLS" in body["message"]
    assert recorder.received == []  # no request, so no credentials, over an unverified link


@pytest.mark.upstream
async def test_a_ca_bundle_makes_a_private_upstream_trusted(
    https_upstream: tuple[str, FakeUpstream], self_signed: tuple[Path, Path]
) -> None:
    url, recorder = https_upstream
    runner, gateway = await start_gateway(url, ca_bundle=self_signed[0])
    try:
        status, _ = await get_through(gateway)
    finally:
        await runner.cleanup()
    assert status == 200
    assert recorder.received[0].headers["Authorization"] == AUTH


@pytest.mark.upstream
async def test_switching_verification_off_works_and_warns_loudly(
    https_upstream: tuple[str, FakeUpstream], caplog: pytest.LogCaptureFixture
) -> None:
    url, recorder = https_upstream
    with caplog.at_level(logging.WARNING, logger="gateway"):
        runner, gateway = await start_gateway(url, insecure_skip_tls_verify=True)
        try:
            status, _ = await get_through(gateway)
        finally:
            await runner.cleanup()
    assert status == 200
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "TLS" in r.message]
    assert len(warnings) == 1
    assert "OFF" in warnings[0].message and "credentials" in warnings[0].message


def test_the_cli_flag_warns_in_its_help() -> None:
    from gateway.config.options import OPTIONS_BY_NAME

    option = OPTIONS_BY_NAME["insecure_skip_tls_verify"]
    assert option.default is False
    assert "dangerous" in option.help


# --- header values, duplicate credentials and who counts as a consumer --------------------------


def _raw_post(host: str, port: int, authorization: bytes, extra: bytes = b"") -> bytes:
    body = b"UniqueName=x&AvailableAddOnSid=" + sid("XB", 1).encode()
    return (
        b"POST /marketplace/InstalledAddOns HTTP/1.1\r\nHost: "
        + f"{host}:{port}".encode()
        + b"\r\nAuthorization: "
        + authorization
        + b"\r\n"
        + extra
        + b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\nConnection: close\r\n\r\n"
        + body
    )


@pytest.mark.parametrize(
    ("authorization", "extra"),
    [
        (AUTH.encode() + b"\xe9", b""),  # a Latin-1 byte that is not UTF-8
        (AUTH.encode() + b"\xc2\x85", b""),  # a C1 control, as UTF-8
        (AUTH.encode(), b"X-Latin: caf\xe9\r\n"),  # aiohttp would forward it as "caf"
        (AUTH.encode(), b"Authorization: Basic " + base64.b64encode(b"AC1:x") + b"\r\n"),
    ],
    ids=["latin-1-credential", "c1-control", "latin-1-other-header", "two-authorization"],
)
async def test_headers_the_upstream_would_not_get_as_sent_are_refused_before_forwarding(
    fake_upstream: FakeUpstream,
    caplog: pytest.LogCaptureFixture,
    authorization: bytes,
    extra: bytes,
) -> None:
    runner, gateway = await start_gateway(fake_upstream.url)
    host, port = runner.addresses[0][:2]
    try:
        with caplog.at_level(logging.INFO):
            reply = await raw_http(host, port, _raw_post(host, port, authorization, extra))
    finally:
        await runner.cleanup()
    status_line, _, rest = reply.partition(b"\r\n")
    assert status_line == b"HTTP/1.1 400 Bad Request"
    body = rest.partition(b"\r\n\r\n")[2]
    assert b'"code":88007' in body and b"header" in body and b"was not forwarded" in body
    assert fake_upstream.received == []
    access = [r for r in caplog.records if r.name == "gateway.access"]
    assert len(access) == 1 and '"status":400' in access[0].getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert BLOB not in caplog.text and TOKEN not in caplog.text


@pytest.mark.upstream
async def test_a_utf8_credential_is_forwarded_byte_for_byte_and_recorded(
    fake_upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    """The report's case: valid base64 then "é" (as UTF-8) once ran upstream and answered 500."""
    runner, gateway = await start_gateway(fake_upstream.url)
    host, port = runner.addresses[0][:2]
    try:
        with caplog.at_level(logging.INFO):
            reply = await raw_http(host, port, _raw_post(host, port, AUTH.encode() + b"\xc3\xa9"))
    finally:
        await runner.cleanup()
    assert reply.startswith(b"HTTP/1.1 201 ")
    [received] = fake_upstream.received
    assert received.headers["Authorization"] == AUTH + "\u00e9"
    [line] = [r.getMessage() for r in caplog.records if r.name == "gateway.access"]
    assert '"status":201' in line and '"consumer":"unrecognized"' in line
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


@pytest.mark.upstream
async def test_made_up_sids_with_wrong_tokens_cannot_fill_the_consumer_cap() -> None:
    async def twilio_like(request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != AUTH:
            return web.json_response({"code": 20003, "status": 401}, status=401)
        return web.json_response({"available_add_ons": [], "meta": {"key": "available_add_ons"}})

    upstream_app = web.Application()
    upstream_app.router.add_route("*", "/{tail:.*}", twilio_like)
    upstream_runner, upstream = await serve(upstream_app)
    gateway_runner, gateway = await start_gateway(upstream, consumer_cap=100)
    try:
        async with aiohttp.ClientSession() as client:
            for number in range(150):
                fake = f"ACfa4e{number:028x}"  # a prefix no other test uses
                credential = base64.b64encode(f"{fake}:wrong".encode()).decode()
                async with client.get(
                    f"{gateway}/marketplace/AvailableAddOns",
                    headers={"Authorization": f"Basic {credential}"},
                ) as response:
                    assert response.status == 401
            async with client.get(
                f"{gateway}/marketplace/AvailableAddOns", headers={"Authorization": AUTH}
            ) as response:
                assert response.status == 200
            async with client.get(f"{gateway}/metrics") as response:
                text = await response.text()
    finally:
        await gateway_runner.cleanup()
        await upstream_runner.cleanup()
    lines = [
        line for line in text.splitlines() if line.startswith("gateway_deprecated_requests_total{")
    ]
    labelled = {line.split('consumer="')[1].split('"')[0] for line in lines}
    assert ACCOUNT in labelled
    assert not [label for label in labelled if label.startswith("ACfa4e")]
    assert any('consumer="unauthenticated"' in line for line in lines)
