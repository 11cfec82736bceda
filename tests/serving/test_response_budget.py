"""gateway.serving.response_budget: claims granted, waited for and refused by method, given
back, and handed over to a body that outlives its request.

The budget on its own here; through a real ``gateway serve`` with a real upstream on loopback,
many large answers at once and the RSS they take, in tests/test_response_budget_serve.py.
"""

from __future__ import annotations

import asyncio
import gc
import threading

import pytest
from prometheus_client import REGISTRY

from gateway.errors import GatewayBusy
from gateway.serving.response_budget import ResponseBudget


def refusals() -> float:
    labels = {"limit": "max_buffered_response_size"}
    return REGISTRY.get_sample_value("gateway_client_limit_hits_total", labels) or 0.0


async def test_claims_that_fit_are_granted_and_given_back() -> None:
    budget = ResponseBudget(100)
    first, second = budget.hold("GET"), budget.hold("GET")
    await first.claim(60, 1.0)
    await second.claim(40, 1.0)
    assert (budget.used, first.held, second.held) == (100, 60, 40)
    first.release()
    first.release()  # twice is harmless
    assert budget.used == 40
    second.release()
    assert budget.used == 0


async def test_a_get_waits_for_room_and_gets_it_when_it_is_given_back() -> None:
    budget = ResponseBudget(100)
    holder, waiter = budget.hold("GET"), budget.hold("GET")
    await holder.claim(70, 1.0)
    claim = asyncio.create_task(waiter.claim(50, 5.0))
    await asyncio.sleep(0.05)
    assert not claim.done() and budget.waiting == 1
    holder.release()
    await asyncio.wait_for(claim, 1.0)
    assert (budget.used, waiter.held, budget.waiting) == (50, 50, 0)


async def test_a_get_that_finds_no_room_in_time_is_refused_503_with_retry_after() -> None:
    budget = ResponseBudget(100)
    await budget.hold("GET").claim(70, 1.0)
    late = budget.hold("GET")
    before = refusals()
    with pytest.raises(GatewayBusy) as refused:
        await late.claim(50, 0.2)
    error = refused.value
    assert (error.status, error.code, dict(error.headers)) == (503, 88006, {"Retry-After": "1"})
    assert (late.held, budget.used, budget.waiting) == (0, 70, 0)
    assert refusals() == before + 1


async def test_a_get_holding_part_of_a_body_is_refused_at_once_rather_than_wait() -> None:
    """Waiting while holding could leave every holder waiting for the others."""
    budget = ResponseBudget(100)
    chunked = budget.hold("GET")
    await chunked.claim(60, 1.0)
    await budget.hold("GET").claim(30, 1.0)
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(GatewayBusy):
        await chunked.claim(20, 5.0)
    assert loop.time() - began < 0.1
    assert chunked.held == 60  # what it held stays until the request releases it


@pytest.mark.parametrize("method", ["POST", "DELETE"])
async def test_a_state_changing_request_is_never_refused_and_counts(method: str) -> None:
    budget = ResponseBudget(100)
    await budget.hold("GET").claim(60, 1.0)
    write = budget.hold(method)
    await write.claim(50, 0)  # over the cap, and no time to wait: granted all the same
    assert (write.held, budget.used) == (50, 110)
    get = asyncio.create_task(budget.hold("GET").claim(20, 5.0))
    await asyncio.sleep(0.05)
    assert not get.done()  # GETs wait while the write holds its bytes
    write.release()
    await asyncio.wait_for(get, 1.0)


async def test_waiting_claims_are_granted_oldest_first_and_a_smaller_one_may_pass() -> None:
    budget = ResponseBudget(100)
    holder = budget.hold("GET")
    await holder.claim(100, 1.0)
    order: list[str] = []

    async def claim(name: str, size: int) -> None:
        await budget.hold("GET").claim(size, 5.0)
        order.append(name)

    tasks = [asyncio.create_task(claim(n, s)) for n, s in [("a", 60), ("b", 60), ("c", 30)]]
    await asyncio.sleep(0.05)
    holder.release()
    await asyncio.sleep(0.05)
    assert order == ["a", "c"]  # b does not fit beside a; c does
    assert budget.used == 90 and budget.waiting == 1
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert budget.waiting == 0


async def test_a_cancelled_waiter_leaves_the_queue() -> None:
    budget = ResponseBudget(100)
    await budget.hold("GET").claim(100, 1.0)
    waiter = budget.hold("GET")
    task = asyncio.create_task(waiter.claim(10, 5.0))
    await asyncio.sleep(0.05)
    task.cancel()  # the client went away
    with pytest.raises(asyncio.CancelledError):
        await task
    assert (budget.waiting, waiter.held, budget.used) == (0, 0, 100)


class _Body:
    """Stands for a response body that outlives its request handler."""


async def test_a_handed_over_hold_is_released_by_its_owner_or_when_the_owner_goes() -> None:
    budget = ResponseBudget(100)
    request = budget.hold("GET")
    await request.claim(40, 1.0)
    body = _Body()
    moved = request.hand_over(body)
    assert (request.held, moved.held, budget.used) == (0, 40, 40)
    request.release()  # the request is done: the body keeps its bytes
    assert budget.used == 40
    moved.release()  # the last slice was written
    assert budget.used == 0
    del body  # and the owner going later gives back nothing twice
    gc.collect()
    await asyncio.sleep(0)
    assert budget.used == 0

    request = budget.hold("GET")
    await request.claim(30, 1.0)
    orphan = _Body()
    request.hand_over(orphan)
    done = threading.Event()

    def drop() -> None:  # collected in another thread: released on the loop all the same
        nonlocal orphan
        del orphan
        gc.collect()
        done.set()

    await asyncio.to_thread(drop)
    assert done.is_set()
    for _ in range(10):
        if budget.used == 0:
            break
        await asyncio.sleep(0.01)
    assert budget.used == 0
