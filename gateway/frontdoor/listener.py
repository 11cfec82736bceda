"""The proxy front door's listener: admits connections up to a maximum, starts their tunnel or
interception, and stops them all at shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from aiohttp import web

from gateway.config.hosts import Target
from gateway.errors import UpstreamTimeout, UpstreamUnavailable
from gateway.frontdoor.connect import ESTABLISHED, ConnectProtocol, error_response
from gateway.frontdoor.intercept import intercept
from gateway.frontdoor.settings import ProxySettings
from gateway.frontdoor.targets import Outcome
from gateway.frontdoor.tunnel import open_tunnel

log = logging.getLogger("gateway")


class ProxyFrontDoor:
    """``CONNECT`` in, intercepted connections out to ``server`` (the gateway's one aiohttp
    server), blind tunnels for the allowed hosts, 403 for the rest."""

    def __init__(self, server: web.Server, settings: ProxySettings) -> None:
        self._server = server
        self.settings = settings
        self.policy = settings.policy
        self.error_base = settings.error_base
        # Every admitted connection, with how to stop it at shutdown (None: aiohttp owns it).
        self._open: dict[asyncio.Transport, Callable[[], None] | None] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._listener: asyncio.Server | None = None

    @property
    def open_count(self) -> int:
        return len(self._open)

    def admit(self, transport: asyncio.Transport) -> bool:
        if len(self._open) >= self.settings.max_tunnels:
            return False
        self._open[transport] = transport.abort
        return True

    def release(self, transport: asyncio.Transport) -> None:
        self._open.pop(transport, None)

    def start(
        self, outcome: Outcome, transport: asyncio.Transport, target: Target, early: bytes
    ) -> None:
        if outcome is Outcome.INTERCEPTED:
            work = self._intercept(transport, target)
        else:
            work = self._tunnel(transport, target, early)
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _intercept(self, transport: asyncio.Transport, target: Target) -> None:
        try:
            context = self.settings.leaves.context_for(target.host)
        except Exception:  # minted at start-up already; a failure now must not go unseen
            log.exception("no certificate for %s", target.host)
            transport.abort()
            self.release(transport)
            return
        await intercept(
            transport,
            target.host,
            context,
            self._server,
            established=ESTABLISHED,
            total=self.settings.total_timeout,
            on_close=lambda: self.release(transport),
        )
        if transport in self._open:
            self._open[transport] = None  # aiohttp's server closes it at shutdown

    async def _tunnel(self, transport: asyncio.Transport, target: Target, early: bytes) -> None:
        settings = self.settings
        try:
            tunnel = await open_tunnel(
                transport,
                target,
                early,
                connect_timeout=settings.connect_timeout,
                idle=settings.idle_timeout,
                total=settings.total_timeout,
                established=ESTABLISHED,
                on_close=lambda: self.release(transport),
            )
        except (OSError, TimeoutError) as exc:
            error: UpstreamTimeout | UpstreamUnavailable
            if isinstance(exc, TimeoutError):
                error = UpstreamTimeout(f"{target.authority} did not accept a connection in time")
            else:
                error = UpstreamUnavailable(f"{target.authority} refused the connection")
            log.warning("tunnel to %s failed: %s", target.authority, type(exc).__name__)
            transport.write(error_response(error, self.error_base))
            transport.close()
            return
        if transport in self._open:
            self._open[transport] = tunnel.abort

    async def listen(self, host: str, port: int, *, reuse_port: bool = False) -> int:
        """Start accepting on ``host:port``; returns the bound port (for port 0)."""
        loop = asyncio.get_running_loop()
        self._listener = await loop.create_server(
            lambda: ConnectProtocol(self), host, port, reuse_port=reuse_port or None
        )
        return int(self._listener.sockets[0].getsockname()[1])

    def close(self) -> None:
        """Stop accepting, drop tunnels and unfinished CONNECTs. Intercepted connections are
        left to the aiohttp server's own graceful shutdown."""
        if self._listener is not None:
            self._listener.close()
        for task in list(self._tasks):
            task.cancel()
        for stop in list(self._open.values()):
            if stop is not None:
                stop()


async def start_proxy(
    server: web.Server, settings: ProxySettings, host: str, port: int, *, reuse_port: bool = False
) -> tuple[ProxyFrontDoor, int]:
    """Start the proxy front door feeding ``server``; returns it and its bound port."""
    door = ProxyFrontDoor(server, settings)
    bound = await door.listen(host, port, reuse_port=reuse_port)
    hosts = ", ".join(sorted(settings.policy.intercepted))
    tunnels = ", ".join(str(p) for p in settings.policy.tunnelled) or "none"
    log.info("proxy front door on %s:%s intercepts %s; tunnels %s", host, bound, hosts, tunnels)
    return door, bound
