"""A Java app (the JDK's HttpClient, ``-Dhttps.proxyHost``, a PKCS12 trust store made by the
keytool lines ``gateway tls init`` prints) and a Go app (net/http, ``HTTPS_PROXY`` and
``SSL_CERT_FILE``) list every page, create, list, delete and fetch again through the proxy front
door of a real ``gateway serve``, with the simulator as upstream and the CA from ``gateway tls
init``. Each client trusts only ``ca.pem`` (and public CAs): it gets there only because the
gateway serves each leaf followed by the intermediate. ``serve`` runs on uvloop (as installed)
and on asyncio's loop (as without uvloop)."""

from __future__ import annotations

import asyncio
import base64
import json
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.simulator import load_seed
from gateway.transport.factory import TRANSPORTS
from tests.processes import (
    LOOPS,
    free_port,
    gateway_output,
    runs_uvloop,
    spawn,
    wait_for_200,
)

from .conftest import ACCOUNT, PREVIEW, TOKEN
from .jvm_go_clients import Exchange, GoClient, JavaClient, exchanges, java_trust_properties

pytestmark = pytest.mark.slow

SEED = load_seed()
CATALOGUE = [a.sid for a in SEED.available_add_ons]
BASE = f"https://{PREVIEW}/marketplace"
CREDENTIALS = {"TWILIO_ACCOUNT_SID": ACCOUNT, "TWILIO_AUTH_TOKEN": TOKEN}
SYSTEM_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


@dataclass(frozen=True)
class Served:
    folder: Path
    root: Path  # ca.pem from `gateway tls init`
    proxy_port: int
    log: Path

    def access_lines(self, since: int) -> list[dict[str, object]]:
        lines = self.log.read_bytes()[since:].splitlines()
        return [json.loads(line) for line in lines if line.startswith(b'{"')]


@pytest.fixture(
    scope="module",
    params=[(loop, transport) for transport in TRANSPORTS for loop in LOOPS],
    ids="-".join,
)
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """``gateway simulate`` and ``gateway serve --proxy-listen`` on ``request.param``'s loop
    and upstream transport."""
    loop, transport = request.param
    folder = tmp_path_factory.mktemp(f"served-{loop}-{transport}")
    gateway_output("tls", "init", str(folder / "ca"))
    root, key = folder / "ca" / "ca.pem", folder / "ca" / "ca-key.pem"
    simulator_port, port, proxy_port = free_port(), free_port(), free_port()
    simulator_url = f"http://127.0.0.1:{simulator_port}"
    simulator = spawn(folder / "simulator.log", "simulate", "--listen", simulator_url[7:])
    log = folder / "gateway.log"
    gateway = spawn(
        log,
        "serve", "--listen", f"127.0.0.1:{port}",
        "--marketplace-upstream", simulator_url, "--api-upstream", simulator_url,
        "--proxy-listen", f"127.0.0.1:{proxy_port}",
        "--proxy-ca-cert", str(root), "--proxy-ca-key", str(key),
        "--upstream-transport", transport,
        loop=loop,
    )  # fmt: skip
    try:
        auth = base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
        asyncio.run(wait_for_200(f"http://127.0.0.1:{port}/readyz", failure="not ready",
                                 process=gateway))  # fmt: skip
        asyncio.run(
            wait_for_200(
                f"http://127.0.0.1:{port}/marketplace/AvailableAddOns",
                failure="the simulator did not answer through the gateway",
                headers={"Authorization": f"Basic {auth}"},
                process=gateway,
            )
        )
        assert runs_uvloop(gateway.pid) == (loop == "uvloop")
        yield Served(folder, root, proxy_port, log)
    finally:
        for process in (gateway, simulator):
            process.send_signal(signal.SIGTERM)
        assert gateway.wait(20) == 0
        simulator.wait(20)


def check_operations(found: list[Exchange], unique_name: str) -> None:
    """Every page of the catalogue, then create, list, delete and a 404, all at the Preview
    host with Preview's shapes."""
    pages = [e for e in found if e.url.startswith(f"{BASE}/AvailableAddOns")]
    assert [e.status for e in pages] == [200, 200, 200]  # 8 add-ons, 3 a page
    bodies = [json.loads(e.body) for e in pages]
    assert [a["sid"] for body in bodies for a in body["available_add_ons"]] == CATALOGUE
    assert all(
        b["meta"]["next_page_url"].startswith(f"{BASE}/AvailableAddOns?") for b in bodies[:2]
    )
    assert bodies[-1]["meta"]["next_page_url"] is None
    create, listing, delete, gone = found[len(pages) :]
    assert (create.method, create.status) == ("POST", 201)
    created = json.loads(create.body)
    sid = created["sid"]
    assert sid.startswith("XE") and created["unique_name"] == unique_name
    assert created["url"] == f"{BASE}/InstalledAddOns/{sid}"
    assert created["links"]["available_add_on"] == f"{BASE}/AvailableAddOns/{CATALOGUE[0]}"
    assert (listing.method, listing.status) == ("GET", 200)
    assert sid in [i["sid"] for i in json.loads(listing.body)["installed_add_ons"]]
    assert (delete.method, delete.status, delete.url) == ("DELETE", 204, created["url"])
    assert (gone.method, gone.status) == ("GET", 404)
    assert json.loads(gone.body)["code"] == 20404


async def check_access_log(served: Served, since: int) -> None:
    lines = served.access_lines(since)
    for _ in range(50):  # a line is written once its answer went out: it may trail the client
        if len(lines) >= 7:
            break
        await asyncio.sleep(0.1)
        lines = served.access_lines(since)
    assert [(line["route"], line["method"], line["status"]) for line in lines] == [
        ("preview_available_add_ons", "GET", 200),
        ("preview_available_add_ons", "GET", 200),
        ("preview_available_add_ons", "GET", 200),
        ("preview_installed_add_ons", "POST", 201),
        ("preview_installed_add_ons", "GET", 200),
        ("preview_installed_add_on", "DELETE", 204),
        ("preview_installed_add_on", "GET", 404),
    ]
    assert {line["front_door"] for line in lines} == {"proxy"}
    assert {line["consumer"] for line in lines} == {ACCOUNT}


async def test_java_httpclient_through_the_proxy_front_door(
    served: Served, java_client: JavaClient, tmp_path: Path
) -> None:
    store = java_client.trust_store(tmp_path, served.root)  # the printed keytool lines
    properties = {
        **java_trust_properties(store),
        "https.proxyHost": "127.0.0.1",
        "https.proxyPort": str(served.proxy_port),
    }
    since = served.log.stat().st_size
    out = await java_client.run("operations", properties=properties, env=CREDENTIALS)
    check_operations(exchanges(out), "java-httpclient")
    await check_access_log(served, since)


async def test_go_net_http_through_the_proxy_front_door(
    served: Served, go_client: GoClient, tmp_path: Path
) -> None:
    bundle = tmp_path / "bundle.pem"  # as printed: the system's CAs, then ca.pem
    system = SYSTEM_BUNDLE.read_bytes() if SYSTEM_BUNDLE.exists() else b""
    bundle.write_bytes(system + served.root.read_bytes())
    env = {
        **CREDENTIALS,
        "HTTPS_PROXY": f"http://127.0.0.1:{served.proxy_port}",
        "SSL_CERT_FILE": str(bundle),
    }
    since = served.log.stat().st_size
    out = await go_client.run("operations", env=env)
    check_operations(exchanges(out), "go-net-http")
    await check_access_log(served, since)
