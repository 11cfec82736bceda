"""Every use of aiohttp's private API, in one place, each with the reason it is needed.

tests/test_server.py checks that each private name still exists and still behaves as relied on,
so an aiohttp upgrade that changes one fails there, loudly, rather than somewhere downstream.
pyproject.toml pins aiohttp to the minor versions that test passed on.

1. :class:`GatewayRunner` (``AppRunner._make_server``, swapping ``web.Server.__class__``,
   ``web.Server._loop`` / ``_kwargs``, ``RequestHandler._manager`` / ``_request_count``):
   requests that do not parse never reach the app or its middleware; aiohttp answers them with a
   plain-text page quoting the offending bytes and logs a traceback (a header holding
   ``Authorization`` would land in the log). Here they get Twilio's error JSON, 431 for a line
   or header block over the parser's limits, and one log line naming only the error class.
2. :func:`disable_connection_retry` (``ClientSession._retry_connection``): aiohttp silently
   resends an idempotent request (DELETE too) once when a pooled connection turns out closed;
   :mod:`gateway.upstream` decides retries itself (GET only).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, LineTooLong
from aiohttp.web_protocol import RequestHandler

from gateway.error_response import render_error
from gateway.errors import BadRequest, InternalError
from gateway.public_url import local_host

log = logging.getLogger("gateway")


@dataclass(frozen=True, slots=True)
class ErrorBase:
    """What protocol error bodies write their ``more_info`` links with: the configured public
    base URL, or else the address the client connected to (never a wildcard listen address)."""

    configured: str | None
    listen: tuple[str, int]

    def for_request(self, request: web.BaseRequest) -> str:
        if self.configured:
            return self.configured
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        return f"{request.scheme}://{local_host(sockname, *self.listen)}"


# Where the app tells the runner its public base, for ``more_info`` in protocol error bodies.
ERROR_BASE = web.AppKey("error_base", ErrorBase)


class _TwilioErrorProtocol(RequestHandler):
    """aiohttp's connection handler, answering requests that fail to parse in Twilio's shape."""

    __slots__ = ()

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
        response.force_close()
        return response


class _TwilioErrorServer(web.Server):
    error_base: ErrorBase | None = None

    def __call__(self) -> RequestHandler:
        # private: web.Server.__call__ builds the handler from _loop and _kwargs.
        return _TwilioErrorProtocol(self, loop=self._loop, **self._kwargs)


class GatewayRunner(web.AppRunner):
    """``web.AppRunner`` whose connections answer unparseable requests in Twilio's shape."""

    async def _make_server(self) -> web.Server:
        # private: the runner's server factory; its class is swapped for the subclass above
        # (the constructor's arguments are aiohttp's to choose, so it is not rebuilt here).
        server = await super()._make_server()
        server.__class__ = _TwilioErrorServer
        assert isinstance(server, _TwilioErrorServer)
        server.error_base = self.app.get(ERROR_BASE)
        return server


def disable_connection_retry(session: aiohttp.ClientSession) -> None:
    """Stop ``session`` from resending an idempotent request on a dropped pooled connection."""
    session._retry_connection = False  # private, see the module docstring
