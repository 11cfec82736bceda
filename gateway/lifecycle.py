"""Running the gateway in this process until SIGINT/SIGTERM, reloading on SIGHUP and, with
``--watch-config``, on file changes (see :mod:`gateway.reload`; :mod:`gateway.supervisor` for
``--workers N``)."""

from __future__ import annotations

import asyncio
import importlib
import os
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web

from gateway.app import LIVE, MIGRATION_PAGE, create_app, create_metrics_app
from gateway.config.settings import ConfigSource, GatewayConfig
from gateway.reload import Reloader
from gateway.serving import descriptors, memory
from gateway.serving.listen import address, listen_error
from gateway.serving.server import GatewayRunner
from gateway.serving.site import start_site
from gateway.supervisor import GRACE_SECONDS, WORKER_ENV
from gateway.version import __version__

if TYPE_CHECKING:
    from gateway.frontdoor.listener import ProxyFrontDoor


def uses_front_doors(config: GatewayConfig) -> bool:
    """Whether the config asks for the TLS listener or the proxy front door."""
    return config.tls_cert is not None or config.proxy_listen is not None


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop when the ``fast`` extra is installed, else asyncio's default."""
    try:
        uvloop = importlib.import_module("uvloop")
    except ImportError:
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


async def _serve(config: GatewayConfig, source: ConfigSource, reuse_port: bool) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    tls, proxy_settings = None, None
    if uses_front_doors(config):  # certificates: only then is `cryptography` loaded at all
        from gateway.frontdoor.startup import prepare

        doors = prepare(config, warn=False)  # cli.serve checked them and warned once
        tls, proxy_settings = doors.tls, doors.proxy
    app = create_app(config)
    reloader = Reloader(app[LIVE], source)
    loop.add_signal_handler(signal.SIGHUP, reloader.request, "SIGHUP")
    # Blocked since start-up (cli.serve, or inherited from the supervisor), so a SIGHUP that
    # came early was held rather than fatal; it is delivered, and reloads, now.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})
    watcher = loop.create_task(reloader.watch()) if config.watch_config else None
    runners: list[web.AppRunner] = []
    runner = GatewayRunner(app, access_log=None, shutdown_timeout=GRACE_SECONDS)
    await runner.setup()
    runners.append(runner)
    proxy: ProxyFrontDoor | None = None
    proxy_port = 0
    try:
        # A listen queue as long as the connection cap (aiohttp's is 128; the kernel caps it
        # at net.core.somaxconn): a burst of connects is accepted, not dropped half-open.
        port = await start_site(
            runner,
            config.listen_host,
            config.listen_port,
            reuse_port=reuse_port,
            ssl_context=tls if config.main_is_tls else None,
            backlog=config.max_client_connections,
        )
        tls_port = 0
        if config.tls_listen is not None and tls is not None:
            # The same runner, so the same server: one pipeline, one ClientSession; the socket,
            # its TLS and its cap of connections (counted at accept, before TLS) are its own.
            tls_port = await start_site(
                runner,
                *config.tls_listen,
                reuse_port=reuse_port,
                ssl_context=tls,
                backlog=config.max_client_connections,
            )
        if proxy_settings is not None and config.proxy_listen is not None:
            from gateway.frontdoor.listener import start_proxy

            # The same aiohttp server as the main listener: one pipeline, one upstream transport.
            assert runner.server is not None
            host, proxy_port = config.proxy_listen
            try:
                proxy, proxy_port = await start_proxy(
                    runner.server, proxy_settings, host, proxy_port, reuse_port=reuse_port
                )
            except OSError as exc:
                raise listen_error(host, proxy_port, exc) from exc
        if config.metrics_listen is not None:
            metrics_app = create_metrics_app(config, app[MIGRATION_PAGE], probes_of=app)
            metrics_runner = GatewayRunner(metrics_app, access_log=None)
            await metrics_runner.setup()
            runners.append(metrics_runner)
            await start_site(metrics_runner, *config.metrics_listen, reuse_port=reuse_port)
        # Only now, with the sockets open, is it true.
        scheme = "https" if config.main_is_tls else "http"
        print(
            f"gateway {__version__} listening on {scheme}://{address(config.listen_host, port)}",
            flush=True,
        )
        if config.tls_listen is not None:
            print(
                f"HTTPS listener on https://{address(config.tls_listen[0], tls_port)}", flush=True
            )
        if proxy_settings is not None and config.proxy_listen is not None:
            hosts = ", ".join(sorted(proxy_settings.policy.intercepted))
            where = address(config.proxy_listen[0], proxy_port)
            print(f"proxy front door on http://{where} (intercepts {hosts})", flush=True)
        await stop.wait()
    finally:
        if watcher is not None:
            watcher.cancel()
        await reloader.close()
        if proxy is not None:
            proxy.close()  # blind tunnels end now; intercepted requests get the grace period
        # Stops accepting, then waits up to the grace period for in-flight requests.
        for active in reversed(runners):
            await active.cleanup()


def run_single(config: GatewayConfig, source: ConfigSource) -> int:
    """Serve in this process until SIGINT/SIGTERM; in-flight requests get a grace period.
    SIGHUP reloads the config and rules read again from ``source``."""
    reuse_port = WORKER_ENV in os.environ
    memory.return_large_blocks_to_the_os()
    descriptors.make_room(descriptors.needed(config))
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(_serve(config, source, reuse_port))
    return 0
