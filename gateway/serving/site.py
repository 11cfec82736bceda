"""The gateway's own TCP site, and :func:`start_site`, which listens with it: every connection
counted and capped at accept, before TLS and before any byte is read, with a
:class:`~gateway.serving.admission.Gate` of its own (the cap and its option name come from the
app's :class:`~gateway.serving.client_limits.ClientLimits`).

A plain connection over the cap is answered 503 (code 88006) with ``Retry-After`` and closed;
a TLS one is closed at once, as there is no TLS yet to answer in. A TLS connection has
``client_header_timeout`` for its handshake (``ssl_handshake_timeout``), then as long again for
its first request head; a handshake that fails or runs out of time is closed and its slot
freed, and one cut off by the deadline counts as a ``header_timeout`` limit hit.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import cast

from aiohttp import web

from gateway.errors import GatewayBusy
from gateway.serving.admission import Gate
from gateway.serving.error_response import render_raw
from gateway.serving.headers import SERVER
from gateway.serving.listen import address, listen_error
from gateway.serving.secure import HandshakeFailed, Relay, handshake
from gateway.serving.server import ERROR_BASE, GatewayRunner, connection_handler, register_site
from gateway.telemetry.metrics import CLIENT_LIMIT_HITS

log = logging.getLogger("gateway")

DEFAULT_HANDSHAKE_TIMEOUT = 60.0  # the event loops' own, for an app without client limits
EARLY_HELLO_LIMIT = 64 * 1024  # a TLS ClientHello fits in one 16 KiB record; more is not TLS


class GatewaySite(web.BaseSite):
    """A TCP site of a :class:`~gateway.serving.server.GatewayRunner` that counts and caps its
    connections at accept and does TLS itself, after counting (see the module docstring)."""

    def __init__(
        self,
        runner: GatewayRunner,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
        backlog: int = 128,
        reuse_port: bool = False,
    ) -> None:
        super().__init__(runner, ssl_context=ssl_context, backlog=backlog)
        server = runner.server
        assert server is not None  # BaseSite checked that the runner is set up
        self.server = server
        self.host, self.port = host, port
        self.tls = ssl_context
        self.reuse_port = reuse_port
        limits = getattr(server, "limits", None)  # None: an app without ClientLimits
        if limits is not None:
            self.gate = Gate(limits.max_connections, limits.cap_option)
            self.handshake_timeout = limits.header_timeout
        else:
            self.gate = Gate(2**31, "max_client_connections")
            self.handshake_timeout = DEFAULT_HANDSHAKE_TIMEOUT
        base = runner.app.get(ERROR_BASE)
        busy = GatewayBusy(
            "The gateway has as many client connections open as it accepts; retry shortly",
            headers={"Retry-After": "1"},
        )
        self.busy_answer = render_raw(busy, base.static() if base is not None else "/", SERVER)
        self.handshakes: set[asyncio.Task[None]] = set()

    @property
    def name(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{address(self.host, self.port)}"

    async def start(self) -> None:
        await super().start()
        listener = await asyncio.get_running_loop().create_server(
            lambda: _Accepted(self),
            self.host,
            self.port,
            backlog=self._backlog,
            reuse_port=self.reuse_port or None,
        )
        register_site(self, listener)
        if listener.sockets:
            self.port = int(listener.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        """Stop accepting, and drop the connections still in their TLS handshake (the others
        are the runner's to close, gracefully)."""
        for task in list(self.handshakes):
            task.cancel()
        await super().stop()

    def admit(self, transport: asyncio.Transport, accepted: _Accepted) -> None:
        """A connection was accepted: count it, then serve it, start its TLS, or refuse it."""
        gate = self.gate
        if not gate.enter():
            gate.refuse(transport, b"" if self.tls is not None else self.busy_answer)
            return
        if self.tls is None:
            handler = connection_handler(self.server, gate.leave)
            transport.set_protocol(handler)
            handler.connection_made(transport)
            return
        transport.pause_reading()  # until the handshake starts; the ClientHello waits (asyncio)
        relay = Relay(gate.leave)
        task = asyncio.get_running_loop().create_task(
            self._secure(transport, relay, self.tls, accepted)
        )
        self.handshakes.add(task)

        def done(task: asyncio.Task[None]) -> None:
            self.handshakes.discard(task)
            if task.cancelled():  # perhaps before it started: the slot is freed all the same
                relay.abort(transport)

        task.add_done_callback(done)

    async def _secure(
        self,
        transport: asyncio.Transport,
        relay: Relay,
        context: ssl.SSLContext,
        accepted: _Accepted,
    ) -> None:
        if accepted.early_size > EARLY_HELLO_LIMIT:
            relay.abort(transport)
            return
        early = accepted.take_early()
        timeout = self.handshake_timeout
        try:
            secure = await handshake(transport, relay, context, timeout=timeout, early=early)
        except HandshakeFailed as failed:
            if failed.timed_out:
                CLIENT_LIMIT_HITS.labels("header_timeout").inc()
            log.debug("TLS handshake failed: %s", failed.reason)
            return
        relay.attach(lambda: connection_handler(self.server), secure)


class _Accepted(asyncio.Protocol):
    """A connection just accepted: hands itself to its site at once. A TLS connection stays
    here until its handshake starts; uvloop starts reading after ``connection_made`` whatever
    it asked, so the first bytes of the handshake may arrive here: they are kept (at most
    :data:`EARLY_HELLO_LIMIT`, reading paused) for the handshake."""

    def __init__(self, site: GatewaySite) -> None:
        self._site = site
        self._transport: asyncio.Transport | None = None
        self._early: list[bytes] = []
        self.early_size = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        self._transport = cast(asyncio.Transport, transport)
        self._site.admit(self._transport, self)

    def data_received(self, data: bytes) -> None:
        self._early.append(data)
        self.early_size += len(data)
        if self._transport is not None:
            self._transport.pause_reading()

    def take_early(self) -> bytes:
        early = b"".join(self._early)
        self._early.clear()
        return early


async def start_site(
    runner: web.BaseRunner,
    host: str,
    port: int,
    *,
    reuse_port: bool = False,
    ssl_context: ssl.SSLContext | None = None,
    backlog: int = 128,
) -> int:
    """Listen on ``host:port`` for ``runner`` (set up already); the port really bound. A
    :class:`~gateway.serving.server.GatewayRunner` gets a
    :class:`GatewaySite` (connections counted at accept, before TLS); any
    other runner (the simulator's) aiohttp's own ``TCPSite``.

    Raises :class:`ListenError` when the socket cannot be opened.
    """
    site: web.BaseSite
    if isinstance(runner, GatewayRunner):
        site = GatewaySite(
            runner, host, port, ssl_context=ssl_context, backlog=backlog, reuse_port=reuse_port
        )
    else:
        site = web.TCPSite(
            runner,
            host,
            port,
            reuse_port=reuse_port or None,
            ssl_context=ssl_context,
            backlog=backlog,
        )
    try:
        await site.start()
    except OSError as exc:
        raise listen_error(host, port, exc) from exc
    return int(runner.addresses[-1][1])
