"""Running the gateway in this process until SIGINT/SIGTERM (see :mod:`gateway.supervisor`
for ``--workers N``)."""

from __future__ import annotations

import asyncio
import importlib
import os
import signal
from collections.abc import Callable

from aiohttp import web

from gateway import __version__
from gateway.app import create_app, create_metrics_app
from gateway.config import GatewayConfig
from gateway.frontdoor.listener import ProxyFrontDoor, start_proxy
from gateway.frontdoor.startup import prepare
from gateway.listen import address, listen_error, start_site
from gateway.server import GatewayRunner
from gateway.supervisor import GRACE_SECONDS, WORKER_ENV


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when the ``fast`` extra is installed, else asyncio's default."""
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


async def _serve(config: GatewayConfig, reuse_port: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    runners: list[web.AppRunner] = []
    doors = prepare(config)
    runner = GatewayRunner(create_app(config), access_log=None, shutdown_timeout=GRACE_SECONDS)
    await runner.setup()
    runners.append(runner)
    proxy: ProxyFrontDoor | None = None
    try:
        port = await start_site(
            runner,
            config.listen_host,
            config.listen_port,
            reuse_port=reuse_port,
            ssl_context=doors.tls,
        )
        if doors.proxy is not None and config.proxy_listen is not None:
            # The same aiohttp server as the main listener: one pipeline, one ClientSession.
            assert runner.server is not None
            host, proxy_port = config.proxy_listen
            try:
                proxy, proxy_port = await start_proxy(
                    runner.server, doors.proxy, host, proxy_port, reuse_port=reuse_port
                )
            except OSError as exc:
                raise listen_error(host, proxy_port, exc) from exc
        if config.metrics_listen is not None:
            metrics_runner = web.AppRunner(create_metrics_app(), access_log=None)
            await metrics_runner.setup()
            runners.append(metrics_runner)
            await start_site(metrics_runner, *config.metrics_listen, reuse_port=reuse_port)
        # Only now, with the sockets open, is it true.
        scheme = "https" if doors.tls is not None else "http"
        print(
            f"gateway {__version__} listening on {scheme}://{address(config.listen_host, port)}",
            flush=True,
        )
        if doors.proxy is not None and config.proxy_listen is not None:
            hosts = ", ".join(sorted(doors.proxy.policy.intercepted))
            where = address(config.proxy_listen[0], proxy_port)
            print(f"proxy front door on http://{where} (intercepts {hosts})", flush=True)
        await stop.wait()
    finally:
        if proxy is not None:
            proxy.close()  # blind tunnels end now; intercepted requests get the grace period
        # Stops accepting, then waits up to the grace period for in-flight requests.
        for active in reversed(runners):
            await active.cleanup()


def run_single(config: GatewayConfig) -> int:
    """Serve in this process until SIGINT/SIGTERM; in-flight requests get a grace period."""
    reuse_port = WORKER_ENV in os.environ
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(_serve(config, reuse_port))
    return 0
