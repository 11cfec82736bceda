"""The one place a :class:`~gateway.errors.GatewayError` becomes an HTTP response.

Used by the error middleware (errors raised by any handler), by the pipeline (errors on a
matched route, which also carry the route's deprecation headers) and by the connection handler
for requests that do not parse. The body is Twilio's error JSON; an error class that
``closes_connection`` is sent with ``Connection: close``.
"""

from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from gateway.errors import GatewayError, error_body


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
    return response
