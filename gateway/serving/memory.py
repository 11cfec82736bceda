"""Giving freed memory back to the OS (glibc's allocator; nothing happens elsewhere).

Large bodies come and go in bursts (a flood of slow readers, several 15 MB pages at once).
Without help, glibc keeps what they used in the heap for the life of the process.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
from typing import Any

TRIM_AFTER = 8 * 1024 * 1024  # bytes released before a trim is worth its cost
TRIM_INTERVAL = 1.0  # seconds; at most one trim this often
TRIM_SETTLE = 0.5  # seconds; a trim waits this long for the buffers around a release to go too


def _libc() -> Any:
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


def return_large_blocks_to_the_os() -> None:
    """With glibc, give every allocation of 1 MiB or more (a large body) a mapping of its own,
    returned to the OS as soon as it is freed. By default glibc raises that threshold to the
    largest block freed so far (up to 32 MiB), after which a burst of large bodies keeps its
    memory in the heap. A ``MALLOC_MMAP_THRESHOLD_`` in the environment is left to decide."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is None:  # not glibc (or musl's stub): nothing to tune
        return
    m_mmap_threshold = -3  # from <malloc.h>
    mallopt(m_mmap_threshold, 1 << 20)


def trim() -> None:
    """Hand the heap's free pages back to the OS (``malloc_trim(0)``: the pieces of a large
    body, read or written a chunk at a time, leave holes that glibc otherwise keeps). Costs
    about 0.1 ms; ctypes releases the GIL while it runs, so call it from a worker thread."""
    malloc_trim = getattr(_libc(), "malloc_trim", None)
    if malloc_trim is not None:
        malloc_trim(0)


class Trimmer:
    """Trims (:func:`trim`) once a large amount of memory was released, throttled so that it
    costs nothing per request.

    A request body arrives in pieces of at most 64 KiB, each below the 1 MiB threshold of
    :func:`return_large_blocks_to_the_os`, so a flood of bodies leaves the heap full of holes
    that glibc keeps: 100 slow bodies and 100 slowloris connections cut off left RSS 37 MB
    above where it started. Whoever frees such memory calls :meth:`released` with its size (an
    addition and a comparison). Once ``threshold`` bytes were released since the last trim, one
    trim is scheduled, ``settle`` seconds later (by then the connections whose bodies were
    released have closed, and their buffers are free too) and no sooner than ``interval`` after
    the previous one; it runs in a worker thread, off the event loop. The releases after that
    trim count towards the next, so the last of a burst is trimmed too, once it adds up to
    ``threshold``. Call from the event loop only.
    """

    __slots__ = ("threshold", "interval", "settle", "pending", "trims", "_last", "_timer")

    def __init__(
        self,
        threshold: int = TRIM_AFTER,
        interval: float = TRIM_INTERVAL,
        settle: float = TRIM_SETTLE,
    ) -> None:
        self.threshold = threshold
        self.interval = interval
        self.settle = settle
        self.pending = 0  # bytes released since the last trim was scheduled to run
        self.trims = 0  # trims started, for the tests
        self._last = float("-inf")  # loop time of the last trim
        self._timer: asyncio.TimerHandle | None = None

    def released(self, size: int) -> None:
        """``size`` bytes were freed (or are about to be)."""
        self.pending += size
        if self.pending < self.threshold or self._timer is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (a unit test): nothing to schedule a trim on
            return
        delay = max(self.settle, self._last + self.interval - loop.time())
        self._timer = loop.call_later(delay, self._run, loop)

    def _run(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        self.pending = 0
        self._last = loop.time()
        self.trims += 1
        try:
            loop.run_in_executor(None, trim)
        except RuntimeError:  # the worker threads were shut down: the process is ending
            pass
