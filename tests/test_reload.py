"""gateway.reload in one process: what a reload swaps, what it keeps, what it refuses.

The real ``gateway serve`` processes (SIGHUP, --watch-config, --workers) are exercised in
tests/test_reload_serve.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from prometheus_client import REGISTRY

from gateway.app import LIVE, TRANSPORT, create_app
from gateway.config.options import OPTIONS_BY_NAME
from gateway.config.settings import ConfigSource, load_config
from gateway.reload import LIVE_OPTIONS, Reloader, fingerprint, restart_only_changes
from tests.conftest import AUTH_HEADER, make_config
from tests.fake_upstream import FakeUpstream
from tests.processes import python_output
from tests.reloading import SUNSET_HEADER, SUNSET_NEW, SUNSET_OLD, config_text, rules_text

Client = TestClient[web.Request, web.Application]
ClientFactory = Callable[..., Awaitable[Client]]

OTHER_SID = "SK" + "cd" * 16
OTHER_AUTH = "Basic " + __import__("base64").b64encode(f"{OTHER_SID}:x".encode()).decode()


def reloads(result: str) -> float:
    return REGISTRY.get_sample_value("gateway_config_reloads_total", {"result": result}) or 0.0


def sunset_gauge(route: str) -> float | None:
    return REGISTRY.get_sample_value("gateway_sunset_timestamp_seconds", {"route": route})


class Files:
    """A config file and a rules directory under ``tmp_path``, and the source that reads them."""

    def __init__(self, tmp_path: Path, upstream: str) -> None:
        self.config = tmp_path / "gateway.toml"
        self.rules = tmp_path / "rules"
        self.rules.mkdir()
        self.upstream = upstream
        self.write_rules("/v1/Old", SUNSET_OLD)
        self.write_config()
        self.source = ConfigSource({"config": str(self.config)}, {})

    def write_rules(self, target: str, sunset: str, name: str = "legacy_list") -> None:
        (self.rules / "legacy.toml").write_text(rules_text(target, sunset, name))

    def write_config(self, **extra: object) -> None:
        self.config.write_text(config_text(self.upstream, self.rules, **extra))


@pytest.fixture
def files(tmp_path: Path, fake_upstream: FakeUpstream) -> Files:
    return Files(tmp_path, fake_upstream.url)


async def serve(
    files: Files, aiohttp_client: ClientFactory
) -> tuple[Client, web.Application, Reloader]:
    app = create_app(files.source.load())
    client = await aiohttp_client(app)
    return client, app, Reloader(app[LIVE], files.source)


async def upstream_path(client: Client, upstream: FakeUpstream, auth: str = AUTH_HEADER) -> str:
    response = await client.get("/marketplace/AvailableAddOns", headers={"Authorization": auth})
    response.release()
    return upstream.received[-1].raw_path + " " + response.headers["Sunset"]


OLD = f"/v1/Old {SUNSET_HEADER[SUNSET_OLD]}"
NEW = f"/v1/New {SUNSET_HEADER[SUNSET_NEW]}"


def test_live_options_are_options_and_the_rest_need_a_restart() -> None:
    assert LIVE_OPTIONS <= set(OPTIONS_BY_NAME)
    restart_only = set(OPTIONS_BY_NAME) - LIVE_OPTIONS
    assert restart_only >= {
        "listen",
        "workers",
        "metrics_listen",
        "metrics_public",
        "public_base_url",
        "max_body_size",
        "pool_size",
        "pool_size_per_host",
        "keepalive_timeout",
        "insecure_skip_tls_verify",
        "ca_bundle",
        "watch_config",
        "tls_cert",
        "tls_key",
        "proxy_listen",
        "proxy_tunnel_hosts",
    }
    assert {"rules", "brownouts", "marketplace_upstream", "sunset_date", "forwarded_hops"} <= (
        LIVE_OPTIONS
    )


def test_restart_only_changes_name_exactly_those() -> None:
    running = make_config()
    new = replace(running, listen=("127.0.0.1", 9), pool_size=5, sunset_date="2031-01-01T00:00:00Z")
    assert restart_only_changes(running, new) == ("listen", "pool_size")
    assert restart_only_changes(running, running) == ()


def test_fingerprint_reads_through_symlinks_and_skips_dot_entries(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    (rules / "..2024_01").mkdir(parents=True)
    (rules / "..2024_01" / "a.toml").write_text("one")
    (rules / "..data").symlink_to("..2024_01")
    (rules / "a.toml").symlink_to("..data/a.toml")
    (rules / "b.toml").symlink_to("..data/b.toml")  # dangling: the key went away
    first = fingerprint(None, rules)
    assert [name for name, _ in first] == [str(rules / "a.toml"), str(rules / "b.toml")]
    assert first[1][1] is None
    (rules / "..2024_02").mkdir()
    (rules / "..2024_02" / "a.toml").write_text("two")
    (rules / "..data").unlink()
    (rules / "..data").symlink_to("..2024_02")
    assert fingerprint(None, rules) != first  # same names, new content


@pytest.mark.upstream
async def test_reload_swaps_rules_and_settings_and_keeps_the_transport_and_cap_state(
    files: Files, fake_upstream: FakeUpstream, aiohttp_client: ClientFactory
) -> None:
    files.write_config(consumer_cap=1)
    client, app, reloader = await serve(files, aiohttp_client)
    transport, old = app[TRANSPORT], app[LIVE].pipeline
    assert await upstream_path(client, fake_upstream) == OLD  # the cap's one label is used
    files.write_rules("/v1/New", SUNSET_NEW)
    files.write_config(consumer_cap=1, read_timeout=7)
    before = reloads("success")
    assert await reloader.reload("test") == "success"
    assert reloads("success") == before + 1
    new = app[LIVE].pipeline
    assert new is not old and new.config.read_timeout == 7 and new.limits.read == 7
    assert old.config.read_timeout == 30.0  # the old pipeline is untouched
    assert await upstream_path(client, fake_upstream, OTHER_AUTH) == NEW
    assert app[TRANSPORT] is transport and not transport.closed
    assert new.bodies is old.bodies and new.responses is old.responses  # held by bodies in flight
    # One label was taken before the reload, so the second consumer overflows after it.
    assert new.recorder.consumers.label(OTHER_AUTH, 200) == ("other", True)


@pytest.mark.upstream
async def test_invalid_files_change_nothing(
    files: Files, fake_upstream: FakeUpstream, aiohttp_client: ClientFactory
) -> None:
    client, app, reloader = await serve(files, aiohttp_client)
    old = app[LIVE].pipeline
    before = reloads("invalid")
    files.write_rules("/v1/New", SUNSET_NEW)
    broken_rules = [
        "[[rule]\nname = 1\n",  # not TOML
        rules_text("/v1/New", SUNSET_NEW).replace('"marketplace"', '"nowhere"'),  # no upstream
        rules_text("/v1/New", "2020-01-01T00:00:00Z"),  # sunset before the deprecation
    ]
    for text in broken_rules:
        (files.rules / "legacy.toml").write_text(text)
        assert await reloader.reload("test") == "invalid"
    # The response budget needs a restart: a larger answer cap must still fit the running one.
    files.write_config(max_response_size="100M", max_buffered_response_size="100M")
    assert await reloader.reload("test") == "invalid"
    files.write_rules("/v1/New", SUNSET_NEW)
    for broken_config in ("[gateway\n", "[gateway]\nconnect_timeout = -1\n", "[gateway]\nx = 1\n"):
        files.config.write_text(broken_config)
        assert await reloader.reload("test") == "invalid"
    assert reloads("invalid") == before + 7
    assert app[LIVE].pipeline is old
    assert await upstream_path(client, fake_upstream) == OLD


@pytest.mark.upstream
async def test_restart_only_settings_are_reported_and_the_rest_applied(
    files: Files,
    fake_upstream: FakeUpstream,
    aiohttp_client: ClientFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client, app, reloader = await serve(files, aiohttp_client)
    running = app[LIVE].pipeline.config
    files.write_rules("/v1/New", SUNSET_NEW)
    files.write_config(listen="127.0.0.1:1", pool_size=3, max_body_size="2M")
    with caplog.at_level(logging.INFO, logger="gateway"):
        assert await reloader.reload("test") == "restart_required"
    [line] = [r for r in caplog.records if r.name == "gateway"]
    assert line.levelno == logging.WARNING
    assert line.getMessage().endswith(
        "not applied until a restart: listen, max_body_size, pool_size"
    )
    config = app[LIVE].pipeline.config
    assert (config.listen, config.pool_size, config.max_body_size) == (
        running.listen,
        running.pool_size,
        running.max_body_size,
    )
    assert await upstream_path(client, fake_upstream) == NEW
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="gateway"):  # still pending at the next reload
        assert await reloader.reload("test") == "restart_required"
    assert "listen, max_body_size, pool_size" in caplog.records[-1].getMessage()


async def test_sunset_gauges_follow_the_rules(files: Files, aiohttp_client: ClientFactory) -> None:
    _, _, reloader = await serve(files, aiohttp_client)
    assert sunset_gauge("legacy_list") == 1893456000.0  # 2030-01-01
    files.write_rules("/v1/New", SUNSET_NEW, name="renamed_list")
    assert await reloader.reload("test") == "success"
    assert sunset_gauge("legacy_list") is None
    assert sunset_gauge("renamed_list") == 1924992000.0  # 2031-01-01


async def test_signals_in_a_burst_make_one_reload(
    files: Files, aiohttp_client: ClientFactory
) -> None:
    _, _, reloader = await serve(files, aiohttp_client)
    before = reloads("success")
    for expected in (1, 2):  # a burst makes one reload; a signal after it, another
        for _ in range(5):
            reloader.request("SIGHUP")
        for _ in range(100):
            await asyncio.sleep(0.02)
            if reloads("success") > before + expected - 1:
                break
        await asyncio.sleep(0.2)
        assert reloads("success") == before + expected


@pytest.mark.upstream
async def test_watch_reloads_a_changed_file_once(
    files: Files, fake_upstream: FakeUpstream, aiohttp_client: ClientFactory
) -> None:
    client, app, reloader = await serve(files, aiohttp_client)
    before = (reloads("success"), reloads("invalid"))
    watcher = asyncio.create_task(reloader.watch(interval=0.05))
    try:
        files.write_rules("/v1/New", SUNSET_NEW)
        for _ in range(200):
            if reloads("success") > before[0]:
                break
            await asyncio.sleep(0.05)
        assert await upstream_path(client, fake_upstream) == NEW
        (files.rules / "legacy.toml").write_text("[[rule]\n")
        for _ in range(200):
            if reloads("invalid") > before[1]:
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # ten more polls: the same broken file is not retried
        assert (reloads("success"), reloads("invalid")) == (before[0] + 1, before[1] + 1)
        assert await upstream_path(client, fake_upstream) == NEW
    finally:
        watcher.cancel()


def test_the_supervisor_process_declares_no_metrics() -> None:
    """cli.py runs the --workers supervisor, which must write no metric files of its own."""
    code = "import sys, gateway.cli; print('gateway.telemetry.metrics' in sys.modules)"
    assert python_output(code) == "False\n"


def test_config_source_reads_the_same_layers_again(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text("[gateway]\nread_timeout = 3\nconnect_timeout = 2\n")
    source = ConfigSource({"config": str(path), "connect_timeout": "1"}, {})
    assert source.path == path
    path.write_text("[gateway]\nread_timeout = 4\nconnect_timeout = 2\n")
    config = source.load()
    assert (config.read_timeout, config.connect_timeout) == (4.0, 1.0)  # the flag still wins
    assert config == load_config({"config": str(path), "connect_timeout": "1"}, {})
