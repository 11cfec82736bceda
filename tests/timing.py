"""Timing that holds on a loaded machine: other processes only ever add time to a run, so the
shortest of several runs is the closest measure of the work itself. And a deadline, so that a
runaway computation (a regex backtracking for hours) fails its test instead of hanging it."""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Callable, Iterator
from types import FrameType


def best_of(action: Callable[[], object], runs: int = 15) -> float:
    """Seconds of the fastest of ``runs`` calls of ``action``."""
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return best


def growth(
    small: Callable[[], object], large: Callable[[], object], bound: float, rounds: int = 8
) -> tuple[float, float]:
    """``(small seconds, large seconds)`` of the round whose ratio large/small is lowest,
    each the best of 5 runs, rounds alternating the two until one is under ``bound``.

    A large input is slowed more than a small one by others' load on a shared machine (it
    leaves the caches that the small one stays in), and the load comes and goes: the round
    with the least of it tells how the work itself grows. Work that grows faster than the
    bound allows is over it in every round.
    """
    best: tuple[float, float] | None = None
    for _ in range(rounds):
        measured = (best_of(small, 5), best_of(large, 5))
        if best is None or measured[1] * best[0] < best[1] * measured[0]:
            best = measured
        if best[1] < bound * best[0]:
            break
    assert best is not None
    return best


def large_blocks_from_the_heap() -> None:
    """Have glibc serve blocks of a few hundred KB from its heap, as in a serving process
    (gateway/serving/memory.py sets its mmap threshold to 1 MiB). Until a large block is freed,
    glibc maps each block over 128 KiB afresh, and its page faults can make a 200 KB rewrite
    four times slower than the same work on a warm heap; freeing one block of 4 MiB raises the
    threshold above that (glibc's dynamic threshold), whatever ran in this process before."""
    block = bytes(4 << 20)
    del block


class TooSlow(AssertionError):
    """Raised in the main thread when a :func:`deadline` passes."""


@contextlib.contextmanager
def deadline(seconds: float, what: str) -> Iterator[None]:
    """Fail with :class:`TooSlow` if the block runs longer than ``seconds`` of wall time.

    SIGALRM interrupts Python code and the ``re`` engine (it checks for signals as it
    backtracks); main thread only.
    """

    def expire(signum: int, frame: FrameType | None) -> None:
        raise TooSlow(f"{what}: still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
