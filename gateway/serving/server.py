"""Every use of aiohttp's private API, in one place, each with the reason it is needed.

tests/serving/test_server.py checks that each private name still exists and still behaves as
relied on, so an aiohttp upgrade that changes one fails there, loudly, rather than somewhere
downstream. pyproject.toml pins aiohttp to the minor versions that test passed on.

1. :class:`GatewayRunner` (``AppRunner._make_server``, swapping ``web.Server.__class__``,
   ``web.Server._loop`` / ``_kwargs``, ``RequestHandler._manager`` / ``_request_count``):
   requests that do not parse never reach the app or its middleware; aiohttp answers them with a
   plain-text page quoting the offending bytes and logs a traceback (a header holding
   ``Authorization`` would land in the log). Here they get Twilio's error JSON, 431 for a line
   or header block over the parser's limits, and one log line naming only the error class.
2. The same connection handler bounds what a client may hold (:class:`ClientLimits`; aiohttp
   keeps an idle connection for an hour and bounds nothing else): a deadline for each request
   head, an idle timeout between requests, and a deadline for a response write that makes no
   progress (the cap on open connections is the listener's, :mod:`gateway.serving.site`; a
   handler gives the slot back when its connection ends). It counts the requests parsed on the
   connection (``_request_count``) against the responses finished to know when the connection
   is idle, and fails the body of the request in hand (``_current_request``) when a chunked
   body's framing breaks: aiohttp's C parser drops that body's reader silently and the handler
   would wait for the rest until its deadline.
3. ``web.Server.request_factory`` is wrapped so that a request line naming a version other than
   HTTP/1.0 or 1.1 (``HTTP/0.9``, ``HTTP/2.0``) is answered 505 in HTTP/1.1 instead of in the
   version the client named (aiohttp writes the status line in the request's version).
4. :func:`disable_connection_retry` (``ClientSession._retry_connection``): aiohttp silently
   resends an idempotent request (DELETE too) once when a pooled connection turns out closed;
   :mod:`gateway.upstream` decides retries itself (GET only).
5. :func:`discard_connections_speaking_out_of_turn` (``BaseConnector._factory``, subclassing
   ``client_proto.ResponseHandler``): aiohttp parses and queues a response that arrives on a
   pooled connection nobody asked, and hands it to the next request on that connection, which
   may be another consumer's. Here such a connection is closed at once (nginx does the same
   with an idle upstream connection that turns readable), so it is never reused.
6. :func:`register_site` (``BaseSite._server``): the gateway's own site
   (:class:`gateway.serving.site.GatewaySite`) counts connections at accept, before TLS, and
   does the handshake itself; it hands its asyncio server to aiohttp as ``TCPSite`` does, so the
   runner lists its address and stops it at cleanup.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import socket
import struct
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import StreamReader, web
from aiohttp.client_proto import ResponseHandler
from aiohttp.http import HttpVersion10, HttpVersion11, RawRequestMessage
from aiohttp.http_exceptions import BadHttpMethod, LineTooLong
from aiohttp.web_protocol import RequestHandler

from gateway.errors import BadRequest, InternalError, RequestTimeout
from gateway.serving.client_limits import CLIENT_LIMITS, ClientLimits
from gateway.serving.deadline import Deadline
from gateway.serving.error_response import CLOSE_AT_ONCE, ErrorBase, render_error, render_raw
from gateway.serving.headers import SERVER
from gateway.serving.http_checks import UNSUPPORTED_VERSION
from gateway.telemetry.metrics import CLIENT_LIMIT_HITS

log = logging.getLogger("gateway")


# Where the app tells the runner its public base, for ``more_info`` in protocol error bodies.
ERROR_BASE = web.AppKey("error_base", ErrorBase)


_HEADER = "header"  # waiting for (the rest of) a request head
_IDLE = "idle"  # between requests on a kept-alive connection


class _TwilioErrorProtocol(RequestHandler):
    """aiohttp's connection handler, answering requests that fail to parse in Twilio's shape
    and bounding how long a client may take (see :class:`ClientLimits`)."""

    __slots__ = (
        "_limits",
        "_answered",
        "_head_started",
        "_deadline",
        "_deadline_kind",
        "_send_watch",
        "_unread_body",
        "_on_lost",
    )

    def __init__(self, manager: web.Server, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        server = manager if isinstance(manager, _TwilioErrorServer) else None
        self._limits = server.limits if server is not None else None
        self._answered = 0  # responses finished; the connection is idle when it equals the
        # requests parsed (aiohttp's private _request_count)
        self._head_started = False  # bytes of the next request head arrived while idle
        self._deadline = Deadline(self._loop, self._expire)
        self._deadline_kind = _HEADER
        self._send_watch: asyncio.TimerHandle | None = None
        self._unread_body: StreamReader | None = None  # the last request's, while not read out
        self._on_lost: Callable[[], None] | None = None  # gives the listener's slot back

    # -- the connection's start and end --------------------------------------------------
    # The listener counted and capped the connection at accept (gateway.serving.site); the
    # handler only gives its slot back (on_lost) when the connection ends.

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self._limits is not None:
            self._arm(_HEADER, self._limits.header_timeout)

    def connection_lost(self, exc: BaseException | None) -> None:
        self._deadline.stop()
        if self._send_watch is not None:
            self._send_watch.cancel()
            self._send_watch = None
        try:
            super().connection_lost(exc)
        finally:
            on_lost, self._on_lost = self._on_lost, None
            if on_lost is not None:
                on_lost()

    # -- request head and idle deadlines --------------------------------------------------

    def data_received(self, data: bytes) -> None:
        limits = self._limits
        parsed = self._request_count  # private: requests parsed on this connection
        if limits is not None and data and not self._head_started and self._between(parsed):
            self._head_started = True
            if self._deadline_kind != _HEADER:
                self._arm(_HEADER, limits.header_timeout)  # the idle wait ends, the head's begins
        super().data_received(data)
        if self._request_count != parsed:  # a head is complete, or the parser gave up
            self._head_started = False
            self._disarm()
            current = self._current_request  # private: the request being handled, if any
            if current is not None and not current.content.is_eof():
                # Nothing parses behind a body still being read, so its framing broke: aiohttp
                # drops the body's reader without telling it, and the handler would wait on it.
                current.content.set_exception(web.RequestPayloadError("malformed body framing"))

    def _between(self, parsed: int) -> bool:
        """Whether the connection is between requests: every request parsed was answered, and
        the rest of an unread body is not still arriving (aiohttp reads it to discard it)."""
        unread = self._unread_body
        return parsed == self._answered and (unread is None or unread.is_eof())

    async def finish_response(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        result = await super().finish_response(request, resp, start_time)
        self._answered += 1
        body = request.content
        self._unread_body = None if body.is_eof() else body
        if resp.get(CLOSE_AT_ONCE):  # the client is not sending the rest: do not wait for it
            self.force_close()
        limits = self._limits
        if (
            limits is not None
            and self._request_count == self._answered
            and not self._head_started
            and self.transport is not None
        ):
            self._arm(_IDLE, limits.keepalive_timeout)
        return result

    def _arm(self, kind: str, seconds: float) -> None:
        self._deadline_kind = kind
        self._deadline.set(seconds)

    def _disarm(self) -> None:
        self._deadline.clear()

    def _expire(self) -> None:
        transport = self.transport
        if transport is None or self._request_count != self._answered:
            return  # closed already, or a request is being handled: its own deadlines apply
        if self._deadline_kind == _HEADER:
            CLIENT_LIMIT_HITS.labels("header_timeout").inc()
            if self._head_started:  # part of a request arrived: say why it is dropped
                server = self._manager
                if isinstance(server, _TwilioErrorServer):
                    transport.write(server.header_timeout_response)
            log.debug("closed a connection that sent no complete request head in time")
        self.force_close()

    # -- response writes that make no progress --------------------------------------------

    def pause_writing(self) -> None:
        super().pause_writing()
        transport = self.transport
        if self._limits is not None and transport is not None and self._send_watch is None:
            self._watch_send(transport.get_write_buffer_size())

    def resume_writing(self) -> None:
        super().resume_writing()
        if self._send_watch is not None:
            self._send_watch.cancel()
            self._send_watch = None

    def _watch_send(self, pending: int) -> None:
        assert self._limits is not None
        self._send_watch = self._loop.call_later(
            self._limits.send_timeout, self._check_send, pending
        )

    def _check_send(self, pending_before: int) -> None:
        self._send_watch = None
        transport = self.transport
        if transport is None or not self.writing_paused:
            return
        pending = transport.get_write_buffer_size()
        if pending < pending_before:  # the client read something: give it another period
            self._watch_send(pending)
            return
        CLIENT_LIMIT_HITS.labels("send_timeout").inc()
        log.debug("dropped a connection whose client read nothing of its response in time")
        sock = transport.get_extra_info("socket")
        if sock is not None:  # a reset, so the kernel drops its queued bytes too (nginx's
            # reset_timedout_connection); a FIN would wait behind them for the client
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()  # frees the unsent bytes at once

    # -- unparseable requests -------------------------------------------------------------

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # as aiohttp: the response is under way already
            raise ConnectionError("Response is sent already, cannot send an error response")
        manager = self._manager  # private: the web.Server that made this handler
        found = manager.error_base if isinstance(manager, _TwilioErrorServer) else None
        base = found.for_request(request) if found is not None else "/"
        if status >= 500:
            log.error("unexpected error on %s", request.remote, exc_info=exc)
            error: InternalError | BadRequest = InternalError("Internal gateway error")
        else:
            # private: a bad method on a connection's first request is usually a TLS or
            # HTTP/2 client knocking on the wrong port, not worth a warning.
            quiet = isinstance(exc, BadHttpMethod) and self._request_count == 1
            (log.debug if quiet else log.warning)(
                "refused a malformed request from %s: %s", request.remote, type(exc).__name__
            )
            if isinstance(exc, LineTooLong) or "Too many headers" in str(exc):
                error = BadRequest(
                    "The request line or headers are larger than the gateway accepts", status=431
                )
            else:
                error = BadRequest("The request is not valid HTTP; it was not forwarded")
        response = render_error(error, base)
        response.headers["Server"] = SERVER
        response.force_close()
        return response


_SUPPORTED_VERSIONS = (HttpVersion10, HttpVersion11)


class _TwilioErrorServer(web.Server):
    error_base: ErrorBase | None = None
    limits: ClientLimits | None = None
    header_timeout_response: bytes = b""

    def __call__(self) -> RequestHandler:
        # private: web.Server.__call__ builds the handler from _loop and _kwargs.
        return _TwilioErrorProtocol(self, loop=self._loop, **self._kwargs)

    def configure(self, error_base: ErrorBase | None, limits: ClientLimits | None) -> None:
        self.error_base = error_base
        static_base = error_base.static() if error_base is not None else "/"
        self.limits = limits
        late = RequestTimeout("The request line and headers did not arrive in time")
        self.header_timeout_response = render_raw(late, static_base, SERVER)
        # request_factory is read by each handler as it is made: wrap it before any is.
        self.request_factory = functools.partial(_versioned_request, self.request_factory)


def _versioned_request(
    make: Any, message: RawRequestMessage, *args: Any, **kwargs: Any
) -> web.BaseRequest:
    """The request as aiohttp makes it; one naming an unsupported version reads HTTP/1.1 and is
    marked, so that it is answered 505 in a version the client can read, and closed."""
    version = message.version
    if version in _SUPPORTED_VERSIONS:
        request: web.BaseRequest = make(message, *args, **kwargs)
        return request
    message = message._replace(version=HttpVersion11, should_close=True)
    request = make(message, *args, **kwargs)
    request[UNSUPPORTED_VERSION] = f"HTTP/{version.major}.{version.minor}"
    return request


class GatewayRunner(web.AppRunner):
    """``web.AppRunner`` whose connections answer unparseable requests in Twilio's shape and
    hold to the app's :class:`ClientLimits`."""

    async def _make_server(self) -> web.Server:
        # private: the runner's server factory; its class is swapped for the subclass above
        # (the constructor's arguments are aiohttp's to choose, so it is not rebuilt here).
        server = await super()._make_server()
        server.__class__ = _TwilioErrorServer
        assert isinstance(server, _TwilioErrorServer)
        server.configure(self.app.get(ERROR_BASE), self.app.get(CLIENT_LIMITS))
        return server


def connection_handler(
    server: web.Server, on_lost: Callable[[], None] | None = None
) -> web.RequestHandler:
    """A handler for one new connection of ``server`` (a :class:`GatewayRunner`'s), which its
    listener counted already; ``on_lost`` is called once when the connection ends."""
    handler = server()
    if on_lost is not None:
        if not isinstance(handler, _TwilioErrorProtocol):
            raise TypeError("connection_handler needs a GatewayRunner's server")
        handler._on_lost = on_lost
    return handler


def register_site(site: web.BaseSite, listener: asyncio.AbstractServer) -> None:
    """Make ``listener`` the asyncio server of ``site``, as aiohttp's own sites do, so that
    ``runner.addresses`` lists it and ``site.stop()`` closes it."""
    site._server = listener  # private, see the module docstring


def disable_connection_retry(session: aiohttp.ClientSession) -> None:
    """Stop ``session`` from resending an idempotent request on a dropped pooled connection."""
    session._retry_connection = False  # private, see the module docstring


class _TurnTakingResponseHandler(ResponseHandler):
    """An upstream connection that closes itself when bytes arrive that no request asked for:
    before the first request, or after the final response to the last one was complete."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self._awaiting = False  # a request was sent and its final response is not complete

    def set_response_params(self, **kwargs: Any) -> None:
        # Called for every request, after the connection left the pool and before the request
        # is written (ClientSession._request).
        self._awaiting = True
        super().set_response_params(**kwargs)

    def feed_data(self, data: Any, size: int = 0) -> None:
        message, payload = data
        if not self._awaiting:  # a second response in the same read: never hand it out
            self._out_of_turn()
            return
        super().feed_data(data, size)
        if message.code >= 200:  # final (1xx are interim)
            payload.on_eof(self._answered)

    def _answered(self) -> None:
        self._awaiting = False

    def data_received(self, data: bytes) -> None:
        if data and not self._awaiting:
            self._out_of_turn()
            return
        super().data_received(data)

    def _out_of_turn(self) -> None:
        if self.transport is not None:
            log.warning("closed an upstream connection that sent a response nobody asked for")
        self.force_close()  # never pooled again (should_close)
        self.close()  # and is_connected() is false for a pooled one


def discard_connections_speaking_out_of_turn(connector: aiohttp.BaseConnector) -> None:
    """Make ``connector`` close any pooled connection that receives bytes while idle."""
    loop = asyncio.get_running_loop()
    # private: the protocol factory every new connection of the connector is made with.
    # (mypy reads functools.partial as invariant; a subclass's partial is what is meant.)
    factory = functools.partial(_TurnTakingResponseHandler, loop=loop)
    connector._factory = factory  # type: ignore[assignment]
