"""TLS on a connection that was accepted (and counted) already: the server side of the handshake
with a deadline, then aiohttp's connection handler attached to the decrypted stream.

Used by the TLS listener (:mod:`gateway.serving.site`) and by the proxy front door's
interception (:mod:`gateway.frontdoor.intercept`). ``loop.start_tls`` hands back the decrypted
transport only once the handshake is done, and bytes may arrive before the handler is attached:
:class:`Relay` keeps at most :data:`EARLY_LIMIT` of them and stops reading past that. Whatever
goes wrong, the connection is closed and its slot given back exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable

from aiohttp import web

log = logging.getLogger("gateway")

EARLY_LIMIT = 64 * 1024  # bytes kept before the handler is attached; reading pauses past it
FINISH_GRACE = 10.0  # seconds a request in progress may take when its connection expires


class HandshakeFailed(Exception):
    """The TLS handshake did not complete; the connection is closed. ``timed_out`` when its
    deadline passed."""

    def __init__(self, reason: str, *, timed_out: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.timed_out = timed_out


class Relay(asyncio.Protocol):
    """Between the TLS transport and aiohttp's handler: keeps what arrives before the handler
    is attached (bounded), and calls ``on_close`` once when the connection ends."""

    def __init__(self, on_close: Callable[[], None]) -> None:
        self._on_close: Callable[[], None] | None = on_close
        self._transport: asyncio.Transport | None = None
        self._handler: web.RequestHandler | None = None
        self._early: list[bytes] = []
        self._early_size = 0
        self._early_eof = False
        self._paused = False
        self._deadline: asyncio.TimerHandle | None = None
        self._closing: asyncio.Task[None] | None = None  # held so it is not collected

    @property
    def early_size(self) -> int:
        """Bytes held for a handler not attached yet."""
        return self._early_size

    def watch(self, secure: asyncio.Transport) -> None:
        """The decrypted transport, paused should too much arrive before :meth:`attach`."""
        self._transport = secure
        if self._early_size >= EARLY_LIMIT and not self._paused:
            self._paused = True
            secure.pause_reading()

    def attach(
        self, make_handler: Callable[[], web.RequestHandler], secure: asyncio.Transport
    ) -> bool:
        """Start a handler on the decrypted ``secure`` transport and give it what arrived early.
        On any failure the connection is closed and its slot given back; returns False then."""
        self._transport = secure
        try:
            handler = make_handler()
            handler.connection_made(secure)
            self._handler = handler
            for chunk in self._early:
                handler.data_received(chunk)
            if self._early_eof:
                handler.eof_received()
        except Exception:
            log.exception("could not start serving a TLS connection; it is closed")
            self._handler = None
            self.abort(secure)
            return False
        finally:
            self._early.clear()
            self._early_size = 0
        if self._paused:
            self._paused = False
            secure.resume_reading()
        return True

    def abort(self, transport: asyncio.Transport) -> None:
        """Drop the connection now and give its slot back (once, however often called)."""
        transport.abort()
        self.release()

    def release(self) -> None:
        on_close, self._on_close = self._on_close, None
        if on_close is not None:
            on_close()

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

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # start_tls does not call this (the decrypted transport is start_tls's answer); kept
        # for the protocol's sake.
        pass

    def data_received(self, data: bytes) -> None:
        if self._handler is not None:
            self._handler.data_received(data)
            return
        self._early.append(data)
        self._early_size += len(data)
        if self._early_size >= EARLY_LIMIT and not self._paused and self._transport is not None:
            self._paused = True
            self._transport.pause_reading()

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
        self._early.clear()
        self._early_size = 0
        handler, self._handler = self._handler, None
        try:
            if handler is not None:
                handler.connection_lost(exc)
        finally:
            self.release()


async def handshake(
    transport: asyncio.Transport,
    relay: Relay,
    context: ssl.SSLContext,
    *,
    timeout: float,
    early: bytes = b"",
) -> asyncio.Transport:
    """The server side of the TLS handshake on ``transport`` (its reading paused; start_tls
    resumes it), within ``timeout`` seconds: the decrypted transport, whose bytes go to
    ``relay``. ``early``: bytes of the handshake read from ``transport`` already. Raises
    :class:`HandshakeFailed` (or ``CancelledError``) with the connection closed and
    ``relay``'s slot given back."""
    loop = asyncio.get_running_loop()
    if early:
        # start_tls installs its TLS protocol on the transport at once, then schedules the
        # protocol's start and the transport's resumption: this callback, scheduled first,
        # runs between the two, so the protocol has these bytes before anything read later.
        loop.call_soon(_hand_early_bytes, transport, early, transport.get_protocol())
    try:
        secure = await loop.start_tls(
            transport, relay, context, server_side=True, ssl_handshake_timeout=timeout
        )
    except (OSError, ssl.SSLError, TimeoutError) as exc:
        relay.abort(transport)
        # A deadline passed: asyncio and uvloop both abort with ConnectionAbortedError.
        timed_out = isinstance(exc, ConnectionAbortedError | TimeoutError)
        reason = getattr(exc, "reason", None) or type(exc).__name__
        raise HandshakeFailed(str(reason), timed_out=timed_out) from exc
    except BaseException:
        relay.abort(transport)
        raise
    if secure is None:  # the client went away during the handshake
        relay.abort(transport)
        raise HandshakeFailed("closed by the client")
    relay.watch(secure)
    return secure


def _hand_early_bytes(
    transport: asyncio.Transport, early: bytes, before: asyncio.BaseProtocol
) -> None:
    """Give ``early`` to the TLS protocol start_tls installed on ``transport`` (in place of
    ``before``), through the protocol interface the transport itself uses: buffered, else
    ``data_received``."""
    protocol = transport.get_protocol()
    if protocol is before or transport.is_closing():
        transport.abort()  # the TLS layer is not there: the handshake cannot start
        return
    if not hasattr(protocol, "buffer_updated"):
        protocol.data_received(early)  # type: ignore[attr-defined]
        return
    view = memoryview(early)
    while view:
        buffer = memoryview(protocol.get_buffer(len(view)))  # type: ignore[attr-defined]
        count = min(len(buffer), len(view))
        buffer[:count] = view[:count]
        protocol.buffer_updated(count)
        view = view[count:]
