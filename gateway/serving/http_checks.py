"""What the gateway refuses or adjusts at the HTTP level, on every route, before routing.

- A request line naming a version other than HTTP/1.0 or 1.1 (``HTTP/0.9``, ``HTTP/2.0``) is
  answered 505, in HTTP/1.1 (:mod:`gateway.serving.server` marks it).
- A ``Transfer-Encoding`` other than a single ``chunked`` (``identity, chunked``, ``gzip,
  chunked``) is answered 501 and the connection closed: the framing is not one the gateway
  forwards, and what follows on the connection cannot be trusted.
- An ``Expect`` other than ``100-continue`` is answered 417. ``100 Continue`` itself is sent by
  :mod:`gateway.serving.request_body` once routing and the size checks passed, never earlier.
- A request flagged as an upgrade (``Connection: Upgrade``, ``Upgrade: h2c``) is answered and the
  connection closed: aiohttp's C parser loses bytes pipelined behind such a request, so a client
  learns from the close, not from silence, that nothing after it was answered.
- Every response names the gateway in ``Server``, without versions.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.http import HttpVersion11

from gateway.errors import BadRequest
from gateway.serving.headers import SERVER, connection_listed

# The HTTP version a request line named when it was not 1.0 or 1.1 (the request then reads 1.1).
# :mod:`gateway.serving.server` sets it while parsing; the check below reads it.
UNSUPPORTED_VERSION = web.RequestKey("unsupported_version", str)


def refusal(request: web.BaseRequest) -> BadRequest | None:
    """The error a request is answered with before routing, or ``None`` to go on."""
    version = request.get(UNSUPPORTED_VERSION)
    if version is not None:
        return BadRequest(
            f"{version} is not supported here; send HTTP/1.1", status=505, closes_connection=True
        )
    codings = request.headers.getall("Transfer-Encoding", ())
    if codings and [part.strip().lower() for part in ",".join(codings).split(",")] != ["chunked"]:
        return BadRequest(
            "Only the chunked transfer coding is supported; it was not forwarded",
            status=501,
            closes_connection=True,
        )
    expect = request.headers.get("Expect")
    if expect is not None and request.version == HttpVersion11 and expect.lower() != "100-continue":
        return BadRequest("Only the expectation 100-continue is supported", status=417)
    return None


def closes_after(request: web.BaseRequest) -> bool:
    """Whether the connection is closed once this request is answered (upgrade requests)."""
    headers = request.headers
    return "Upgrade" in headers or "upgrade" in connection_listed(headers)


async def expect_nothing(request: web.Request) -> None:
    """The expect handler of every route: sends nothing (aiohttp's sends ``100 Continue`` as
    soon as the path matches, before any check); see :mod:`gateway.serving.request_body`."""


async def server_header(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: the gateway's ``Server`` header on every response (aiohttp's
    default names the Python and aiohttp versions; an upstream's is not passed on)."""
    response.headers["Server"] = SERVER
