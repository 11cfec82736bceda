"""The proxy front door's listener: admits connections up to a maximum (counted at accept, in
a :class:`~gateway.serving.admission.Gate` of its own), starts their tunnel or interception,
and stops them all at shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.config.hosts import Target
from gateway.errors import GatewayError, ProxyRefused, UpstreamTimeout, UpstreamUnavailable
from gateway.frontdoor.addresses import InternalAddress, resolve
from gateway.frontdoor.connect import ESTABLISHED, ConnectProtocol, error_response
from gateway.frontdoor.intercept import intercept
from gateway.frontdoor.settings import ProxySettings
from gateway.frontdoor.targets import Outcome
from gateway.frontdoor.tunnel import open_tunnel
from gateway.serving.admission import Gate
from gateway.telemetry import metrics

log = logging.getLogger("gateway")


class ProxyFrontDoor:
    """``CONNECT`` in, intercepted connections out to ``server`` (the gateway's one aiohttp
    server), blind tunnels for the allowed hosts, 403 for the rest."""

    def __init__(self, server: web.Server, settings: ProxySettings) -> None:
        self._server = server
        self.settings = settings
        self.policy = settings.policy
        self.error_base = settings.error_base
        self._gate = Gate(settings.max_tunnels, "proxy_max_tunnels")
        # Every admitted connection, with how to stop it at shutdown (None: aiohttp owns it).
        self._open: dict[asyncio.Transport, Callable[[], None] | None] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._listener: asyncio.Server | None = None

    @property
    def open_count(self) -> int:
        return len(self._open)

    def admit(self, transport: asyncio.Transport) -> bool:
        if not self._gate.enter():
            return False
        self._open[transport] = transport.abort
        return True

    def release(self, transport: asyncio.Transport) -> None:
        if transport in self._open:
            del self._open[transport]
            self._gate.leave()

    def start(
        self, outcome: Outcome, transport: asyncio.Transport, target: Target, early: bytes
    ) -> None:
        if outcome is Outcome.INTERCEPTED:
            work = self._intercept(transport, target)
        else:
            work = self._tunnel(transport, target, early)
        task = asyncio.get_running_loop().create_task(self._guarded(work, transport))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _guarded(self, work: Awaitable[None], transport: asyncio.Transport) -> None:
        """Run ``work``; should it fail or be cancelled, close the connection, free its slot."""
        try:
            await work
        except BaseException as exc:
            if not isinstance(exc, asyncio.CancelledError):
                log.exception("proxy front door: a connection failed; it is closed")
            transport.abort()
            self.release(transport)
            if not isinstance(exc, Exception):
                raise

    async def _intercept(self, transport: asyncio.Transport, target: Target) -> None:
        context = self.settings.leaves.context_for(target.host)  # minted at start-up already
        await intercept(
            transport,
            target.host,
            context,
            self._server,
            established=ESTABLISHED,
            total=self.settings.total_timeout,
            handshake_timeout=self.settings.handshake_timeout,
            on_close=lambda: self.release(transport),
        )
        if transport in self._open:
            self._open[transport] = None  # aiohttp's server closes it at shutdown

    def _refuse(self, transport: asyncio.Transport, error: GatewayError) -> None:
        transport.write(error_response(error, self.error_base))
        transport.close()

    async def _tunnel(self, transport: asyncio.Transport, target: Target, early: bytes) -> None:
        settings = self.settings
        try:
            # Resolved once: the tunnel connects to an address checked here, never to the name.
            async with asyncio.timeout(settings.connect_timeout):
                addresses = await resolve(target.host, target.port, settings.allowed_networks)
        except InternalAddress as exc:
            metrics.PROXY_CONNECTS.labels(Outcome.REFUSED.value).inc()
            log.warning("proxy front door refused a tunnel: %s", exc)
            message = f"CONNECT to {target.authority} is not allowed: {exc}"
            self._refuse(transport, ProxyRefused(message))
            return
        except (OSError, TimeoutError) as exc:
            metrics.PROXY_CONNECTS.labels(Outcome.TUNNELLED.value).inc()
            self._failed(transport, target, exc, f"{target.host} could not be resolved")
            return
        metrics.PROXY_CONNECTS.labels(Outcome.TUNNELLED.value).inc()
        try:
            tunnel = await open_tunnel(
                transport,
                addresses,
                early,
                connect_timeout=settings.connect_timeout,
                idle=settings.idle_timeout,
                total=settings.total_timeout,
                established=ESTABLISHED,
                on_close=lambda: self.release(transport),
            )
        except (OSError, TimeoutError) as exc:
            self._failed(transport, target, exc, f"{target.authority} refused the connection")
            return
        if transport in self._open:
            self._open[transport] = tunnel.abort

    def _failed(
        self, transport: asyncio.Transport, target: Target, exc: Exception, unavailable: str
    ) -> None:
        error: UpstreamTimeout | UpstreamUnavailable
        if isinstance(exc, TimeoutError):
            error = UpstreamTimeout(f"{target.authority} did not accept a connection in time")
        else:
            error = UpstreamUnavailable(unavailable)
        log.warning("tunnel to %s failed: %s", target.authority, type(exc).__name__)
        self._refuse(transport, error)

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
