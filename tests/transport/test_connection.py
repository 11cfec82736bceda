"""gateway.transport.connection: one upstream connection of the lean transport, over a real
socket pair whose far end the test writes, a piece at a time, each piece read by the
connection before the next is sent (so a split is a split, not coalesced by the kernel).

What only a hand-made client needs proving: a response split at every byte boundary of its head
and chunk framing, chunk extensions and trailers, interim answers, bodies that end early,
framing by the connection's end, the head bound, the read deadline, and bytes that arrive when
no request is out."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import pytest

from gateway.errors import GatewayError
from gateway.transport.connection import MAX_HEAD, PAUSE_ABOVE, Connection
from gateway.transport.pool import Pool, Slots
from gateway.transport.seam import NoAnswer
from gateway.transport.wire import Origin

REQUEST = b"GET /v1/AvailableAddOns HTTP/1.1\r\nHost: upstream.test\r\n\r\n"
HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: application/json\r\n"
    b"Transfer-Encoding: chunked\r\n"
    b"X-Twilio: v1\r\n"
    b"\r\n"
)
# Chunk extensions (one with a quoted value), a chunk of size 0x11, then trailers.
CHUNKED = (
    b'7;name=value;q="a b"\r\n{"a": 1\r\n'
    b'11;ext\r\n, "b": [1, 2, 3]}\r\n'
    b"0\r\nX-Checksum: 1234\r\nX-Trailer-Two: yes\r\n\r\n"
)
BODY = b'{"a": 1, "b": [1, 2, 3]}'


class Counted(Connection):
    """A connection that counts the bytes it was handed, so the test knows each piece landed."""

    def __init__(self, pool: Pool, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(pool, loop)
        self.got = 0

    def data_received(self, data: bytes) -> None:
        self.got += len(data)
        super().data_received(data)


async def _no_dial(pool: Pool) -> Connection:
    raise AssertionError("these tests make their own connections")


@dataclass
class Wire:
    """A connection of a real pool (counted in use, as if taken) and the socket at its far end."""

    pool: Pool
    connection: Counted
    far: socket.socket
    sent: int = 0

    async def feed(self, pieces: Sequence[bytes]) -> None:
        loop = asyncio.get_running_loop()
        for piece in pieces:
            await loop.sock_sendall(self.far, piece)
            self.sent += len(piece)
            async with asyncio.timeout(5):
                while self.connection.got < self.sent and not self.connection.closed:
                    await asyncio.sleep(0)

    def send(self, read: float = 5.0, total: float = 10.0) -> asyncio.Task[Connection]:
        loop = asyncio.get_running_loop()
        coro = self.connection.send(REQUEST, b"", read, loop.time() + total)
        return asyncio.ensure_future(coro)

    def hang_up(self) -> None:
        self.far.close()


@pytest.fixture
async def wire() -> AsyncIterator[Wire]:
    made = await open_wire()
    yield made
    made.far.close()
    made.connection.close()


async def open_wire() -> Wire:
    loop = asyncio.get_running_loop()
    near, far = socket.socketpair()
    far.setblocking(False)
    pool = Pool(Origin.parse("http://upstream.test"), Slots(0), 0, 15.0, _no_dial)
    _, connection = await loop.create_connection(lambda: Counted(pool, loop), sock=near)
    pool.in_use += 1  # as if taken from the pool
    return Wire(pool, connection, far)


async def exchange(wire: Wire, pieces: Sequence[bytes]) -> tuple[Connection, bytes]:
    """Send the request, feed the answer in ``pieces``, read the whole body."""
    task = wire.send()
    await wire.feed(pieces)
    async with asyncio.timeout(5):
        answer = await task
        body = b""
        while chunk := await answer.read_chunk():
            body += chunk
    return answer, body


def check_answer(answer: Connection, body: bytes) -> None:
    assert answer.status == 200
    assert answer.headers["Content-Type"] == "application/json"
    assert answer.headers["X-Twilio"] == "v1"
    assert "X-Checksum" not in answer.headers  # trailers are dropped, never merged in
    assert answer.content_length is None
    assert body == BODY


@pytest.mark.parametrize("where", ["head", "chunk framing"])
async def test_a_response_split_at_every_byte_boundary_reads_the_same(where: str) -> None:
    response = HEAD + CHUNKED
    start, end = (1, len(HEAD)) if where == "head" else (len(HEAD), len(response))
    for cut in range(start, end):
        wire = await open_wire()
        try:
            answer, body = await exchange(wire, [response[:cut], response[cut:]])
            check_answer(answer, body)
            await answer.release()
            assert wire.pool.idle == [wire.connection], cut  # kept alive: framing ended right
        finally:
            wire.far.close()
            wire.connection.close()


async def test_a_response_one_byte_at_a_time_reads_the_same(wire: Wire) -> None:
    response = HEAD + CHUNKED
    answer, body = await exchange(wire, [response[i : i + 1] for i in range(len(response))])
    check_answer(answer, body)


async def test_interim_answers_are_skipped_before_the_final_one(wire: Wire) -> None:
    interim = (
        b"HTTP/1.1 100 Continue\r\n\r\n"
        b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
    )
    final = b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\nX-Final: 1\r\n\r\n{}"
    answer, body = await exchange(wire, [interim, final])
    assert (answer.status, body, answer.content_length) == (201, b"{}", 2)
    assert list(answer.headers) == ["Content-Length", "X-Final"]  # none of the interim ones
    await answer.release()
    assert wire.pool.idle == [wire.connection]


async def test_a_body_until_the_connection_ends_is_whole_at_its_end(wire: Wire) -> None:
    task = wire.send()
    await wire.feed([b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n", b"all of ", b"it"])
    answer = await task
    wire.hang_up()
    async with asyncio.timeout(5):
        assert await answer.read() == b"all of it"
    await answer.release()
    assert wire.pool.idle == [] and wire.pool.in_use == 0  # never kept: it has ended


@pytest.mark.parametrize(
    "sent",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 40,
        HEAD + CHUNKED[:30],
        HEAD + b'7\r\n{"a": ',  # inside a chunk
    ],
    ids=["content-length", "chunked, between chunks", "chunked, inside a chunk"],
)
async def test_a_body_that_ends_early_is_truncated(wire: Wire, sent: bytes) -> None:
    task = wire.send()
    await wire.feed([sent])
    answer = await task
    wire.hang_up()
    with pytest.raises(GatewayError) as caught:
        async with asyncio.timeout(5):
            while await answer.read_chunk():
                pass
    assert (caught.value.kind, caught.value.code) == ("truncated", 88003)
    await answer.release()
    assert wire.pool.in_use == 0 and wire.pool.idle == []


@pytest.mark.parametrize(
    "sent", [b"", b"HTTP/1.1 200 OK\r\nContent-Le"], ids=["nothing", "half a head"]
)
async def test_an_end_before_a_whole_head_is_no_answer(wire: Wire, sent: bytes) -> None:
    """Nothing usable came back: a GET may be sent again (gateway.upstream decides)."""
    task = wire.send()
    if sent:
        await wire.feed([sent])
    wire.hang_up()
    with pytest.raises(NoAnswer) as caught:
        async with asyncio.timeout(5):
            await task
    assert caught.value.error.kind == "reset"
    assert wire.pool.in_use == 0  # the slot is free again


@pytest.mark.parametrize(
    ("sent", "kind"),
    [
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "bad_response"),
        (b"HTTP/1.1 2x0 Fine\r\nContent-Length: 0\r\n\r\n", "bad_response"),
        (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", "bad_response"),
        (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * MAX_HEAD + b"\r\n\r\n", "bad_response"),
        (HEAD + b"zz\r\nnot a chunk size\r\n", "truncated"),
    ],
    ids=["not http", "bad status", "upgrade", "head over the bound", "bad chunk size"],
)
async def test_what_does_not_parse_fails_without_a_retry(
    wire: Wire, sent: bytes, kind: str
) -> None:
    task = wire.send()
    await wire.feed([sent])
    with pytest.raises(GatewayError) as caught:
        async with asyncio.timeout(5):
            answer = await task
            await answer.read()
    assert caught.value.kind == kind
    assert wire.connection.closed


async def test_a_stalled_answer_times_out_at_the_read_deadline(wire: Wire) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    task = wire.send(read=0.2)
    await wire.feed([b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345"])
    answer = await task
    with pytest.raises(GatewayError) as caught:
        await answer.read()
    assert (caught.value.kind, caught.value.status) == ("timeout", 504)
    assert 0.15 < loop.time() - started < 2
    assert wire.connection.closed


async def test_the_total_deadline_holds_however_the_bytes_trickle(wire: Wire) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    task = wire.send(read=0.2, total=0.5)
    await wire.feed([b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"])
    answer = await task

    async def trickle() -> None:
        for _ in range(100):
            await asyncio.sleep(0.05)  # never idle for the read deadline
            with _closed_ok():
                await loop.sock_sendall(wire.far, b" ")

    trickling = asyncio.ensure_future(trickle())
    with pytest.raises(GatewayError) as caught:
        await answer.read()
    trickling.cancel()
    assert caught.value.kind == "timeout"
    assert 0.4 < loop.time() - started < 2


@pytest.mark.parametrize(
    "closing",
    [
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}",
        b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n{}",
    ],
    ids=["Connection: close", "HTTP/1.0"],
)
async def test_an_answer_that_ends_the_connection_is_never_pooled(
    wire: Wire, closing: bytes
) -> None:
    answer, body = await exchange(wire, [closing])
    assert body == b"{}"
    await answer.release()
    assert wire.pool.idle == [] and wire.connection.closed


async def test_a_second_response_in_the_same_read_is_never_handed_out(
    wire: Wire, caplog: pytest.LogCaptureFixture
) -> None:
    first = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
    stale = b'HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n{"x": 1}'
    with caplog.at_level(logging.WARNING, logger="gateway"):
        answer, body = await exchange(wire, [first + stale])
        assert body == b"{}"
        await answer.release()
    assert wire.pool.idle == [] and wire.connection.closed
    assert "nobody asked for" in caplog.text


async def test_an_idle_connection_that_speaks_is_closed(
    wire: Wire, caplog: pytest.LogCaptureFixture
) -> None:
    answer, _ = await exchange(wire, [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"])
    await answer.release()
    assert wire.pool.idle == [wire.connection]
    with caplog.at_level(logging.WARNING, logger="gateway"):
        await wire.feed([b"HTTP/1.1 200 OK\r\n"])
        async with asyncio.timeout(5):
            while wire.pool.idle:
                await asyncio.sleep(0.01)
    assert wire.connection.closed
    assert wire.pool.take() is None  # never handed to the next request
    assert "nobody asked for" in caplog.text


async def test_a_hang_up_while_waiting_closes_the_connection_and_frees_the_slot(
    wire: Wire,
) -> None:
    task = wire.send()
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert wire.connection.closed and wire.pool.in_use == 0


class _closed_ok:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return exc[0] is not None and issubclass(exc[0], OSError)  # type: ignore[arg-type]


async def test_a_head_over_the_bound_is_refused_while_it_still_arrives(wire: Wire) -> None:
    task = wire.send()
    await wire.feed([b"HTTP/1.1 200 OK\r\nX-Big: ", b"a" * 40_000, b"a" * 40_000])
    with pytest.raises(GatewayError) as caught:
        async with asyncio.timeout(5):
            await task
    assert caught.value.kind == "bad_response" and wire.connection.closed


async def test_a_large_body_read_with_its_head_is_no_large_head(wire: Wire) -> None:
    body = b"x" * (4 * MAX_HEAD)
    answer, got = await exchange(
        wire, [b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(body) + body]
    )
    assert (answer.status, got) == (200, body)


async def test_a_body_nobody_reads_yet_stays_in_the_socket(wire: Wire) -> None:
    """Flow control: while the body waits (for the response budget, say), reading stops at
    PAUSE_ABOVE and the upstream's sends stall in the kernel; reading resumes as it is read."""
    size = 8 * 1024 * 1024
    task = wire.send()
    await wire.feed([b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size])
    answer = await task
    piece, pushed, stalled = b"x" * 65536, 0, 0
    while pushed < size and stalled < 20:
        try:
            pushed += wire.far.send(piece[: size - pushed])
            stalled = 0
        except BlockingIOError:
            stalled += 1
            await asyncio.sleep(0.01)
    assert pushed < size  # the sender is held back: nothing reads what it sends
    assert wire.connection._buffered <= PAUSE_ABOVE + 256 * 1024  # a read past the mark at most
    loop = asyncio.get_running_loop()
    sender = asyncio.ensure_future(loop.sock_sendall(wire.far, b"x" * (size - pushed)))
    got = 0
    async with asyncio.timeout(10):
        while chunk := await answer.read_chunk():
            got += len(chunk)
        await sender
    assert got == size
    await answer.release()
    assert wire.pool.idle == [wire.connection]  # read to its end: kept
