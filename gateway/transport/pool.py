"""The lean transport's keep-alive pools, with aiohttp's limits: ``pool_size`` connections in
use at once in all (0: no limit), ``pool_size_per_host`` per origin (0: no limit), and idle
connections closed after ``keepalive_timeout``.

A connection counts against the limits from the moment it is taken (or dialled) until it is
released; idle connections do not count, as in aiohttp. A request that finds no room waits
its turn, first come first served within an origin, for at most its connect deadline (the
transport bounds the wait and the connect together). A connection released while requests
wait goes straight to the first of them, so none can overtake it. Idle connections are
reused last in, first out (the warmest socket; the oldest expire), and one timer per pool,
set only when a connection goes idle and none is pending, closes those idle too long.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

from gateway.transport.connection import Connection
from gateway.transport.wire import Origin

# Opens a new connection for a pool: (pool) -> the connected Connection, or a seam failure.
Dial = Callable[["Pool"], Awaitable[Connection]]

# A waiter's grant: an idle connection handed over, or None (room to dial a new one).
_Grant = asyncio.Future[Connection | None]


class Slots:
    """Connections in use across the pools of a transport, against ``pool_size``."""

    __slots__ = ("limit", "used", "pools", "waiting")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.pools: list[Pool] = []
        self.waiting = 0  # requests queued in all pools

    def has_room(self) -> bool:
        return not self.limit or self.used < self.limit

    def serve_waiters(self) -> None:
        """Give room that was freed to the requests waiting for it (few pools: one per origin)."""
        if not self.waiting:
            return
        for pool in self.pools:
            if not self.has_room():
                return
            pool.serve_waiters()


class Pool:
    """Connections to one origin."""

    def __init__(
        self,
        origin: Origin,
        slots: Slots,
        per_host: int,
        keepalive_timeout: float,
        dial: Dial,
    ) -> None:
        self.origin = origin
        self._slots = slots
        self._per_host = per_host
        self._keepalive = keepalive_timeout
        self._dial = dial
        self.idle: list[Connection] = []  # the most recently used last
        self.in_use = 0
        self._waiters: deque[_Grant] = deque()
        self._sweep: asyncio.TimerHandle | None = None
        self.closed = False
        slots.pools.append(self)

    def has_room(self) -> bool:
        return (not self._per_host or self.in_use < self._per_host) and self._slots.has_room()

    def take(self) -> Connection | None:
        """An idle connection, counted in use, when there is one and room for it (no waiting)."""
        if self._waiters or not self.has_room():
            return None
        connection = self._pop_idle()
        if connection is not None:
            self._count_in()
        return connection

    async def acquire(self) -> Connection:
        """A connection in use: idle, or dialled once there is room. The caller bounds the wait
        (the connect deadline) and turns its ``TimeoutError`` into the seam's failure."""
        if self._waiters or not self.has_room():
            grant: _Grant = asyncio.get_running_loop().create_future()
            self._waiters.append(grant)
            self._slots.waiting += 1
            self.serve_waiters()  # room may be free with others still queued before it
            try:
                handed = await grant
            except asyncio.CancelledError:
                self._cancelled(grant)
                raise
            if handed is not None:
                return handed
        else:
            handed = self._pop_idle()
            self._count_in()
            if handed is not None:
                return handed
        try:
            return await self._dial(self)
        except BaseException:
            self._count_out()
            self._slots.serve_waiters()
            raise

    def release(self, connection: Connection, reusable: bool) -> None:
        """The request on ``connection`` is over: keep it (``reusable``) or it was closed."""
        self._count_out()
        if reusable and not self.closed:
            self.idle.append(connection)
            connection.idle_since = asyncio.get_running_loop().time()
            if self._sweep is None:
                self._schedule_sweep(connection.idle_since)
        elif reusable:
            connection.close()
        self._slots.serve_waiters()

    def lost(self, connection: Connection) -> None:
        """``connection`` closed (either end); an idle one leaves the pool."""
        if connection in self.idle:
            self.idle.remove(connection)

    def serve_waiters(self) -> None:
        waiters = self._waiters
        while waiters and self.has_room():
            grant = waiters.popleft()
            self._slots.waiting -= 1
            if grant.done():  # cancelled while waiting
                continue
            handed = self._pop_idle()
            self._count_in()
            grant.set_result(handed)

    def close(self) -> None:
        """Close the idle connections; those in use close as they are released."""
        self.closed = True
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        while self.idle:
            self.idle.pop().close()

    # -- bookkeeping ------------------------------------------------------------------------

    def _count_in(self) -> None:
        self.in_use += 1
        self._slots.used += 1

    def _count_out(self) -> None:
        self.in_use -= 1
        self._slots.used -= 1

    def _pop_idle(self) -> Connection | None:
        idle = self.idle
        while idle:
            connection = idle.pop()
            if not connection.closed:
                return connection
        return None

    def _cancelled(self, grant: _Grant) -> None:
        """A waiter gave up (its deadline, or its client went away): pass on what it got."""
        if not grant.done() or grant.cancelled():
            grant.cancel()
            if grant in self._waiters:
                self._waiters.remove(grant)
                self._slots.waiting -= 1
            return
        handed = grant.result()
        if handed is not None:
            self.release(handed, reusable=True)
        else:
            self._count_out()
            self._slots.serve_waiters()

    def _schedule_sweep(self, since: float) -> None:
        loop = asyncio.get_running_loop()
        self._sweep = loop.call_at(since + self._keepalive, self._close_expired)

    def _close_expired(self) -> None:
        self._sweep = None
        idle = self.idle
        # (a millisecond early is due: uvloop's timers fire to the millisecond)
        limit = asyncio.get_running_loop().time() - self._keepalive + 0.001
        while idle and idle[0].idle_since <= limit:  # the oldest first
            idle.pop(0).close()
        if idle:
            self._schedule_sweep(idle[0].idle_since)
