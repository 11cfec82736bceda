"""The one place a :class:`~gateway.errors.GatewayError` becomes an HTTP response.

Used by the error middleware (errors raised by any handler), by the pipeline (errors on a
matched route, which also carry the route's deprecation headers) and by the connection handler
for requests that do not parse. The body is Twilio's error JSON; an error class that
``closes_connection`` is sent with ``Connection: close``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus

from aiohttp import web

from gateway.errors import GatewayError, error_body
from gateway.serving.public_url import local_host

# Set on a response after which the connection closes at once, without reading (to discard)
# the rest of the request body first, as aiohttp otherwise does for up to 10 s: the client is
# not sending it (it stalled, or waits for a 100 Continue that will not come).
CLOSE_AT_ONCE = web.ResponseKey("close_at_once", bool)


def render_error(
    error: GatewayError, public_base: str, extra_headers: Iterable[tuple[str, str]] = ()
) -> web.Response:
    """``error`` as Twilio error JSON, with its own headers and then ``extra_headers``."""
    response = web.Response(
        status=error.status,
        body=error_body(error.status, error.code, error.message, public_base),
        content_type="application/json",
    )
    response.headers.extend(error.headers)
    response.headers.extend(extra_headers)
    if error.closes_connection:
        response.force_close()
        response[CLOSE_AT_ONCE] = True
    return response


def render_raw(error: GatewayError, public_base: str, server: str) -> bytes:
    """``error`` as a whole HTTP/1.1 response in bytes, with ``Connection: close``, for a
    connection that has no request to answer (over the connection cap, a head never finished)."""
    body = error_body(error.status, error.code, error.message, public_base)
    lines = [
        f"HTTP/1.1 {error.status} {HTTPStatus(error.status).phrase}",
        f"Server: {server}",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        *(f"{name}: {value}" for name, value in error.headers.items()),
        "Connection: close",
        "",
        "",
    ]
    return "\r\n".join(lines).encode() + body


@dataclass(frozen=True, slots=True)
class ErrorBase:
    """What protocol error bodies write their ``more_info`` links with: the configured public
    base URL, or else the address the client connected to (never a wildcard listen address)."""

    configured: str | None
    listen: tuple[str, int]

    def static(self) -> str:
        """For answers written before any request exists (busy, head timeout)."""
        return self.configured or f"http://{local_host(None, *self.listen)}"

    def for_request(self, request: web.BaseRequest) -> str:
        if self.configured:
            return self.configured
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        return f"{request.scheme}://{local_host(sockname, *self.listen)}"
