"""One upstream connection of the lean transport: an asyncio protocol that sends a request at a
time and parses its answer with ``httptools`` (llhttp, the parser uvicorn uses).

The connection is also the :class:`~gateway.transport.seam.Answer` to the request it carries:
the head is handed over once it is complete, the body as it arrives. It frames bodies by
``Content-Length``, by chunked coding (extensions and trailers read and dropped), or by the
connection's end; skips interim (1xx) answers; and bounds the head at :data:`MAX_HEAD`.

Its read deadline is one lazily moved timer (:class:`gateway.serving.deadline.Deadline`):
every piece of a response moves it to ``read`` seconds on, never past the attempt's total
deadline, without remaking the timer. Once the final answer is complete the connection is
idle, and a byte that arrives while it is idle (a response nobody asked for, which the next
request, maybe another consumer's, would otherwise read as its own) closes it for good.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.serving.deadline import Deadline
from gateway.transport import seam
from gateway.transport.seam import NoAnswer

log = logging.getLogger("gateway")

MAX_HEAD = 64 * 1024  # bytes of status line and headers (aiohttp's client: 8190 a line)
# Flow control: a body piled up this far beyond what was read pauses reading from the socket
# (the rest waits in the kernel, and the upstream's sends stall), until it is read down to
# RESUME_BELOW. A body whose bytes wait for the response budget is not read meanwhile.
PAUSE_ABOVE = 256 * 1024
RESUME_BELOW = 64 * 1024
_NO_HEADERS: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())


class Owner(Protocol):
    """What a connection tells its pool (:class:`gateway.transport.pool.Pool`)."""

    def release(self, connection: Connection, reusable: bool) -> None: ...

    def lost(self, connection: Connection) -> None: ...


class Connection(asyncio.Protocol):
    """One kept-alive connection to one origin, owned by its pool."""

    def __init__(self, pool: Owner, loop: asyncio.AbstractEventLoop) -> None:
        self._pool = pool
        self._loop = loop
        self.transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._deadline = Deadline(loop, self._expired)
        self.closed = False
        self.idle_since = 0.0  # loop time it went back to the pool
        self._waiter: asyncio.Future[None] | None = None
        self._awaiting = False  # a request is out and its final answer is not complete
        self._stray = False  # bytes arrived that no request asked for: never reuse
        self._released = True
        self._failure: Exception | None = None
        self._read = 0.0
        self._total_at = 0.0
        self._head_only = False
        self._head_size = 0  # bytes received before the head was complete
        self._head_bytes = 0  # bytes of the header names and values parsed
        self._raw_headers: list[tuple[str, str]] = []
        self._head_done = False
        self._complete = False
        self._keep_alive = False
        self._chunks: list[bytes] = []
        self._buffered = 0  # bytes in _chunks
        self._paused = False  # reading from the socket is paused (flow control)
        self._whole = False  # read() wants the whole body: no pausing
        self.status = 0
        self.headers = _NO_HEADERS
        self.content_length: int | None = None
        self._framed = False  # by Content-Length or chunked coding, not by the connection's end

    # -- the request --------------------------------------------------------------------

    async def send(self, head: bytes, body: bytes, read: float, total_at: float) -> Connection:
        """Write the request; return once the answer's head is complete (raises a failure)."""
        self._released = False
        self._awaiting = True
        self._failure = None
        self._read, self._total_at = read, total_at
        self._head_only = head.startswith(b"HEAD ")
        self._head_size = 0
        self._head_done = self._complete = False
        self._chunks = []
        self._buffered = 0
        self._whole = False
        if self._paused:  # (never kept paused: a body is read to its end to be kept)
            self._resume()
        transport = self.transport
        if transport is None or self.closed:  # it closed since it was taken: nothing was sent
            self._give_up()
            raise NoAnswer(seam.reset())
        self._deadline.set_at(min(self._loop.time() + read, total_at))
        if body:
            transport.writelines((head, body))
        else:
            transport.write(head)
        try:
            while not self._head_done and self._failure is None:
                await self._wait()
        except asyncio.CancelledError:  # the client hung up: the upstream sees it at once
            self._give_up()
            raise
        if self._failure is not None:
            failure = self._failure
            self._give_up()
            raise failure
        return self

    async def _wait(self) -> None:
        waiter = self._loop.create_future()
        self._waiter = waiter
        try:
            await waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _give_up(self) -> None:
        """The request failed before its answer was handed out: close and free the slot."""
        self.close()
        self._released = True
        self._pool.release(self, reusable=False)

    # -- the answer (seam.Answer) -----------------------------------------------------------

    async def read(self) -> bytes:
        self._whole = True
        if self._paused:
            self._resume()
        while not self._complete:
            if self._failure is not None:
                raise self._failure
            await self._wait()
        chunks = self._chunks
        self._chunks = []
        self._buffered = 0
        return b"".join(chunks)

    async def read_chunk(self) -> bytes:
        while True:
            chunks = self._chunks
            if chunks:  # one piece as it came: a large body is never copied on the loop here
                piece = chunks.pop(0) if len(chunks) > 1 else chunks.pop()
                self._buffered -= len(piece)
                if self._paused and self._buffered < RESUME_BELOW:
                    self._resume()
                return piece
            if self._complete:
                return b""
            if self._failure is not None:
                raise self._failure
            await self._wait()

    async def release(self) -> None:
        if self._released:
            return
        self._released = True
        reusable = (
            self._complete
            and self._keep_alive
            and not self._stray
            and not self.closed
            and self._failure is None
        )
        if not reusable:
            self.close()
        self._pool.release(self, reusable)

    # -- asyncio.Protocol -----------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport instances; both have what is used here.
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if not self._awaiting:
            self._out_of_turn()
            return
        self._deadline.set_at(min(self._loop.time() + self._read, self._total_at))
        in_head = not self._head_done
        if in_head:
            self._head_size += len(data)
        try:
            self._parser.feed_data(data)
        except (httptools.HttpParserError, httptools.HttpParserUpgrade):
            if self._stray:  # a second response in the same read; the first one stands
                self._out_of_turn()
            else:
                self._fail(seam.truncated() if self._head_done else seam.malformed())
            return
        if in_head and not self._head_done and self._head_size > MAX_HEAD:
            self._fail(seam.malformed())  # still no end of the head: no more is read
        elif self._buffered > PAUSE_ABOVE and not self._whole and self._awaiting:
            self._pause()

    def eof_received(self) -> bool | None:
        return None  # close the transport; connection_lost decides what the end means

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self._deadline.stop()
        if self._awaiting:
            if self._head_done and not self._framed and self._failure is None:
                self._finish(keep_alive=False)  # the body ran to the connection's end
            elif not self._head_done:
                self._fail(NoAnswer(seam.reset()))  # nothing came back: a GET may retry
            else:
                self._fail(seam.truncated())
        self._pool.lost(self)

    def close(self) -> None:
        transport = self.transport
        if transport is not None and not self.closed:
            self.closed = True
            transport.close()

    # -- httptools callbacks -----------------------------------------------------------------

    def on_message_begin(self) -> None:
        if not self._awaiting:  # a response after the final one, in the same read
            self._stray = True
            raise _Stray
        self._raw_headers = []
        self._head_bytes = 0

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._head_done:  # after the head: a chunked body's trailer, dropped
            self._head_bytes += len(name) + len(value)
            if self._head_bytes > MAX_HEAD:
                raise _Stray  # a head this large is refused however it arrived
            # decoded as aiohttp decodes a header
            self._raw_headers.append(
                (name.decode("utf-8", "surrogateescape"), value.decode("utf-8", "surrogateescape"))
            )

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if status < 200:
            if status == 101:
                raise _Stray  # no upgrade is ever asked for
            return  # an interim answer (100 Continue, 103 Early Hints): skipped
        headers = CIMultiDictProxy(CIMultiDict(self._raw_headers))
        self.status, self.headers = status, headers
        length = headers.get("Content-Length")
        self.content_length = int(length) if length is not None else None
        coding = headers.get("Transfer-Encoding", "")
        chunked = coding.rpartition(",")[2].strip().lower() == "chunked"
        self._framed = length is not None or chunked or status in (204, 304)
        self._head_done = True
        if self._head_only:
            self._finish(keep_alive=False)  # no body follows, whatever the head declares
        self._wake()

    def on_body(self, body: bytes) -> None:
        self._chunks.append(body)
        self._buffered += len(body)
        self._wake()

    def on_message_complete(self) -> None:
        if self._head_done and self._awaiting:
            self._finish(keep_alive=self._parser.should_keep_alive())

    # -- state changes --------------------------------------------------------------------

    def _pause(self) -> None:
        """Stop reading until the body is read down; the read deadline waits meanwhile (the
        reader is the one late, not the upstream), the total deadline does not."""
        if self.transport is None or self.closed:
            return
        if not self._paused:
            self._paused = True
            self.transport.pause_reading()
        self._deadline.set_at(self._total_at)

    def _resume(self) -> None:
        self._paused = False
        if self.transport is not None and not self.closed:
            self.transport.resume_reading()
            if self._awaiting:
                self._deadline.set_at(min(self._loop.time() + self._read, self._total_at))

    def _finish(self, *, keep_alive: bool) -> None:
        self._complete = True
        self._keep_alive = keep_alive
        self._awaiting = False
        self._deadline.clear()
        self._wake()

    def _fail(self, failure: Exception) -> None:
        if self._failure is None:
            self._failure = failure
        self._awaiting = False
        self._deadline.clear()
        self.close()
        self._wake()

    def _expired(self) -> None:
        if self._awaiting:
            self._fail(seam.timed_out())

    def _out_of_turn(self) -> None:
        self._stray = True
        if not self.closed:
            log.warning("closed an upstream connection that sent a response nobody asked for")
        self.close()


class _Stray(Exception):
    """Raised inside the parser to stop it: at bytes nobody asked for, or a head too large."""
