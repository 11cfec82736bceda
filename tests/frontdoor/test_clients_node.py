"""twilio-cli 6.x and twilio-node (current major), unmodified, default base URL, through the
proxy front door with HTTP_PROXY and NODE_EXTRA_CA_CERTS; the simulator is the upstream."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.simulator import load_seed

from . import node_clients
from .conftest import ACCOUNT, PREVIEW, TOKEN, FrontStack, StackFactory

pytestmark = [pytest.mark.slow, pytest.mark.upstream]

SEED = load_seed()
CATALOGUE = [a.sid for a in SEED.available_add_ons]
BASE = f"https://{PREVIEW}/marketplace"


@pytest.fixture
async def stack(front_stack: StackFactory) -> FrontStack:
    node_clients.require_clients()
    return await front_stack()


def env_for(stack: FrontStack, home: Path) -> dict[str, str]:
    return node_clients.node_env(home, stack.proxy_url, stack.ca.cert, ACCOUNT, TOKEN)


async def test_twilio_cli_manages_installed_add_ons_through_the_proxy(
    stack: FrontStack, tmp_path: Path
) -> None:
    assert node_clients.installed_version("twilio-cli").startswith("6.")
    env = env_for(stack, tmp_path / "home")
    cli = node_clients.twilio_cli
    prefix = "api:preview:marketplace"

    available = await cli(env, f"{prefix}:available-add-ons:list")
    assert [a["sid"] for a in available] == CATALOGUE
    assert available[0]["url"] == f"{BASE}/AvailableAddOns/{CATALOGUE[0]}"

    created = await cli(
        env,
        f"{prefix}:installed-add-ons:create",
        "--available-add-on-sid",
        CATALOGUE[1],
        "--accept-terms-of-service",
        "--unique-name",
        "from-the-cli",
    )
    assert len(created) == 1
    sid = created[0]["sid"]
    assert sid.startswith("XE") and created[0]["uniqueName"] == "from-the-cli"
    assert created[0]["accountSid"] == ACCOUNT
    assert created[0]["url"] == f"{BASE}/InstalledAddOns/{sid}"

    listed = await cli(env, f"{prefix}:installed-add-ons:list")
    assert [i["sid"] for i in listed] == [sid]
    fetched = await cli(env, f"{prefix}:installed-add-ons:fetch", "--sid", sid)
    assert (fetched[0]["sid"], fetched[0]["uniqueName"]) == (sid, "from-the-cli")
    updated = await cli(
        env, f"{prefix}:installed-add-ons:update", "--sid", sid, "--unique-name", "renamed"
    )
    assert (updated[0]["sid"], updated[0]["uniqueName"]) == (sid, "renamed")
    rc, out, err = await node_clients.run(
        [str(node_clients.BIN / "twilio"), f"{prefix}:installed-add-ons:remove", "--sid", sid],
        env,
    )
    assert rc == 0 and "deleted" in (out + err).lower(), (out, err)
    assert await cli(env, f"{prefix}:installed-add-ons:list") is None  # empty: no JSON printed

    lines = stack.access_lines()
    assert [(line["route"], line["method"], line["status"]) for line in lines] == [
        ("preview_available_add_ons", "GET", 200),
        ("preview_installed_add_ons", "POST", 201),
        ("preview_installed_add_ons", "GET", 200),
        ("preview_installed_add_on", "GET", 200),
        ("preview_installed_add_on", "POST", 200),
        ("preview_installed_add_on", "DELETE", 204),
        ("preview_installed_add_ons", "GET", 200),
    ]
    assert {line["front_door"] for line in lines} == {"proxy"}
    assert {line["consumer"] for line in lines} == {ACCOUNT}
    # No update check, auto-update or analytics ran: nothing but the calls above went out.
    home = tmp_path / "home"
    assert not [p for p in home.rglob("*") if "autoupdate" in p.name or p.name == "version"]


async def test_twilio_cli_shows_a_gateway_404_as_twilio_error(
    stack: FrontStack, tmp_path: Path
) -> None:
    env = env_for(stack, tmp_path / "home")
    rc, out, err = await node_clients.run(
        [
            str(node_clients.BIN / "twilio"),
            "api:preview:marketplace:installed-add-ons:fetch",
            "--sid",
            "XE" + "0" * 32,
            "-o",
            "json",
        ],
        env,
    )
    assert rc != 0
    assert "20404" in out + err


async def test_twilio_node_every_preview_operation_and_every_page(
    stack: FrontStack, tmp_path: Path
) -> None:
    env = env_for(stack, tmp_path / "home")
    rc, out, err = await node_clients.run(["node", "preview_operations.js"], env)
    assert rc == 0, err
    result = json.loads(out)
    assert result["version"].split(".")[0] == "6"
    pages = result["availablePages"]
    assert [sid for page in pages for sid in page["sids"]] == CATALOGUE
    assert len(pages) == 3  # 8 add-ons, 3 a page: paged to the last page
    # every next page is asked for at the Preview host again, so it comes back through the proxy
    assert all(page["next"].startswith(f"{BASE}/AvailableAddOns?") for page in pages[:-1])
    assert pages[-1]["next"] is None
    assert result["availableFetch"]["url"] == f"{BASE}/AvailableAddOns/{CATALOGUE[0]}"
    assert result["availableFetch"]["links"] == {
        "extensions": f"{BASE}/AvailableAddOns/{CATALOGUE[0]}/Extensions"
    }
    assert sum(len(p["sids"]) for p in result["availableExtensionPages"]) == 5
    assert len(result["availableExtensionPages"]) == 3
    assert result["availableExtensionFetch"]["url"].startswith(
        f"{BASE}/AvailableAddOns/{CATALOGUE[7]}/Extensions/"
    )
    created = result["created"]
    assert created["url"] == f"{BASE}/InstalledAddOns/{created['sid']}"
    installed = [sid for page in result["installedPages"] for sid in page["sids"]]
    assert len(installed) == 6 and len(result["installedPages"]) == 3
    assert result["installedFetch"] == {"sid": created["sid"], "uniqueName": "node-google"}
    assert result["installedUpdate"] == {"sid": created["sid"], "uniqueName": "renamed"}
    assert sum(len(p["sids"]) for p in result["installedExtensionPages"]) == 5
    assert result["installedExtensionFetch"]["enabled"] is False
    assert result["installedExtensionUpdate"]["enabled"] is True
    assert result["removed"] == [True] * 6
    assert result["notFound"] == {"status": 404, "code": 20404}

    lines = stack.access_lines()
    routes = {line["route"] for line in lines}
    assert routes == {
        "preview_available_add_ons",
        "preview_available_add_on",
        "preview_available_add_on_extensions",
        "preview_available_add_on_extension",
        "preview_installed_add_ons",
        "preview_installed_add_on",
        "preview_installed_add_on_extensions",
        "preview_installed_add_on_extension",
    }
    assert {line["front_door"] for line in lines} == {"proxy"}
    assert {line["method"] for line in lines} == {"GET", "POST", "DELETE"}
