"""gateway.serving.deadline: one lazily moved timer, on a real event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

from gateway.serving.deadline import Deadline


class Spy:
    def __init__(self) -> None:
        self.fired: list[float] = []

    def __call__(self) -> None:
        self.fired.append(asyncio.get_running_loop().time())


class CountingLoop:
    """The running loop's clock and timers, counting the timers made."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.made = 0

    def time(self) -> float:
        return self.loop.time()

    def call_at(self, when: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        self.made += 1
        return self.loop.call_at(when, callback)


def counting() -> tuple[CountingLoop, asyncio.AbstractEventLoop]:
    counter = CountingLoop()
    return counter, cast(Any, counter)


async def test_it_expires_once_the_deadline_passes() -> None:
    loop = asyncio.get_running_loop()
    spy = Spy()
    deadline = Deadline(loop, spy)
    began = loop.time()
    deadline.set(0.05)
    await asyncio.sleep(0.15)
    assert len(spy.fired) == 1
    assert spy.fired[0] - began >= 0.05


async def test_a_cleared_deadline_never_expires() -> None:
    spy = Spy()
    deadline = Deadline(asyncio.get_running_loop(), spy)
    deadline.set(0.05)
    deadline.clear()
    await asyncio.sleep(0.12)
    assert spy.fired == []


async def test_a_later_deadline_keeps_the_timer_and_is_still_honoured() -> None:
    counter, loop = counting()
    spy = Spy()
    deadline = Deadline(loop, spy)
    began = loop.time()
    deadline.set(0.05)
    await asyncio.sleep(0.03)
    deadline.set(0.1)  # now due at ~0.13: the timer set for 0.05 stays, and sets itself again
    assert counter.made == 1
    await asyncio.sleep(0.05)
    assert spy.fired == []  # past the first deadline: moved, so nothing yet
    await asyncio.sleep(0.12)
    assert len(spy.fired) == 1
    assert spy.fired[0] - began >= 0.13


async def test_an_earlier_deadline_replaces_the_timer() -> None:
    counter, loop = counting()
    spy = Spy()
    deadline = Deadline(loop, spy)
    began = loop.time()
    deadline.set(5.0)
    deadline.set(0.05)
    assert counter.made == 2
    await asyncio.sleep(0.15)
    assert len(spy.fired) == 1
    assert spy.fired[0] - began < 1.0


async def test_keep_alive_traffic_makes_no_timers() -> None:
    """Set, clear and set again for each request, as the connection handler does."""
    counter, loop = counting()
    deadline = Deadline(loop, Spy())
    deadline.set(10.0)
    for _ in range(100):
        deadline.clear()  # a head arrived
        deadline.set(10.0)  # answered: idle again
    assert counter.made == 1
    deadline.stop()


async def test_stop_cancels_the_timer() -> None:
    loop = asyncio.get_running_loop()
    spy = Spy()
    deadline = Deadline(loop, spy)
    deadline.set(0.05)
    deadline.stop()
    await asyncio.sleep(0.1)
    assert spy.fired == []
    deadline.set(0.02)  # usable again
    await asyncio.sleep(0.1)
    assert len(spy.fired) == 1
