"""Send one request upstream: the only module that does client I/O.

aiohttp errors are translated here, and only here, into the gateway's error tree, each with a
``kind`` for the failure metric. Redirects are never followed (so ``Authorization`` never
leaves for another host), the body is read up to a size cap, and a GET whose connection could
not be made is tried once more while the deadline allows; nothing else is retried (a POST may
have created a resource).
"""

from __future__ import annotations

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


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-call deadlines and caps (from the config)."""

    connect: float
    read: float
    total: float
    max_response_size: int


async def forward(
    session: aiohttp.ClientSession, request: UpstreamRequest, limits: Limits
) -> UpstreamResponse:
    """Send ``request`` and return the whole response; raise a ``GatewayError`` on failure."""
    started = time.monotonic()
    deadline = started + limits.total
    attempts = 2 if request.method == "GET" else 1
    for attempt in range(1, attempts + 1):
        try:
            return await _send_once(session, request, limits, deadline, started)
        except aiohttp.ClientConnectorError as exc:
            # Nothing reached the upstream, so a GET may be tried once more.
            if attempt < attempts and deadline - time.monotonic() > limits.connect:
                continue
            raise _connect_error(exc) from exc
    raise AssertionError("unreachable")


def _connect_error(exc: aiohttp.ClientConnectorError) -> GatewayError:
    if isinstance(exc, aiohttp.ClientSSLError | aiohttp.ClientConnectorCertificateError):
        return UpstreamUnavailable("TLS verification of the upstream failed", kind="tls")
    return UpstreamUnavailable("The upstream refused the connection", kind="refused")


async def _send_once(
    session: aiohttp.ClientSession,
    request: UpstreamRequest,
    limits: Limits,
    deadline: float,
    started: float,
) -> UpstreamResponse:
    remaining = max(deadline - time.monotonic(), 0.001)
    # ``connect`` bounds the wait for a pooled connection plus the connect itself.
    timeout = aiohttp.ClientTimeout(
        total=remaining, connect=min(limits.connect, remaining), sock_read=limits.read
    )
    try:
        async with session.request(
            request.method,
            URL(request.url, encoded=True),
            headers=request.headers,
            data=request.body or None,
            allow_redirects=False,
            timeout=timeout,
        ) as response:
            body = await _read_capped(response, limits.max_response_size)
            return UpstreamResponse(
                status=response.status,
                headers=response.headers,
                body=body,
                seconds=time.monotonic() - started,
            )
    except aiohttp.ClientConnectorError:
        raise
    except TimeoutError as exc:  # aiohttp's ServerTimeoutError family subclasses it
        raise UpstreamTimeout("The upstream did not answer in time", kind="timeout") from exc
    except aiohttp.ClientPayloadError as exc:
        raise UpstreamBadResponse(
            "The upstream response body was cut short", kind="truncated"
        ) from exc
    except aiohttp.ClientResponseError as exc:
        raise UpstreamBadResponse(
            "The upstream sent a malformed response", kind="bad_response"
        ) from exc
    except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
        raise UpstreamUnavailable("The upstream closed the connection", kind="reset") from exc
    except aiohttp.ClientError as exc:
        raise UpstreamBadResponse("The upstream call failed", kind="bad_response") from exc


async def _read_capped(response: aiohttp.ClientResponse, cap: int) -> bytes:
    """The whole body, refusing (before reading it) one whose declared length is over cap."""
    declared = response.content_length
    if declared is not None and declared > cap:
        raise UpstreamResponseTooLarge(
            f"The upstream response is larger than {cap} bytes", kind="too_large"
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > cap:
            raise UpstreamResponseTooLarge(
                f"The upstream response is larger than {cap} bytes", kind="too_large"
            )
        chunks.append(chunk)
    return b"".join(chunks)
