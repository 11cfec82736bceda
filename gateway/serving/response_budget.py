"""The upstream response bodies one process holds in memory at once, against their cap
(``max_buffered_response_size``), as :mod:`gateway.serving.request_body` does for request bodies.

Without it, the worst case was every client connection holding a body of ``max_response_size``
(1024 x 16 MB). The transport (:func:`gateway.upstream.forward`) claims a body's bytes from a
request's :class:`ResponseHold` before it reads them: its declared length once the response
head arrived, or, when no length was declared, the bytes as they arrive. The hold is given back
once the body has left memory: for a body sent a slice at a time, when the last slice went to
the client (:meth:`ResponseHold.hand_over`); otherwise when the request is done.

What a claim that does not fit does depends on the request's method:

- A GET (or HEAD) waits for room within the upstream call's deadline; failing that it is
  answered 503 (88006) with ``Retry-After``. A declared body is then never read (the upstream
  connection is closed, not pooled). Claims that grow a body already partly held (a chunked
  one, or a decoded body larger than its coded form) go first when room is given back, since
  their memory is in use already; new claims wait behind them, and among each kind a claim
  that fits is granted before an older one that does not. A growing claim that would wait
  while every byte of the budget is held by claims waiting to grow is refused at once, as
  nobody would give any back.
- Any other method (POST, DELETE) changes state upstream, and by the time its answer's length
  is known the upstream has executed it: refusing it then would report a failure for a change
  that was made, and a client that retries would make it twice. Its claim is therefore always
  granted, even past the cap, and counted, so GETs wait while it is held. Reserving its room
  before forwarding was the other way; it would have to reserve ``max_response_size`` (the
  length is unknown until the answer), which admits four writes at once with the defaults and
  refuses the rest although Twilio answers a write with one resource of a few KB. The size of
  that answer is the upstream's to choose, not the client's, so the overshoot is bounded by the
  writes in flight times one resource.

The budget is per process: under ``--workers N`` each worker has its own, and the gateway may
hold N times the cap. What is given back counts towards the process's next heap trim
(:class:`gateway.serving.memory.Trimmer`, shared with the request bodies): an answer of up to
1 MiB lives in the heap, and a burst of them leaves holes glibc would otherwise keep.
"""

from __future__ import annotations

import asyncio
import weakref
from collections import deque

from gateway.errors import GatewayBusy
from gateway.serving.memory import Trimmer
from gateway.telemetry.metrics import CLIENT_LIMIT_HITS

# Methods whose answer may be refused after the upstream executed them (they change nothing).
SAFE_METHODS = frozenset({"GET", "HEAD"})


class ResponseBudget:
    """The response-body bytes one process holds, its cap, and the claims waiting for room."""

    __slots__ = ("capacity", "used", "stalled", "trimmer", "_growing", "_new")

    def __init__(self, capacity: int, trimmer: Trimmer | None = None) -> None:
        self.capacity = capacity
        self.used = 0
        self.trimmer = trimmer or Trimmer()
        self.stalled = 0  # bytes held by claims waiting to grow
        self._growing: deque[_Waiter] = deque()  # served first
        self._new: deque[_Waiter] = deque()

    def hold(self, method: str) -> ResponseHold:
        """A request's claim on this budget, empty until it claims bytes; ``method`` decides
        whether a claim over the cap may be refused (see the module docstring)."""
        return ResponseHold(self, refusable=method in SAFE_METHODS)

    @property
    def waiting(self) -> int:
        """Claims waiting for room."""
        return len(self._growing) + len(self._new)

    def _grant(self, hold: ResponseHold, size: int) -> None:
        self.used += size
        hold.held += size

    def _given_back(self) -> None:
        """Grant the waiting claims that fit now: growing ones first, then new ones while no
        growing one is left waiting; oldest first within each."""
        room = self.capacity - self.used
        for queue in (self._growing, self._new):
            for waiter in list(queue):
                if waiter.size <= room:
                    queue.remove(waiter)
                    self._grant(waiter.hold, waiter.size)
                    waiter.future.set_result(None)
                    room -= waiter.size
            if queue:
                return


class _Waiter:
    __slots__ = ("hold", "size", "future")

    def __init__(self, hold: ResponseHold, size: int, future: asyncio.Future[None]) -> None:
        self.hold = hold
        self.size = size
        self.future = future

    @property
    def granted(self) -> bool:
        future = self.future
        return future.done() and not future.cancelled()


class ResponseHold:
    """What one request holds of the budget; :meth:`release` gives it all back."""

    __slots__ = ("budget", "held", "refusable")

    def __init__(self, budget: ResponseBudget, *, refusable: bool) -> None:
        self.budget = budget
        self.held = 0
        self.refusable = refusable  # False: a state-changing request, never refused

    async def claim(self, size: int, within: float) -> None:
        """Claim ``size`` more bytes before reading them, waiting up to ``within`` seconds for
        room; raise :class:`GatewayBusy` (503) when a refusable claim gets none."""
        budget = self.budget
        holding = self.held
        fits = budget.used + size <= budget.capacity
        if not self.refusable or (fits and (holding or not budget._growing)):
            budget._grant(self, size)
            return
        if within <= 0 or (holding and budget.stalled + holding >= budget.used):
            raise _refused()
        waiter = _Waiter(self, size, asyncio.get_running_loop().create_future())
        queue = budget._growing if holding else budget._new
        queue.append(waiter)
        budget.stalled += holding
        try:
            async with asyncio.timeout(within):
                await waiter.future
        except TimeoutError:
            if not waiter.granted:
                raise _refused() from None
            # granted as the time ran out: the room is this request's
        finally:
            budget.stalled -= holding
            if not waiter.granted:  # timed out, or the request was cancelled
                queue.remove(waiter)
                budget._given_back()  # new claims may have waited behind this one

    def take(self, size: int) -> None:
        """Count ``size`` more bytes already in memory, past the cap if need be."""
        self.budget._grant(self, size)

    def release(self) -> None:
        """Give back everything held (harmless when nothing is)."""
        held = self.held
        if held:
            self.held = 0
            self.budget.used -= held
            self.budget._given_back()
            self.budget.trimmer.released(held)

    def hand_over(self, owner: object) -> ResponseHold:
        """Move what this hold holds to a new hold tied to ``owner`` (a body that outlives the
        request handler): released when the new hold is, or else when ``owner`` is garbage
        collected, on the event loop. This hold is left empty."""
        moved = ResponseHold(self.budget, refusable=self.refusable)
        moved.held, self.held = self.held, 0
        loop = asyncio.get_running_loop()
        weakref.finalize(owner, _release_on_loop, loop, moved)
        return moved


def _release_on_loop(loop: asyncio.AbstractEventLoop, hold: ResponseHold) -> None:
    """A finalizer may run in any thread (a garbage collection started there)."""
    if not hold.held:
        return
    try:
        loop.call_soon_threadsafe(hold.release)
    except RuntimeError:  # the loop is closed: the process is ending
        pass


def _refused() -> GatewayBusy:
    CLIENT_LIMIT_HITS.labels("max_buffered_response_size").inc()
    return GatewayBusy(
        "The gateway is holding as many upstream response bodies as it accepts at once; "
        "retry shortly",
        headers={"Retry-After": "1"},
    )
