"""Send one request upstream: the only module that does client I/O.

aiohttp errors are translated here, and only here, into the gateway's error tree, each with a
``kind`` for the failure metric. Redirects are never followed (so ``Authorization`` never
leaves for another host), the body is read up to a size cap, and a GET that got no answer at
all (the connection could not be made, or closed before a status line arrived) is tried once
more while the deadline allows; nothing else is retried (a POST may have created a resource,
a DELETE may have deleted one). aiohttp's own silent retry of idempotent methods (DELETE
included) is switched off where the session is made, so this module's rule is the only one.
The body is returned as sent, in its content coding (``gateway.rewrite.content_coding`` decodes it,
or passes an unknown coding on untouched).

Before a body is read, its bytes are claimed from the request's
:class:`~gateway.serving.response_budget.ResponseHold` (``max_buffered_response_size``): the
declared length once the head arrived, or the bytes as they arrive when none was declared. A GET
may wait there for room, or be refused (503) with its body unread; the rules are the budget's,
so that another transport behind this seam keeps them by making the same two calls.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

import aiohttp
from yarl import URL

from gateway.errors import (
    GatewayError,
    UpstreamBadResponse,
    UpstreamResponseTooLarge,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.models import UpstreamRequest, UpstreamResponse
from gateway.serving import memory
from gateway.serving.response_budget import ResponseHold

log = logging.getLogger("gateway")
JOIN_ON_LOOP_MAX = 1024 * 1024  # bytes; a larger body is put together in a worker thread
_NO_USER_AGENT = ("User-Agent",)
_NO_BODY = (204, 304)  # statuses whose Content-Length describes no body that follows


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-call deadlines and caps (from the config)."""

    connect: float
    read: float
    total: float
    max_response_size: int


async def forward(
    session: aiohttp.ClientSession, request: UpstreamRequest, limits: Limits, hold: ResponseHold
) -> UpstreamResponse:
    """Send ``request`` and return the whole response, its body claimed from ``hold`` (which
    the caller releases once the body has left memory); raise a ``GatewayError`` on failure."""
    started = time.monotonic()
    deadline = started + limits.total
    attempts = 2 if request.method == "GET" else 1
    for attempt in range(1, attempts + 1):
        try:
            return await _send_once(session, request, limits, hold, deadline, started)
        except _NoAnswer as exc:
            # Nothing came back, so a GET may be tried once more.
            if attempt < attempts and deadline - time.monotonic() > limits.connect:
                continue
            if exc.error.kind == "dns":  # once per request, not per attempt
                _log_dns_failure(exc.__cause__)
            raise exc.error from exc.__cause__
    raise AssertionError("unreachable")


class _NoAnswer(Exception):
    """The upstream sent nothing back: the connect failed or the connection closed first."""

    def __init__(self, error: GatewayError) -> None:
        super().__init__(error.message)
        self.error = error


def _connect_error(exc: aiohttp.ClientConnectorError) -> GatewayError:
    if isinstance(exc, aiohttp.ClientSSLError | aiohttp.ClientConnectorCertificateError):
        return UpstreamUnavailable("TLS verification of the upstream failed", kind="tls")
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return UpstreamUnavailable(
            "The upstream host name could not be resolved (DNS lookup failed)", kind="dns"
        )
    return UpstreamUnavailable("The upstream refused the connection", kind="refused")


def _log_dns_failure(cause: BaseException | None) -> None:
    """One line naming the host and the resolver's answer: no URL, so no userinfo or query."""
    if isinstance(cause, aiohttp.ClientConnectorDNSError):
        reason = cause.os_error.strerror or type(cause.os_error).__name__
        log.warning("upstream host %s does not resolve: %s", cause.host, reason)


async def _send_once(
    session: aiohttp.ClientSession,
    request: UpstreamRequest,
    limits: Limits,
    hold: ResponseHold,
    deadline: float,
    started: float,
) -> UpstreamResponse:
    remaining = max(deadline - time.monotonic(), 0.001)
    # ``connect`` bounds the wait for a pooled connection plus the connect itself.
    timeout = aiohttp.ClientTimeout(
        total=remaining, connect=min(limits.connect, remaining), sock_read=limits.read
    )
    try:
        response = await session.request(
            request.method,
            URL(request.url, encoded=True),
            headers=request.headers,
            data=request.body or None,
            allow_redirects=False,
            timeout=timeout,
            auto_decompress=False,  # decoded, or not, by gateway.rewrite.content_coding
            # A client that sent no User-Agent gets none added for it ("Python/3.x aiohttp/...").
            # Asked for only then: skipping costs aiohttp a header copy on every request.
            skip_auto_headers=None if "User-Agent" in request.headers else _NO_USER_AGENT,
        )
    except aiohttp.ClientConnectorError as exc:
        raise _NoAnswer(_connect_error(exc)) from exc
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
        raise _NoAnswer(
            UpstreamUnavailable("The upstream closed the connection", kind="reset")
        ) from exc
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise _translate(exc) from exc
    try:
        async with response:
            body = await _read_capped(response, limits.max_response_size, hold, deadline)
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise _translate(exc) from exc
    return UpstreamResponse(
        status=response.status,
        headers=response.headers,
        body=body,
        seconds=time.monotonic() - started,
    )


def _translate(exc: BaseException) -> GatewayError:
    """The gateway error for an aiohttp failure once the connection was made."""
    if isinstance(exc, TimeoutError):  # aiohttp's ServerTimeoutError family subclasses it
        return UpstreamTimeout("The upstream did not answer in time", kind="timeout")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return UpstreamBadResponse("The upstream response body was cut short", kind="truncated")
    if isinstance(exc, aiohttp.ClientResponseError):
        return UpstreamBadResponse("The upstream sent a malformed response", kind="bad_response")
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError):
        return UpstreamUnavailable("The upstream closed the connection", kind="reset")
    return UpstreamBadResponse("The upstream call failed", kind="bad_response")


async def _read_capped(
    response: aiohttp.ClientResponse, cap: int, hold: ResponseHold, deadline: float
) -> bytes:
    """The whole body, refusing (before reading it) one whose declared length is over cap, and
    claiming its bytes from ``hold`` before they are read (the declared length) or as they
    arrive (no length declared)."""
    declared = response.content_length
    if declared is not None and declared > cap:
        raise _too_large(cap)
    claimed = 0
    if declared and response.method != "HEAD" and response.status not in _NO_BODY:
        await hold.claim(declared, deadline - time.monotonic())
        claimed = declared
    if declared is not None and declared <= JOIN_ON_LOOP_MAX:
        return await response.read()  # framed by a small length: one read, no chunk loop
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > cap:
            raise _too_large(cap)
        if size > claimed:  # no length was declared
            await hold.claim(size - claimed, deadline - time.monotonic())
            claimed = size
        chunks.append(chunk)
    if size <= JOIN_ON_LOOP_MAX:
        return b"".join(chunks)
    # Copying megabytes costs the event loop milliseconds each: a worker thread does it, and
    # then gives the pieces' memory back to the OS.
    return await asyncio.get_running_loop().run_in_executor(None, _join_and_trim, chunks)


def _join_and_trim(chunks: list[bytes]) -> bytes:
    body = b"".join(chunks)
    chunks.clear()
    memory.trim()
    return body


def _too_large(cap: int) -> UpstreamResponseTooLarge:
    return UpstreamResponseTooLarge(
        f"The upstream response is larger than {cap} bytes", kind="too_large"
    )
