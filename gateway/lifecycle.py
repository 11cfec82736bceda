"""Running the gateway in this process until SIGINT/SIGTERM (see :mod:`gateway.supervisor`
for ``--workers N``)."""

from __future__ import annotations

import asyncio
import ctypes
import importlib
import logging
import os
import signal
from collections.abc import Callable

from aiohttp import web

from gateway.app import create_app, create_metrics_app
from gateway.config import GatewayConfig
from gateway.server import GatewayRunner
from gateway.supervisor import GRACE_SECONDS, WORKER_ENV

log = logging.getLogger("gateway")


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
    # A listen queue as long as the connection cap (aiohttp's is 128; the kernel caps it at
    # net.core.somaxconn): a burst of connects is accepted, not dropped half-open.
    backlog = config.max_client_connections
    await web.TCPSite(
        runner,
        config.listen_host,
        config.listen_port,
        backlog=backlog,
        reuse_port=reuse_port or None,
    ).start()
    if config.metrics_listen is not None:
        metrics_runner = GatewayRunner(create_metrics_app(config), access_log=None)
        await metrics_runner.setup()
        runners.append(metrics_runner)
        host, port = config.metrics_listen
        await web.TCPSite(metrics_runner, host, port, reuse_port=reuse_port or None).start()
    log.info("serving on %s:%s", config.listen_host, config.listen_port)
    try:
        await stop.wait()
    finally:
        # Stops accepting, then waits up to the grace period for in-flight requests.
        for active in reversed(runners):
            await active.cleanup()


def _return_large_blocks_to_the_os() -> None:
    """With glibc, give every allocation of 1 MiB or more (a large body) a mapping of its own,
    returned to the OS as soon as it is freed. By default glibc raises that threshold to the
    largest block freed so far (up to 32 MiB), after which a burst of large bodies, a flood of
    slow readers for one, keeps its memory in the heap for the life of the process. A
    ``MALLOC_MMAP_THRESHOLD_`` in the environment is left to decide."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (or musl's stub): nothing to tune
        return
    m_mmap_threshold = -3  # from <malloc.h>
    mallopt(m_mmap_threshold, 1 << 20)


def run_single(config: GatewayConfig) -> int:
    """Serve in this process until SIGINT/SIGTERM; in-flight requests get a grace period."""
    reuse_port = WORKER_ENV in os.environ
    _return_large_blocks_to_the_os()
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(_serve(config, reuse_port))
    return 0
