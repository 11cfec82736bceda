"""Send one request upstream through the process's transport (:mod:`gateway.transport`).

What is decided here holds on every transport: the deadline of the whole call, across
attempts; the single retry of a GET that got no answer at all (the connection could not be
made, or closed before a response head arrived) while the deadline allows, and of nothing else
(a POST may have created a resource, a DELETE may have deleted one); and the size cap on the
body, checked against the declared length before reading and against the bytes read while
reading. The transports translate their own errors into the same failures
(:mod:`gateway.transport.seam`), so a failure's kind and code do not depend on the transport.
Redirects are never followed (so ``Authorization`` never leaves for another host). The body
is returned as sent, in its content coding (``gateway.rewrite.content_coding`` decodes it, or
passes an unknown coding on untouched).

Before a body is read, its bytes are claimed from the request's
:class:`~gateway.serving.response_budget.ResponseHold` (``max_buffered_response_size``): the
declared length once the head arrived, or the bytes as they arrive when none was declared. A GET
may wait there for room, or be refused (503) with its body unread. The budget is claimed here,
above the transports, so that both keep its rules alike.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from gateway.models import UpstreamRequest, UpstreamResponse
from gateway.serving import memory
from gateway.serving.response_budget import ResponseHold
from gateway.transport import seam
from gateway.transport.seam import Answer, NoAnswer, Timeouts, Transport

log = logging.getLogger("gateway")
JOIN_ON_LOOP_MAX = 1024 * 1024  # bytes; a larger body is put together in a worker thread
_NO_BODY = (204, 304)  # statuses whose Content-Length describes no body that follows


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-call deadlines and caps (from the config)."""

    connect: float
    read: float
    total: float
    max_response_size: int


async def forward(
    transport: Transport, request: UpstreamRequest, limits: Limits, hold: ResponseHold
) -> UpstreamResponse:
    """Send ``request`` and return the whole response, its body claimed from ``hold`` (which
    the caller releases once the body has left memory); raise a ``GatewayError`` on failure."""
    started = time.monotonic()
    deadline = started + limits.total
    attempts = 2 if request.method == "GET" else 1
    for attempt in range(1, attempts + 1):
        remaining = max(deadline - time.monotonic(), 0.001)
        # ``connect`` bounds the wait for a pooled connection plus the connect itself.
        timeouts = Timeouts(min(limits.connect, remaining), limits.read, remaining)
        try:
            answer = await transport.send(request, timeouts)
        except NoAnswer as exc:
            # Nothing came back, so a GET may be tried once more.
            if attempt < attempts and deadline - time.monotonic() > limits.connect:
                continue
            if exc.log_line is not None:  # once per request, not per attempt
                log.warning("%s", exc.log_line)
            raise exc.error from exc.__cause__
        try:
            body = await _read_capped(
                answer, limits.max_response_size, hold, deadline, request.method
            )
        finally:
            await answer.release()
        return UpstreamResponse(
            status=answer.status,
            headers=answer.headers,
            body=body,
            seconds=time.monotonic() - started,
        )
    raise AssertionError("unreachable")


async def _read_capped(
    answer: Answer, cap: int, hold: ResponseHold, deadline: float, method: str
) -> bytes:
    """The whole body, refusing (before reading it) one whose declared length is over cap, and
    claiming its bytes from ``hold`` before they are read (the declared length) or as they
    arrive (no length declared)."""
    declared = answer.content_length
    if declared is not None and declared > cap:
        raise seam.too_large(cap)
    claimed = 0
    if declared and method != "HEAD" and answer.status not in _NO_BODY:
        await hold.claim(declared, deadline - time.monotonic())
        claimed = declared
    if declared is not None and declared <= JOIN_ON_LOOP_MAX:
        return await answer.read()  # framed by a small length: one read, no chunk loop
    chunks: list[bytes] = []
    size = 0
    while chunk := await answer.read_chunk():
        size += len(chunk)
        if size > cap:
            raise seam.too_large(cap)
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
