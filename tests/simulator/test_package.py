"""Package surface: public names, standalone imports, default app."""

from __future__ import annotations

import ast
import io
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlencode

import gateway.simulator
from gateway.simulator import create_simulator_app

from .conftest import Caller, SimClient, new_account

PACKAGE = Path(gateway.simulator.__file__).parent


def test_public_api() -> None:
    assert gateway.simulator.__all__ == ["Seed", "create_simulator_app", "load_seed"]


def test_simulator_never_imports_the_gateway_core() -> None:
    for module in sorted(PACKAGE.glob("*.py")):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.level <= 1, f"{module.name} reaches outside gateway.simulator"
                name = node.module or ""
                if node.level == 0:
                    assert not name.startswith("gateway") or name.startswith("gateway.simulator"), (
                        module
                    )
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    name = alias.name
                    assert not name.startswith("gateway") or name.startswith("gateway.simulator"), (
                        module
                    )


async def test_default_app_serves_the_packaged_seed(
    aiohttp_client: Callable[..., Awaitable[SimClient]],
) -> None:
    caller = Caller(await aiohttp_client(create_simulator_app()), new_account())
    reply = await caller.get("/v1/AvailableAddOns")
    assert len(reply.json["available_add_ons"]) == 8


async def test_large_listing_fields_are_accepted(caller: Caller) -> None:
    policies = '{"privacy": "' + "p" * (2 * 1024 * 1024) + '"}'
    reply = await caller.post("/v1/Listings", data={"ModuleInfo": '{"name": "big"}'})
    body = io.BytesIO(urlencode({"Policies": policies}).encode())  # raw bytes > 1 MB warn
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    updated = await caller.post(reply.json["url"], data=body, headers=headers)
    assert updated.status == 200 and len(updated.json["policies"]["privacy"]) == 2 * 1024 * 1024
