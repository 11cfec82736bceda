"""twilio-python 9.x (the pinned 9.11.0), unmodified: no base_url change, only HTTPS_PROXY and
REQUESTS_CA_BUNDLE in the environment. All 12 Preview operations, every page, a 404."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import twilio
from twilio.base.exceptions import TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from gateway.cli import main
from gateway.simulator import load_seed
from tests.conftest import PREVIEW_OPERATIONS

from .conftest import ACCOUNT, PREVIEW, TOKEN, FrontStack, StackFactory

T = TypeVar("T")
SEED = load_seed()
CATALOGUE = [a.sid for a in SEED.available_add_ons]
BASE = f"https://{PREVIEW}/marketplace"


async def run(call: Callable[[], T]) -> T:
    return await asyncio.wait_for(asyncio.to_thread(call), 30)


@pytest.fixture
async def stack(front_stack: StackFactory, monkeypatch: pytest.MonkeyPatch) -> FrontStack:
    started = await front_stack()
    for name in ("TWILIO_REGION", "TWILIO_EDGE", "NO_PROXY", "no_proxy", "HTTP_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", started.proxy_url)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(started.ca.cert))
    return started


@pytest.fixture(autouse=True)
def close_clients(front_stack: StackFactory) -> Iterator[None]:
    """Close each client's pooled connections at the end, before the servers stop (this
    fixture is torn down before ``front_stack``, which it depends on)."""
    yield
    for http_client in OPEN:
        if http_client.session is not None:
            http_client.session.close()
    OPEN.clear()


OPEN: list[TwilioHttpClient] = []


def new_client() -> Client:
    http_client = TwilioHttpClient(timeout=20)
    OPEN.append(http_client)
    client = Client(ACCOUNT, TOKEN, http_client=http_client)
    assert client.preview.base_url == f"https://{PREVIEW}"  # untouched
    return client


def routes(stack: FrontStack) -> list[tuple[str, str, int]]:
    return [(line["route"], line["method"], line["status"]) for line in stack.access_lines()]


@pytest.mark.upstream
async def test_all_twelve_operations_every_page_and_a_404(stack: FrontStack) -> None:
    await twelve_operations_every_page_and_a_404(stack, "proxy")


async def twelve_operations_every_page_and_a_404(stack: FrontStack, door: str) -> None:
    """The unmodified client against https://preview.twilio.com, however it gets there."""
    assert twilio.__version__.startswith("9.")
    marketplace = new_client().preview.marketplace
    available = marketplace.available_add_ons

    # 1 list AvailableAddOns, every page (8 add-ons, 3 a page)
    assert [a.sid for a in await run(lambda: available.list(page_size=3))] == CATALOGUE
    # 2 fetch AvailableAddOn
    first = await run(lambda: available(CATALOGUE[0]).fetch())
    assert first.url == f"{BASE}/AvailableAddOns/{CATALOGUE[0]}"
    google = available(CATALOGUE[7])
    # 3 list AvailableAddOn Extensions, every page
    extensions = await run(lambda: google.extensions.list(page_size=2))
    assert len(extensions) == 5
    # 4 fetch AvailableAddOn Extension
    one = await run(lambda: google.extensions(extensions[1].sid).fetch())
    assert one.url == f"{BASE}/AvailableAddOns/{CATALOGUE[7]}/Extensions/{one.sid}"

    installed = marketplace.installed_add_ons
    # 5 create InstalledAddOn
    created = await run(
        lambda: installed.create(
            available_add_on_sid=CATALOGUE[7],
            accept_terms_of_service=True,
            configuration={"language_code": "en-US"},
            unique_name="python-google",
        )
    )
    assert created.url == f"{BASE}/InstalledAddOns/{created.sid}"
    assert created.links["available_add_on"] == f"{BASE}/AvailableAddOns/{CATALOGUE[7]}"
    others = []
    for sid in CATALOGUE[1:4]:
        item = await run(
            lambda sid=sid: installed.create(available_add_on_sid=sid, accept_terms_of_service=True)
        )
        others.append(item.sid)
    # 6 list InstalledAddOns, every page
    assert [i.sid for i in await run(lambda: installed.list(page_size=3))] == [created.sid, *others]
    # 7 fetch, 8 update InstalledAddOn
    assert (await run(lambda: installed(created.sid).fetch())).unique_name == "python-google"
    updated = await run(lambda: installed(created.sid).update(unique_name="renamed"))
    assert updated.unique_name == "renamed"
    # 9 list, 10 fetch, 11 update InstalledAddOn Extension
    own = installed(created.sid).extensions
    own_extensions = await run(lambda: own.list(page_size=2))
    assert len(own_extensions) == 5
    assert (await run(lambda: own(own_extensions[0].sid).fetch())).enabled is False
    assert (await run(lambda: own(own_extensions[0].sid).update(enabled=True))).enabled is True
    # 12 delete InstalledAddOn
    for sid in (created.sid, *others):
        assert await run(lambda sid=sid: installed(sid).delete()) is True
    # and a 404, raised as Twilio's exception
    with pytest.raises(TwilioRestException) as caught:
        await run(lambda: installed(created.sid).fetch())
    assert (caught.value.status, caught.value.code) == (404, 20404)

    seen = routes(stack)
    assert seen.count(("preview_available_add_ons", "GET", 200)) == 3  # every page
    assert seen.count(("preview_available_add_on_extensions", "GET", 200)) == 3
    assert seen.count(("preview_installed_add_ons", "GET", 200)) == 2
    assert seen.count(("preview_installed_add_on_extensions", "GET", 200)) == 3
    assert {(route, method) for route, method, _ in seen} == PREVIEW_OPERATIONS
    assert seen[-1] == ("preview_installed_add_on", "GET", 404)
    assert {line["front_door"] for line in stack.access_lines()} == {door}


async def test_without_the_ca_bundle_verification_fails(
    stack: FrontStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    import requests

    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    with pytest.raises(requests.exceptions.SSLError):
        await run(lambda: new_client().preview.marketplace.available_add_ons.list())
    assert stack.access_lines() == []


@pytest.mark.upstream
async def test_over_the_tls_listener_when_dns_sends_the_preview_host_to_the_gateway(
    front_stack: StackFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The DNS deployment: preview.twilio.com resolves to the gateway, whose main listener
    speaks HTTPS with a certificate from ``gateway tls issue``. The resolver answer is the one
    thing stood in for here (a hosts entry or CoreDNS rewrite in production, with 443 mapped to
    the listener's port); the client trusts the CA from ``gateway tls init``."""
    assert main(["tls", "init", str(tmp_path / "dns")]) == 0
    assert main(["tls", "issue", str(tmp_path / "dns")]) == 0
    stack = await front_stack(
        tls_cert=tmp_path / "dns" / f"{PREVIEW}.pem",
        tls_key=tmp_path / "dns" / f"{PREVIEW}-key.pem",
    )
    port = int(stack.gateway_url.rsplit(":", 1)[1])
    assert stack.gateway_url.startswith("https://")
    real_getaddrinfo = socket.getaddrinfo

    def resolve(host: Any, service: Any, *args: Any, **kwargs: Any) -> Any:
        if host == PREVIEW and service in (443, "443", "https"):
            return real_getaddrinfo("127.0.0.1", port, *args, **kwargs)
        return real_getaddrinfo(host, service, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    for name in ("TWILIO_REGION", "TWILIO_EDGE", "HTTPS_PROXY", "HTTP_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(tmp_path / "dns" / "ca.pem"))
    await twelve_operations_every_page_and_a_404(stack, "tls")
