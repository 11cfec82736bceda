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
from gateway.app import GatewayRunner, create_app, create_metrics_app
from gateway.config import GatewayConfig
from gateway.listen import address, start_site
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
    runner = GatewayRunner(create_app(config), access_log=None, shutdown_timeout=GRACE_SECONDS)
    await runner.setup()
    runners.append(runner)
    try:
        port = await start_site(
            runner, config.listen_host, config.listen_port, reuse_port=reuse_port
        )
        if config.metrics_listen is not None:
            metrics_runner = web.AppRunner(create_metrics_app(), access_log=None)
            await metrics_runner.setup()
            runners.append(metrics_runner)
            await start_site(metrics_runner, *config.metrics_listen, reuse_port=reuse_port)
        # Only now, with the sockets open, is it true.
        print(
            f"gateway {__version__} listening on http://{address(config.listen_host, port)}",
            flush=True,
        )
        await stop.wait()
    finally:
        # Stops accepting, then waits up to the grace period for in-flight requests.
        for active in reversed(runners):
            await active.cleanup()


def run_single(config: GatewayConfig) -> int:
    """Serve in this process until SIGINT/SIGTERM; in-flight requests get a grace period."""
    reuse_port = WORKER_ENV in os.environ
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(_serve(config, reuse_port))
    return 0
