"""TLS interception: terminate the client's TLS with a leaf for the CONNECT host, then hand the
decrypted connection to the gateway's one aiohttp server (the same pipeline as every listener).
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable

from aiohttp import web

from gateway.frontdoor.door import INTERCEPTED_HOST

log = logging.getLogger("gateway")

HANDSHAKE_TIMEOUT = 10.0
FINISH_GRACE = 10.0  # seconds a request in progress may take when its connection expires


class _Relay(asyncio.Protocol):
    """Between the TLS transport and aiohttp's handler: keeps what arrives before the handler
    is attached, and frees the front door's slot when the connection ends."""

    def __init__(self, on_close: Callable[[], None]) -> None:
        self._on_close = on_close
        self._handler: web.RequestHandler | None = None
        self._early: list[bytes] = []
        self._early_eof = False
        self._deadline: asyncio.TimerHandle | None = None
        self._closing: asyncio.Task[None] | None = None  # held so it is not collected

    def attach(self, handler: web.RequestHandler, transport: asyncio.Transport) -> None:
        handler.connection_made(transport)
        self._handler = handler
        for chunk in self._early:
            handler.data_received(chunk)
        self._early.clear()
        if self._early_eof:
            handler.eof_received()

    def close_after(self, seconds: float) -> None:
        """After ``seconds``, let the request in progress finish (up to ``FINISH_GRACE``) and
        close, as aiohttp closes a keep-alive connection at shutdown."""
        self._deadline = asyncio.get_running_loop().call_later(seconds, self._expire)

    def _expire(self) -> None:
        if self._handler is not None:
            # As aiohttp's own shutdown: close() ends an idle connection's wait for a request,
            # shutdown() waits for one in progress, then closes the transport.
            self._handler.close()
            self._closing = asyncio.get_running_loop().create_task(
                self._handler.shutdown(FINISH_GRACE)
            )

    def data_received(self, data: bytes) -> None:
        if self._handler is None:
            self._early.append(data)
        else:
            self._handler.data_received(data)

    def eof_received(self) -> bool | None:
        if self._handler is None:
            self._early_eof = True
            return None
        self._handler.eof_received()
        return None

    def pause_writing(self) -> None:
        if self._handler is not None:
            self._handler.pause_writing()

    def resume_writing(self) -> None:
        if self._handler is not None:
            self._handler.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
        if self._handler is not None:
            self._handler.connection_lost(exc)
        self._on_close()


async def intercept(
    transport: asyncio.Transport,
    host: str,
    context: ssl.SSLContext,
    server: web.Server,
    *,
    established: bytes,
    total: float,
    on_close: Callable[[], None],
) -> None:
    """Answer ``established``, do the server side of the TLS handshake, hand over to ``server``.

    ``transport`` must have reading paused (start_tls resumes it). On a failed handshake the
    connection is closed and ``on_close`` called.
    """
    loop = asyncio.get_running_loop()
    relay = _Relay(on_close)
    transport.write(established)
    try:
        secure = await loop.start_tls(
            transport, relay, context, server_side=True, ssl_handshake_timeout=HANDSHAKE_TIMEOUT
        )
    except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", None) or type(exc).__name__
        log.info(
            "TLS handshake for %s failed (%s); a client must trust the interception CA",
            host,
            reason,
        )
        transport.abort()
        on_close()
        return
    if secure is None:  # the client went away during the handshake
        transport.abort()
        on_close()
        return
    token = INTERCEPTED_HOST.set(host)
    try:
        # aiohttp starts this connection's request task here, inside the context set above.
        relay.attach(server(), secure)
    finally:
        INTERCEPTED_HOST.reset(token)
    relay.close_after(total)
