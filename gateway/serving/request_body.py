"""Reading a request body: within its size cap, its deadlines and the process's memory budget.

A body is refused before any of it is read when its declared length is over ``max_body_size``
(413) or would take the bodies held in memory past ``max_buffered_body_size`` (503); only then
does a client that sent ``Expect: 100-continue`` get its ``100 Continue``. The body is then read
with a deadline between two reads (``client_body_timeout``) and one for the whole body
(``client_body_total_timeout``); either one passing is a 408 and the connection is closed. A
chunked body, whose length nobody declared, claims budget as it arrives. What a request holds
of the budget is given back when the request is done (the body lives until the upstream call
is over), and counted towards the next heap trim (:class:`gateway.serving.memory.Trimmer`):
a body arrives in pieces that glibc would otherwise keep after a flood of them.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web
from aiohttp.http import HttpVersion11

from gateway.errors import BadRequest, GatewayBusy, RequestTimeout, RequestTooLarge
from gateway.serving.memory import Trimmer
from gateway.telemetry.metrics import CLIENT_LIMIT_HITS

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


@dataclass(frozen=True, slots=True)
class BodyLimits:
    """Per-request bounds on a body (from the config)."""

    max_size: int
    read_timeout: float  # longest pause between two reads
    total_timeout: float  # the whole body


class BodyBudget:
    """The request-body bytes one process holds in memory at once, and its cap; what is given
    back is counted towards a heap trim by ``trimmer``."""

    __slots__ = ("capacity", "used", "trimmer")

    def __init__(self, capacity: int, trimmer: Trimmer | None = None) -> None:
        self.capacity = capacity
        self.used = 0
        self.trimmer = trimmer or Trimmer()

    def hold(self) -> BodyHold:
        """A request's claim on this budget, empty until it reserves bytes."""
        return BodyHold(self)


class BodyHold:
    """What one request holds of the budget; :meth:`release` gives it all back."""

    __slots__ = ("budget", "held")

    def __init__(self, budget: BodyBudget) -> None:
        self.budget = budget
        self.held = 0

    def reserve(self, size: int) -> None:
        """Claim ``size`` more bytes, or raise :class:`GatewayBusy` (503) when over the cap."""
        budget = self.budget
        if budget.used + size > budget.capacity:
            CLIENT_LIMIT_HITS.labels("max_buffered_body_size").inc()
            raise GatewayBusy(
                "The gateway is holding as many request bodies as it accepts at once; "
                "retry shortly",
                headers={"Retry-After": "1"},
            )
        budget.used += size
        self.held += size

    def release(self) -> None:
        held = self.held
        if held:
            self.held = 0
            self.budget.used -= held
            self.budget.trimmer.released(held)


def expects_continue(request: web.BaseRequest) -> bool:
    """Whether the client waits for ``100 Continue`` before it sends the body."""
    expect = request.headers.get("Expect")
    return (
        expect is not None
        and expect.lower() == "100-continue"
        and request.version == HttpVersion11
        and request.body_exists
    )


async def read_body(request: web.BaseRequest, limits: BodyLimits, hold: BodyHold) -> bytes:
    """The request body byte for byte, within ``limits``, claimed against ``hold``."""
    declared = request.content_length
    if declared is not None and declared > limits.max_size:
        raise RequestTooLarge(f"The request body is larger than {limits.max_size} bytes")
    if not request.body_exists:
        return b""
    if declared is not None:
        hold.reserve(declared)
    if expects_continue(request):
        # aiohttp's own expect handler would have sent this before routing (it is replaced
        # by one that sends nothing in gateway.app); the reset keeps error pages possible.
        await request.writer.write(_CONTINUE)
        request.writer.output_size = 0
    return await _read_within_deadlines(request, limits, hold)


async def _read_within_deadlines(
    request: web.BaseRequest, limits: BodyLimits, hold: BodyHold
) -> bytes:
    loop = asyncio.get_running_loop()
    whole = loop.time() + limits.total_timeout
    chunks: list[bytes] = []
    size = 0
    content = request.content
    try:
        async with asyncio.timeout(None) as deadline:
            while True:
                deadline.reschedule(min(loop.time() + limits.read_timeout, whole))
                chunk = await content.readany()
                if not chunk:
                    break
                size += len(chunk)
                if size > limits.max_size:
                    raise RequestTooLarge(
                        f"The request body is larger than {limits.max_size} bytes"
                    )
                if size > hold.held:  # chunked: nobody declared its length
                    hold.reserve(size - hold.held)
                chunks.append(chunk)
    except TimeoutError as exc:
        CLIENT_LIMIT_HITS.labels("body_timeout").inc()
        if loop.time() >= whole:
            message = f"The request body did not arrive within {limits.total_timeout:g} seconds"
        else:
            message = f"No part of the request body arrived for {limits.read_timeout:g} seconds"
        raise RequestTimeout(message + "; it was not forwarded") from exc
    except web.RequestPayloadError as exc:
        raise BadRequest(
            "The request body is not validly framed; it was not forwarded", closes_connection=True
        ) from exc
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
