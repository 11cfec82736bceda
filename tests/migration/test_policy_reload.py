"""The staged-migration policy reloads with the rest of the config (real ``gateway serve``
processes and the simulator): a cut-off added by a SIGHUP applies to the next request, a broken
entry refuses the reload while the old policy keeps serving, and ``--watch-config`` picks up a
closed list."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import aiohttp
import pytest

from tests.fleet import deprecated_call, fleet_processes, iso, wait_fleet_ready
from tests.reloading import reload_counts

pytestmark = [pytest.mark.slow, pytest.mark.upstream]

APP = "AC" + "a9" * 16
OTHER = "AC" + "00" * 16  # not on the list


def policy(cutoff: str = "", sid: str = APP, unknown: str = "") -> str:
    head = f'unknown_consumers_cutoff = "{unknown}"\n' if unknown else ""
    return (
        head
        + f'[[consumers]]\nsid = "{sid}"\nname = "reload-app"\n'
        + (f"cutoff = {cutoff}\n" if cutoff else "")
    )


async def status(session: aiohttp.ClientSession, url: str, sid: str | None = APP) -> int:
    return await deprecated_call(session, url, sid)


async def reloads(session: aiohttp.ClientSession, url: str, result: str, value: float) -> None:
    deadline = time.monotonic() + 20
    while True:
        async with session.get(f"{url}/metrics") as response:
            found = reload_counts(await response.text()).get(result, 0)
        if found >= value or time.monotonic() > deadline:
            assert found == value, (result, found)
            return
        await asyncio.sleep(0.05)


async def test_sighup_applies_a_cutoff_and_a_broken_entry_keeps_the_old_policy(
    tmp_path: Path,
) -> None:
    config = tmp_path / "policy.toml"
    config.write_text(policy(), "utf-8")
    with fleet_processes(1, ["--config", str(config)], tmp_path) as (fleet, gateways):
        await wait_fleet_ready(fleet, gateways)
        url, process = fleet.urls[0], gateways[0]
        async with aiohttp.ClientSession() as session:
            assert await status(session, url) == 200
            config.write_text(policy(cutoff=iso(time.time() - 60)), "utf-8")
            process.send_signal(signal.SIGHUP)
            await reloads(session, url, "success", 1)
            assert await status(session, url) == 410  # the very next request
            async with session.get(f"{url}/migration.json") as response:
                (row,) = (await response.json())["consumers"][:1]
            assert (row["name"], row["stage"]) == ("reload-app", "cut_off")
            config.write_text(policy(cutoff='"2026-13-01"'), "utf-8")  # a bad date
            process.send_signal(signal.SIGHUP)
            await reloads(session, url, "invalid", 1)
            assert await status(session, url) == 410  # the old policy keeps serving
            assert await status(session, url, sid=OTHER) == 200
    log = (tmp_path / "gateway-0.log").read_text()
    assert (
        "config reload on SIGHUP refused, the previous configuration keeps serving: config file "
        f"{config}, [[consumers]] entry 1 (name 'reload-app'), key 'cutoff'"
    ) in log


async def test_watch_config_closes_the_list(tmp_path: Path) -> None:
    config = tmp_path / "policy.toml"
    config.write_text(policy(), "utf-8")
    args = ["--config", str(config), "--watch-config"]
    with fleet_processes(1, args, tmp_path) as (fleet, gateways):
        await wait_fleet_ready(fleet, gateways)
        url = fleet.urls[0]
        async with aiohttp.ClientSession() as session:
            assert await status(session, url, sid=OTHER) == 200
            assert await status(session, url, sid=None) == 401  # forwarded: v1 wants a login
            config.write_text(policy(unknown=iso(time.time() - 1)), "utf-8")
            await reloads(session, url, "success", 1)
            assert await status(session, url, sid=None) == 410
            assert await status(session, url, sid=OTHER) == 410
            assert await status(session, url) == 200  # listed: still served
