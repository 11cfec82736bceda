"""``--tls-listen``: one ``gateway serve`` process serving plain HTTP on ``--listen`` and HTTPS
on ``--tls-listen`` (the certificate of ``gateway tls issue``), driven by curl and by Python's
own HTTPS client, on uvloop and on asyncio. ``--tls-cert`` alone keeps its meaning: the main
listener becomes HTTPS (tests/frontdoor/test_serve.py)."""

from __future__ import annotations

import asyncio
import base64
import http.client
import json
import shutil
import signal
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.config.settings import ConfigError, load_config
from tests.processes import LOOPS, free_port, gateway_output, spawn, wait_ready

from .conftest import ACCOUNT, PREVIEW, TOKEN
from .test_serve import curl

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed"),
]


@pytest.fixture(scope="module")
def simulator() -> Iterator[str]:
    port = free_port()
    process = spawn(None, "simulate", "--listen", f"127.0.0.1:{port}")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``gateway tls init`` and ``gateway tls issue``: ca.pem, PREVIEW.pem, PREVIEW-key.pem."""
    folder = tmp_path_factory.mktemp("tls")
    gateway_output("tls", "init", str(folder))
    gateway_output("tls", "issue", str(folder))
    return folder


def https_get(
    port: int, path: str, ca: Path, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    """Python's own HTTPS client: preview.twilio.com verified against ``ca``, dialled at
    127.0.0.1:``port`` (as the CoreDNS rewrite sends it there)."""
    context = ssl.create_default_context(cafile=str(ca))
    connection = http.client.HTTPSConnection(PREVIEW, port, timeout=20, context=context)
    raw = socket.create_connection(("127.0.0.1", port), timeout=20)
    connection.sock = context.wrap_socket(raw, server_hostname=PREVIEW)  # no DNS lookup
    token = base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
    try:
        connection.request(method, path, headers={"Authorization": f"Basic {token}"})
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def front_doors(metrics: str) -> dict[str, float]:
    """Requests on the route preview_available_add_ons by front door."""
    found: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics):
        for sample in family.samples:
            if sample.name == "gateway_requests_total" and (
                sample.labels["route"] == "preview_available_add_ons"
            ):
                door = sample.labels["front_door"]
                found[door] = found.get(door, 0.0) + sample.value
    return found


@pytest.mark.parametrize("loop", LOOPS)
@pytest.mark.upstream
async def test_one_process_serves_http_on_listen_and_https_on_tls_listen(
    loop: str, simulator: str, certificates: Path, tmp_path: Path
) -> None:
    port, tls_port = free_port(), free_port()
    log = tmp_path / "gateway.log"
    process = spawn(
        log,
        "serve", "--listen", f"127.0.0.1:{port}", "--tls-listen", f"127.0.0.1:{tls_port}",
        "--marketplace-upstream", simulator, "--api-upstream", simulator,
        "--tls-cert", str(certificates / f"{PREVIEW}.pem"),
        "--tls-key", str(certificates / f"{PREVIEW}-key.pem"),
        loop=loop,
    )  # fmt: skip
    ca = certificates / "ca.pem"
    plain = f"http://127.0.0.1:{port}"
    reach = ("--cacert", str(ca), "--connect-to", f"{PREVIEW}:443:127.0.0.1:{tls_port}")
    try:
        await wait_ready(plain, process, seconds=30)
        # Plain HTTP on --listen, as an app on http://marketplace-gateway.<ns>.svc calls it.
        rc, out, err = await curl(
            "-u", f"{ACCOUNT}:{TOKEN}", f"{plain}/marketplace/AvailableAddOns"
        )
        assert rc == 0, err
        add_on = json.loads(out)["available_add_ons"][0]
        assert add_on["url"] == f"{plain}/marketplace/AvailableAddOns/{add_on['sid']}"
        # HTTPS on --tls-listen, as an app sent to preview.twilio.com:443 by DNS calls it.
        rc, out, err = await curl(
            *reach, "-u", f"{ACCOUNT}:{TOKEN}", f"https://{PREVIEW}/marketplace/AvailableAddOns"
        )
        assert rc == 0, err
        add_on = json.loads(out)["available_add_ons"][0]
        assert add_on["url"] == f"https://{PREVIEW}/marketplace/AvailableAddOns/{add_on['sid']}"
        status, headers, body = await asyncio.to_thread(
            https_get, tls_port, "/marketplace/AvailableAddOns", ca
        )
        assert status == 200 and json.loads(body)["available_add_ons"][0]["sid"] == add_on["sid"]
        # HEAD over HTTPS too: the GET's headers, no body.
        status, head, body = await asyncio.to_thread(
            https_get, tls_port, "/marketplace/AvailableAddOns", ca, "HEAD"
        )
        assert (status, body) == (200, b"")
        assert head["Content-Length"] == headers["Content-Length"] and head["Sunset"]
        # Each port speaks its own protocol only.
        rc, out, _ = await curl(f"http://127.0.0.1:{tls_port}/healthz")
        assert rc != 0 or b'"ok"' not in out
        rc, _, _ = await curl("--cacert", str(ca), f"https://127.0.0.1:{port}/healthz")
        assert rc != 0
        # The same pipeline behind both: the metric tells the doors apart.
        rc, out, _ = await curl(f"{plain}/metrics")
        assert front_doors(out.decode()) == {"direct": 1.0, "tls": 3.0}
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, 20) == 0
    lines = log.read_text().splitlines()
    assert f"gateway 0.1.0 listening on http://127.0.0.1:{port}" in lines
    assert f"HTTPS listener on https://127.0.0.1:{tls_port}" in lines


def test_tls_listen_needs_a_certificate_and_its_own_port(certificates: Path) -> None:
    with pytest.raises(ConfigError, match="tls_listen needs tls_cert and tls_key"):
        load_config({"tls_listen": "127.0.0.1:8443"}, {})
    pair = {
        "tls_cert": str(certificates / f"{PREVIEW}.pem"),
        "tls_key": str(certificates / f"{PREVIEW}-key.pem"),
    }
    with pytest.raises(ConfigError, match="tls_listen must differ from listen"):
        load_config({**pair, "listen": "127.0.0.1:8443", "tls_listen": "127.0.0.1:8443"}, {})
    both = load_config({**pair, "tls_listen": "0.0.0.0:8443"}, {})
    assert (both.main_is_tls, both.tls_listen) == (False, ("0.0.0.0", 8443))
    assert load_config(pair, {}).main_is_tls  # --tls-cert alone: today's meaning
