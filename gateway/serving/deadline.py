"""One deadline at a time on the event loop, moved without remaking its timer each time.

A kept-alive client connection sets a deadline for every request head and every idle wait,
and clears it once the head arrived; an upstream connection of the lean transport moves its
read deadline at every piece of a response. Making and cancelling a timer for each cost a few
microseconds a request. Here setting a deadline only records it; the timer is remade only
when the new deadline comes before the one the timer is set for, and a timer that fires
before the deadline in force sets itself again for that. Steady keep-alive traffic then makes
no timers at all, and an idle connection's timer fires about once per deadline length.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Deadline:
    """Calls ``expire`` once the deadline last set passes, unless cleared before that."""

    __slots__ = ("_loop", "_expire", "_timer", "_timer_at", "_at")

    def __init__(self, loop: asyncio.AbstractEventLoop, expire: Callable[[], None]) -> None:
        self._loop = loop
        self._expire = expire
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0  # loop time the timer is set for
        self._at: float | None = None  # the deadline in force, if any

    def set(self, seconds: float) -> None:
        """Expire ``seconds`` from now (replacing any deadline set before)."""
        self.set_at(self._loop.time() + seconds)

    def set_at(self, at: float) -> None:
        """Expire at loop time ``at`` (replacing any deadline set before)."""
        self._at = at
        if self._timer is None or self._timer_at > at:
            self._start(at)

    def clear(self) -> None:
        """No deadline; the timer, if any, finds nothing to do when it fires."""
        self._at = None

    def stop(self) -> None:
        """No deadline and no timer (the connection is gone)."""
        self._at = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _start(self, at: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        self._timer = self._loop.call_at(at, self._fire)

    def _fire(self) -> None:
        self._timer = None
        at = self._at
        if at is None:
            return
        if at > self._loop.time():  # moved on since the timer was set
            self._start(at)
            return
        self._at = None
        self._expire()
