"""Reloading real ``gateway serve`` processes: SIGHUP under load, refused files, settings that
need a restart, ``--watch-config`` on a ConfigMap-style mount, and ``--workers 2``."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.processes import free_port, run_gateway, spawn, wait_ready
from tests.reloading import (
    SUNSET_HEADER,
    SUNSET_NEW,
    SUNSET_OLD,
    config_text,
    configmap_write,
    reload_counts,
    rules_text,
)

pytestmark = [pytest.mark.slow, pytest.mark.upstream]

OLD = ("/v1/Old", SUNSET_HEADER[SUNSET_OLD])
NEW = ("/v1/New", SUNSET_HEADER[SUNSET_NEW])
LEGACY = "/marketplace/AvailableAddOns"


class EchoUpstream:
    """Answers every call after ``delay`` seconds with the path it was called on, and notes
    when each numbered call (``?n=``) arrived."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.arrived: dict[int, float] = {}
        self.url = ""

    async def handle(self, request: web.Request) -> web.Response:
        if "n" in request.query:
            self.arrived[int(request.query["n"])] = time.monotonic()
        await asyncio.sleep(self.delay)
        return web.json_response({"path": request.path})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app


@pytest.fixture
async def echo(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> EchoUpstream:
    upstream = EchoUpstream(delay=0.05)
    server = await aiohttp_server(upstream.app())
    upstream.url = str(server.make_url("")).rstrip("/")
    return upstream


@dataclass
class Gateway:
    process: subprocess.Popen[bytes]
    url: str
    log: Path
    config: Path
    rules: Path

    def hangup(self) -> None:
        self.process.send_signal(signal.SIGHUP)

    def log_lines(self, needle: str) -> list[str]:
        return [line for line in self.log.read_text().splitlines() if needle in line]


Starter = Callable[..., Awaitable[Gateway]]


@pytest.fixture
async def gateway(tmp_path: Path, echo: EchoUpstream) -> AsyncIterator[Starter]:
    """``await gateway(*flags, **config_keys)``: ``gateway serve`` on a config file (with the
    listen address in it) and a rules directory holding the old rule."""
    started: list[subprocess.Popen[bytes]] = []

    async def start(*flags: str, **keys: object) -> Gateway:
        rules = tmp_path / "rules"
        rules.mkdir(exist_ok=True)
        (rules / "legacy.toml").write_text(rules_text("/v1/Old", SUNSET_OLD))
        port = free_port()
        keys.setdefault("listen", f"127.0.0.1:{port}")
        config = tmp_path / "gateway.toml"
        config.write_text(config_text(echo.url, rules, **keys))
        log = tmp_path / "gateway.log"
        process = spawn(log, "serve", "--config", str(config), *flags)
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        await wait_ready(url, process, seconds=30)
        return Gateway(process, url, log, config, rules)

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.to_thread(process.wait, 30)
            except subprocess.TimeoutExpired:
                process.kill()


async def counts(session: aiohttp.ClientSession, url: str) -> dict[str, float]:
    async with session.get(f"{url}/metrics") as response:
        return reload_counts(await response.text())


async def wait_counts(
    session: aiohttp.ClientSession, url: str, result: str, value: float, seconds: float = 30
) -> dict[str, float]:
    """Poll /metrics until ``gateway_config_reloads_total{result}`` reaches ``value``."""
    deadline = time.monotonic() + seconds
    while True:
        found = await counts(session, url)
        if found.get(result, 0) >= value or time.monotonic() > deadline:
            assert found.get(result, 0) == value, found
            return found
        await asyncio.sleep(0.05)


async def answer(session: aiohttp.ClientSession, url: str) -> tuple[str, str]:
    """The upstream path and the Sunset header of one legacy call."""
    async with session.get(url + LEGACY) as response:
        assert response.status == 200, await response.text()
        return (await response.json())["path"], response.headers["Sunset"]


@dataclass
class Result:
    sent: float
    done: float
    status: int
    answer: tuple[str, str]


async def test_2000_requests_in_flight_across_a_sighup(
    echo: EchoUpstream, gateway: Starter
) -> None:
    # no pool queue: every request really waits on the upstream; 2,000 connections at once
    gw = await gateway(pool_size=0, max_client_connections=4096)
    echo.delay = 1.0  # each request is in flight for at least a second
    total, signal_at = 2000, 1000
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=timeout
    ) as session:

        async def one(n: int) -> Result | BaseException:
            sent = time.monotonic()
            try:
                async with session.get(f"{gw.url}{LEGACY}?n={n}") as response:
                    body = await response.json()
                    pair = (body["path"], response.headers.get("Sunset", ""))
                    return Result(sent, time.monotonic(), response.status, pair)
            except (aiohttp.ClientError, TimeoutError, ValueError, KeyError) as exc:
                return exc

        tasks: list[asyncio.Task[Result | BaseException]] = []
        reloaded: asyncio.Task[float] | None = None

        async def reload_seen() -> float:
            await wait_counts(session, gw.url, "success", 1)
            return time.monotonic()  # an upper bound: the swap happened before this

        for n in range(total):
            if n == total - 300:  # the last 300 go once the reload is seen, however slow it is
                assert reloaded is not None
                reloaded_at = await reloaded
            if n == signal_at:
                (gw.rules / "legacy.toml").write_text(rules_text("/v1/New", SUNSET_NEW))
                signalled = time.monotonic()
                gw.hangup()
                reloaded = asyncio.create_task(reload_seen())
            tasks.append(asyncio.create_task(one(n)))
            if n % 10 == 9:
                await asyncio.sleep(0.01)  # about 1,000 a second: 2 s of sending
        results = await asyncio.gather(*tasks)
        assert await counts(session, gw.url) == {"success": 1, "restart_required": 0, "invalid": 0}

    errors = [r for r in results if not isinstance(r, Result)]
    assert errors == []
    done = [r for r in results if isinstance(r, Result)]
    assert {r.status for r in done} == {200}
    # Each answer is whole: the rules that matched it also wrote its headers.
    assert {r.answer for r in done} == {OLD, NEW}
    # Matched before the signal (the upstream had them), so finished on the old rules ...
    before = [n for n, at in echo.arrived.items() if at < signalled]
    assert all(done[n].answer == OLD for n in before)
    # ... and many of those were still in flight when the signal landed and the swap was made.
    in_flight = [n for n in before if done[n].done > signalled]
    assert len(in_flight) >= 100, len(in_flight)
    # Sent after the reload was counted: the new rules.
    after = [r for r in done if r.sent > reloaded_at]
    assert len(after) >= 300 and all(r.answer == NEW for r in after)
    print(
        f"reload seen {reloaded_at - signalled:.3f} s after the signal; "
        f"in flight at the signal: {len(in_flight)}; old answers: "
        f"{sum(r.answer == OLD for r in done)}; new: {sum(r.answer == NEW for r in done)}"
    )
    assert len(gw.log_lines("config reloaded on SIGHUP")) == 1


async def test_broken_rules_or_config_change_nothing(gateway: Starter) -> None:
    gw = await gateway()
    # Valid TOML and a valid rule on its own, but its sunset falls before the configured
    # deprecation: what gateway.config.validation (the check of `gateway rules check`) refuses.
    broken_rule = rules_text("/v1/New", "2020-01-01T00:00:00Z")
    async with aiohttp.ClientSession() as session:
        (gw.rules / "legacy.toml").write_text(broken_rule)
        gw.hangup()
        await wait_counts(session, gw.url, "invalid", 1)
        assert await answer(session, gw.url) == OLD
        (gw.rules / "legacy.toml").write_text(rules_text("/v1/New", SUNSET_NEW))
        good_config = gw.config.read_text()
        gw.config.write_text(good_config + "read_timeout = -1\n")
        gw.hangup()
        await wait_counts(session, gw.url, "invalid", 2)
        assert await answer(session, gw.url) == OLD
        gw.config.write_bytes(b"\xff" + good_config.encode())  # not UTF-8
        gw.hangup()
        await wait_counts(session, gw.url, "invalid", 3)
        assert await answer(session, gw.url) == OLD
        assert await counts(session, gw.url) == {"success": 0, "restart_required": 0, "invalid": 3}
        refused = gw.log_lines("refused")
        assert len(refused) == 3 and all(" ERROR " in line for line in refused)
        assert "rule 'legacy_list'" in refused[0]
        assert "read_timeout" in refused[1]
        assert refused[2].endswith(
            f"config file {gw.config}: not UTF-8 text (byte 0xff at offset 0); save it as UTF-8"
        )
        gw.config.write_text(good_config)
        gw.hangup()
        await wait_counts(session, gw.url, "success", 1)
        assert await answer(session, gw.url) == NEW
    assert gw.process.poll() is None
    # `gateway rules check` refuses the broken rule with the message the reload logged.
    (gw.rules / "legacy.toml").write_text(broken_rule)
    check = run_gateway("rules", "check", "--config", str(gw.config))
    assert check.returncode == 2
    assert check.stderr.strip().removeprefix("gateway: ") in refused[0]


async def test_an_editors_dot_files_in_the_rules_folder_do_not_stop_a_reload(
    gateway: Starter,
) -> None:
    """Editing legacy.toml in emacs leaves a lock, ``.#legacy.toml``, a symlink to nowhere;
    other editors and tools leave hidden copies. They are no rule files: the reload reads
    legacy.toml alone, and --watch-config is not woken by them either."""
    gw = await gateway("--watch-config")
    (gw.rules / ".#legacy.toml").symlink_to("someone@host.4242:1700000000")
    (gw.rules / ".legacy.toml").write_text(rules_text("/v1/Hidden", SUNSET_OLD))  # a clash
    async with aiohttp.ClientSession() as session:
        await asyncio.sleep(1.5)  # more than a watch interval: nothing it looks at changed
        assert await counts(session, gw.url) == {"success": 0, "restart_required": 0, "invalid": 0}
        (gw.rules / "legacy.toml").write_text(rules_text("/v1/New", SUNSET_NEW))
        await wait_counts(session, gw.url, "success", 1)  # seen by the watch
        assert await answer(session, gw.url) == NEW
        gw.hangup()
        await wait_counts(session, gw.url, "success", 2)
        assert await counts(session, gw.url) == {"success": 2, "restart_required": 0, "invalid": 0}
    assert gw.process.poll() is None and not gw.log_lines("refused")


async def test_a_setting_that_needs_a_restart_is_named_and_the_rest_applied(
    gateway: Starter,
) -> None:
    gw = await gateway(pool_size=50)
    other_port = free_port()
    text = gw.config.read_text().replace("pool_size = 50", "pool_size = 10")
    text = text.replace(gw.url.removeprefix("http://"), f"127.0.0.1:{other_port}")
    gw.config.write_text(text)
    (gw.rules / "legacy.toml").write_text(rules_text("/v1/New", SUNSET_NEW))
    gw.hangup()
    async with aiohttp.ClientSession() as session:
        await wait_counts(session, gw.url, "restart_required", 1)
        assert await answer(session, gw.url) == NEW  # the rules were applied
        with pytest.raises(aiohttp.ClientConnectionError):
            await session.get(f"http://127.0.0.1:{other_port}/healthz")
    [line] = gw.log_lines("config reloaded")
    assert " WARNING " in line and line.endswith("not applied until a restart: listen, pool_size")


async def test_watch_config_follows_a_configmap_symlink_swap(
    tmp_path: Path, echo: EchoUpstream
) -> None:
    mount = tmp_path / "etc"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = config_text(echo.url, mount / "rules", listen=f"127.0.0.1:{port}")
    configmap_write(mount / "config", {"gateway.toml": config})
    configmap_write(mount / "rules", {"legacy.toml": rules_text("/v1/Old", SUNSET_OLD)})
    log = tmp_path / "gateway.log"
    config_file = mount / "config" / "gateway.toml"
    process = spawn(log, "serve", "--config", str(config_file), "--watch-config")
    try:
        await wait_ready(url, process, seconds=30)
        async with aiohttp.ClientSession() as session:
            assert await answer(session, url) == OLD
            # A new key in a new data directory; the old key goes away.
            configmap_write(mount / "rules", {"renamed.toml": rules_text("/v1/New", SUNSET_NEW)})
            await wait_counts(session, url, "success", 1)
            assert await answer(session, url) == NEW
            configmap_write(mount / "rules", {"renamed.toml": "[[rule]\n"})
            await wait_counts(session, url, "invalid", 1)
            assert await answer(session, url) == NEW
            # The config ConfigMap: a brownout over the whole day refuses the legacy route.
            configmap_write(
                mount / "config",
                {
                    "gateway.toml": config
                    + 'brownouts = "2020-01-01T00:00:00Z/2099-01-01T00:00:00Z"\n'
                },
            )
            configmap_write(mount / "rules", {"renamed.toml": rules_text("/v1/New", SUNSET_NEW)})
            await wait_counts(session, url, "success", 2, seconds=30)
            async with session.get(url + LEGACY) as response:
                assert response.status == 410
            await asyncio.sleep(2.5)  # more polls: nothing changed, nothing reloaded
            assert await counts(session, url) == {
                "success": 2,
                "restart_required": 0,
                "invalid": 1,
            }
        lines = log.read_text()
        assert "config reloaded on file change" in lines and "brownouts" in lines
    finally:
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, 30) == 0


def children(pid: int) -> set[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found.add(int(entry.name))
    return found


async def test_workers_all_reload_and_none_is_restarted(tmp_path: Path, echo: EchoUpstream) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "legacy.toml").write_text(rules_text("/v1/Old", SUNSET_OLD))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config = tmp_path / "gateway.toml"
    config.write_text(config_text(echo.url, rules, listen=f"127.0.0.1:{port}", workers=2))
    log = tmp_path / "gateway.log"
    supervisor = spawn(log, "serve", "--config", str(config))
    try:
        deadline = time.monotonic() + 30
        while len(workers := children(supervisor.pid)) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        assert len(workers) == 2
        # At once, while the workers are still starting: held until they can reload, not fatal.
        supervisor.send_signal(signal.SIGHUP)
        await wait_ready(url, supervisor, seconds=30)
        async with aiohttp.ClientSession() as session:
            await wait_counts(session, url, "success", 2)  # one per worker, summed
            (rules / "legacy.toml").write_text(rules_text("/v1/New", SUNSET_NEW))
            supervisor.send_signal(signal.SIGHUP)
            await wait_counts(session, url, "success", 4)
        # New connections, spread by the kernel over both workers: all on the new rules.
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True)
        ) as session:
            answers = await asyncio.gather(*(answer(session, url) for _ in range(40)))
            assert set(answers) == {NEW}
            config.write_text(config.read_text().replace("workers = 2", "workers = 3"))
            supervisor.send_signal(signal.SIGHUP)
            await wait_counts(session, url, "restart_required", 2)
        assert children(supervisor.pid) == workers  # no worker died or was restarted
        text = log.read_text()
        assert "restarting" not in text
        assert text.count("not applied until a restart: workers") == 2
    finally:
        supervisor.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(supervisor.wait, 30) == 0
    assert os.path.exists(log)
