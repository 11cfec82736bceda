"""gateway.serving.response_budget: claims granted, waited for and refused by method, given
back, and handed over to a body that outlives its request.

The budget on its own first; then through a real ``gateway serve`` (uvloop and asyncio) with a
real upstream on loopback: many large answers at once and the RSS they take, a GET refused with
its body unread, a POST that is never refused.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import aiohttp
import pytest
from prometheus_client import REGISTRY

from gateway.errors import GatewayBusy
from gateway.serving.memory import Trimmer
from gateway.serving.response_budget import ResponseBudget
from tests.processes import LOOPS, free_port, rss, start_gateway, wait_ready
from tests.raw_upstream import RawUpstream, head


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


async def test_a_claim_growing_a_body_goes_before_new_claims() -> None:
    budget = ResponseBudget(100)
    reader, chunked, new = budget.hold("GET"), budget.hold("GET"), budget.hold("GET")
    await reader.claim(50, 1.0)
    await chunked.claim(30, 1.0)
    grow = asyncio.create_task(chunked.claim(40, 5.0))
    await asyncio.sleep(0.02)
    fresh = asyncio.create_task(new.claim(10, 5.0))  # would fit, but a growing claim waits
    await asyncio.sleep(0.02)
    assert not grow.done() and not fresh.done()
    assert (budget.waiting, budget.stalled) == (2, 30)
    reader.release()
    await asyncio.wait_for(asyncio.gather(grow, fresh), 1.0)
    assert (chunked.held, new.held, budget.used, budget.stalled) == (70, 10, 80, 0)


async def test_growing_claims_that_would_wait_on_each_other_are_refused_at_once() -> None:
    """Waiting while every byte held waits to grow would leave each waiting on the others."""
    budget = ResponseBudget(100)
    first, second = budget.hold("GET"), budget.hold("GET")
    await first.claim(50, 1.0)
    await second.claim(50, 1.0)
    grow = asyncio.create_task(first.claim(10, 5.0))  # second may still give room back
    await asyncio.sleep(0.02)
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(GatewayBusy):
        await second.claim(10, 5.0)  # but now nobody would
    assert loop.time() - began < 0.1
    second.release()  # the refused request is done
    await asyncio.wait_for(grow, 1.0)
    assert (first.held, budget.used) == (60, 60)


async def test_a_new_claim_that_times_out_behind_a_growing_one_lets_others_in() -> None:
    budget = ResponseBudget(100)
    reader, chunked = budget.hold("GET"), budget.hold("GET")
    await reader.claim(60, 1.0)
    await chunked.claim(30, 1.0)
    grow = asyncio.create_task(chunked.claim(20, 0.3))  # waits, then times out
    await asyncio.sleep(0.02)
    new = budget.hold("GET")
    fresh = asyncio.create_task(new.claim(10, 5.0))  # fits, but waits behind it
    await asyncio.sleep(0.02)
    assert not fresh.done()
    with pytest.raises(GatewayBusy):
        await grow
    await asyncio.wait_for(fresh, 0.5)  # let in as the growing claim left the line
    assert budget.used == 100 and budget.waiting == 0 and budget.stalled == 0


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


async def test_what_is_given_back_counts_towards_the_heap_trim() -> None:
    trimmer = Trimmer(threshold=1 << 40)  # counts, never trims
    budget = ResponseBudget(10 * MiB, trimmer)
    hold = budget.hold("GET")
    await hold.claim(3 * MiB, within=1)
    assert trimmer.pending == 0
    hold.release()
    hold.release()  # nothing left: counted once
    assert trimmer.pending == 3 * MiB


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


# -- through a real gateway serve, with a real upstream on loopback -----------------------------

MiB = 1024 * 1024
LIST = "/marketplace/AvailableAddOns"
INSTALL = "/marketplace/InstalledAddOns"
BIG = 15_000_000  # four fit in the default 64 MiB budget, a fifth does not


class LargeAnswers:
    """An upstream on loopback answering ``?size=N`` with N bytes (Content-Length, or chunked
    with ``&chunked=1``), to GET and POST alike; ``&stall=1`` sends the head and then nothing,
    until the gateway closes the connection, which it records."""

    def __init__(self) -> None:
        self.upstream = RawUpstream(self._answer)
        self.stalled_closed: list[float] = []  # seconds each stalled answer waited for a close
        self._body = b"x" * BIG

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request_head = self.upstream.heads[-1]  # this connection's: appended just before
        query = parse_qs(urlsplit(request_head.split(b" ")[1].decode()).query)
        size = int(query["size"][0])
        status = "201 Created" if request_head.startswith(b"POST ") else "200 OK"
        kind = "Content-Type: application/octet-stream"
        if "chunked" in query:
            writer.write(head(status, kind, "Transfer-Encoding: chunked", "Connection: close"))
            for start in range(0, size, 1 << 20):
                piece = self._body[start : min(size, start + (1 << 20))]
                writer.write(b"%x\r\n" % len(piece) + piece + b"\r\n")
                await writer.drain()
            writer.write(b"0\r\n\r\n")
        else:
            writer.write(head(status, kind, f"Content-Length: {size}", "Connection: close"))
            if "stall" in query:
                await writer.drain()
                began = time.monotonic()
                await reader.read()  # nothing comes; returns when the gateway closes
                self.stalled_closed.append(time.monotonic() - began)
                return
            writer.write(memoryview(self._body)[:size])
        await writer.drain()


@pytest.fixture
async def large_answers() -> AsyncIterator[LargeAnswers]:
    answers = LargeAnswers()
    await answers.upstream.start()
    yield answers
    await answers.upstream.close()


@pytest.fixture
async def serve(
    large_answers: LargeAnswers, tmp_path: Path
) -> AsyncIterator[Callable[..., Awaitable[tuple[str, int, int]]]]:
    processes: list[subprocess.Popen[bytes]] = []

    async def starter(event_loop: str, *flags: str) -> tuple[str, int, int]:
        """The gateway's URL, port and pid."""
        port = free_port()
        process = start_gateway(
            large_answers.upstream.url,
            port,
            *flags,
            log=tmp_path / f"gateway-{port}.log",
            loop=event_loop,
        )
        processes.append(process)
        url = f"http://127.0.0.1:{port}"
        await wait_ready(url, process)
        async with aiohttp.ClientSession() as session:  # warm pools, caches and arenas
            for _ in range(3):
                async with session.get(f"{url}{LIST}?size={2 * MiB}") as response:
                    await response.read()
        return url, port, process.pid

    yield starter
    for process in processes:
        process.terminate()
        process.wait(timeout=15)


@pytest.mark.upstream
@pytest.mark.slow
@pytest.mark.parametrize("event_loop", LOOPS)
async def test_many_large_answers_at_once_stay_within_the_budget(
    event_loop: str, serve: Callable[..., Awaitable[tuple[str, int, int]]]
) -> None:
    """20 clients ask for 15 MB at once (declared and chunked), with the default 64 MiB budget:
    each gets its whole answer, four at most held at a time, and once they are answered their
    bodies are gone although the connections stay open. With no budget to speak of
    (``--max-buffered-response-size 10G``) RSS rose by 340 MiB; before the bodies were dropped
    once written, each idle connection kept its last one (+270 MiB after the answers)."""
    url, _, pid = await serve(event_loop)
    before = rss(pid)
    samples = [before]

    async def sample() -> None:
        while True:
            samples.append(rss(pid))
            await asyncio.sleep(0.02)

    async def fetch(session: aiohttp.ClientSession, query: str) -> tuple[int, int]:
        async with session.get(f"{url}{LIST}?size={BIG}{query}") as response:
            return response.status, len(await response.read())

    sampler = asyncio.create_task(sample())
    began = time.monotonic()
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
            # Four of the 20 are chunked: their claims grow as their bytes arrive, and five
            # 15 MB ones could fill the 64 MiB budget with growing claims alone, which the
            # budget then breaks by refusing one (by design: test_growing_claims_that_would_wait_on_
            # each_other_are_refused_at_once).
            got = await asyncio.gather(
                *(fetch(session, "&chunked=1" if n % 5 == 4 else "") for n in range(20))
            )
            took = time.monotonic() - began
            await asyncio.sleep(0.2)
            after = rss(pid)  # the 20 connections still open, idle
    finally:
        sampler.cancel()
    peak = max(samples)
    print(
        f"\n{event_loop}: 20 answers of 15 MB in {took:.1f} s; RSS before {before / MiB:.1f} "
        f"MiB, peak {peak / MiB:.1f} MiB (+{(peak - before) / MiB:.1f}), "
        f"after {after / MiB:.1f} MiB"
    )
    assert got == [(200, BIG)] * 20
    assert after - before < 32 * MiB
    # The budget, a second copy of each body being read as its pieces are joined, and slack.
    assert peak - before < 2 * 64 * MiB + 32 * MiB


@pytest.mark.upstream
@pytest.mark.slow
@pytest.mark.parametrize("event_loop", LOOPS)
async def test_idle_connections_do_not_keep_their_last_answer(
    event_loop: str, serve: Callable[..., Awaitable[tuple[str, int, int]]]
) -> None:
    """aiohttp keeps each connection's last response until the next request on it. 100 clients
    keep their connections open after a 1 MB answer each: before the bodies were dropped once
    written, RSS stayed 100 MB up (1 MB per idle connection, outside any budget). The bodies
    given back are trimmed from the heap shortly after (they are under glibc's 1 MiB mmap
    threshold); memory a connection still held would never come back, so RSS is watched for
    a few seconds and its lowest value judged."""
    url, port, pid = await serve(event_loop)
    size = 1_000_000
    before = rss(pid)
    streams = [await asyncio.open_connection("127.0.0.1", port) for _ in range(100)]
    try:
        for _, writer in streams:
            writer.write(f"GET {LIST}?size={size} HTTP/1.1\r\nHost: gw\r\n\r\n".encode())
        for reader, _ in streams:
            async with asyncio.timeout(30):
                answer = await reader.readuntil(b"\r\n\r\n")
                assert answer.startswith(b"HTTP/1.1 200 ")
                await reader.readexactly(size)  # and the connection stays open, idle
        idle = rss(pid)
        deadline = time.monotonic() + 5
        while idle - before >= 40 * MiB and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            idle = min(idle, rss(pid))
    finally:
        for _, writer in streams:
            writer.close()
    print(f"\n{event_loop}: 100 idle connections after 1 MB each: +{(idle - before) / MiB:.1f} MiB")
    # Each kept 1 MB before. On asyncio's loop a connection may keep the capacity of its write
    # buffer (at most a 256 KiB slice and 64 KiB more: 31 MiB for 100); uvloop keeps none.
    assert idle - before < 40 * MiB


class NonReader:
    """A client that asks for a large answer and reads none of it (a tiny receive buffer)."""

    def __init__(self, port: int, target: str) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(f"GET {target} HTTP/1.1\r\nHost: gw\r\n\r\n".encode())


@pytest.mark.upstream
@pytest.mark.slow
@pytest.mark.parametrize("event_loop", LOOPS)
async def test_a_get_without_room_is_refused_unread_and_a_post_is_never_refused(
    event_loop: str,
    serve: Callable[..., Awaitable[tuple[str, int, int]]],
    large_answers: LargeAnswers,
) -> None:
    """Four clients that read nothing hold the whole budget with their 15 MB answers. A fifth
    GET waits for room until its 3 s deadline, then gets 503 (88006) with Retry-After, its body
    never read: the upstream sent only the head and the gateway closed the connection (before
    the budget, the gateway waited for that body and answered 504). A POST with a 10 MB answer
    meanwhile gets it whole. Once the four go, a GET of 15 MB is answered again."""
    url, port, pid = await serve(event_loop, "--connect-timeout", "1", "--total-timeout", "3")
    before = rss(pid)
    holders = [NonReader(port, f"{LIST}?size={BIG}") for _ in range(4)]
    try:
        await asyncio.sleep(1.0)  # their answers are read and waiting to be sent
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            began = time.monotonic()
            async with session.get(f"{url}{LIST}?size={BIG}&stall=1") as refused:
                error = await refused.json()
                refused_after = time.monotonic() - began
                assert refused.status == 503, error
                assert refused.headers["Retry-After"] == "1"
            assert error["code"] == 88006 and "upstream response bodies" in error["message"]
            assert 2.0 <= refused_after < 4.5  # it waited for room, within its deadline
            for _ in range(50):  # the gateway closed that upstream connection, body unread
                if large_answers.stalled_closed:
                    break
                await asyncio.sleep(0.02)
            assert len(large_answers.stalled_closed) == 1
            async with session.post(f"{url}{INSTALL}?size={10 * MiB}", data=b"A=1") as created:
                assert (created.status, len(await created.read())) == (201, 10 * MiB)
            held = rss(pid)
            for holder in holders:
                holder.sock.close()
            await asyncio.sleep(0.5)
            async with session.get(f"{url}{LIST}?size={BIG}") as answered:
                assert (answered.status, len(await answered.read())) == (200, BIG)
    finally:
        for holder in holders:
            holder.sock.close()
    print(
        f"\n{event_loop}: RSS before {before / MiB:.1f} MiB, with the response budget held "
        f"{held / MiB:.1f} MiB, 503 after {refused_after:.1f} s"
    )
