"""Blind tunnels: bytes copied both ways, never decrypted, logged or inspected.

Each side's protocol writes what it receives to the other side's transport and stops reading
while the other side cannot keep up (so memory stays bounded by the transports' buffers). A
tunnel closes when either side closes, after ``idle`` seconds without a byte either way, or
after ``total`` seconds in all.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable, Sequence
from typing import cast

from gateway.frontdoor.addresses import Resolved


class Tunnel:
    """One client connection joined to one upstream connection."""

    def __init__(
        self,
        client: asyncio.Transport,
        *,
        idle: float,
        total: float,
        on_close: Callable[[], None],
    ) -> None:
        self.client = client
        self.upstream: asyncio.Transport | None = None
        self._idle = idle
        self._on_close = on_close
        self._loop = asyncio.get_running_loop()
        self._last_activity = self._loop.time()
        self._eof_seen = 0
        self._closed = False
        self._idle_handle = self._loop.call_later(idle, self._check_idle)
        self._total_handle = self._loop.call_later(total, self.close)

    def touch(self) -> None:
        self._last_activity = self._loop.time()

    def _check_idle(self) -> None:
        quiet_for = self._loop.time() - self._last_activity
        if quiet_for >= self._idle:
            self.close()
        else:
            self._idle_handle = self._loop.call_later(self._idle - quiet_for, self._check_idle)

    def half_closed(self) -> bool:
        """One side said EOF; True when both have (then the tunnel is closed)."""
        self._eof_seen += 1
        if self._eof_seen >= 2:
            self.close()
            return True
        return False

    def stop_timers(self) -> None:
        self._idle_handle.cancel()
        self._total_handle.cancel()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self.stop_timers()
        self.client.close()
        if self.upstream is not None:
            self.upstream.close()
        self._on_close()

    def abort(self) -> None:
        """At shutdown: drop both connections without waiting for buffers to drain."""
        self.client.abort()
        if self.upstream is not None:
            self.upstream.abort()
        self.close()


class _Side(asyncio.Protocol):
    """One end of a tunnel: what arrives here goes out of ``peer``."""

    def __init__(self, tunnel: Tunnel) -> None:
        self.tunnel = tunnel
        self.transport: asyncio.Transport | None = None
        self.peer: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        transport = cast(asyncio.Transport, transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.tunnel.touch()
        if self.peer is not None:
            self.peer.write(data)

    def eof_received(self) -> bool:
        if self.peer is not None and self.peer.can_write_eof():
            self.peer.write_eof()
            return not self.tunnel.half_closed()  # keep the other direction open
        self.tunnel.close()
        return False

    def pause_writing(self) -> None:  # our transport is full: stop reading the other side
        if self.peer is not None:
            self.peer.pause_reading()

    def resume_writing(self) -> None:
        if self.peer is not None:
            self.peer.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        self.tunnel.close()


async def _connect(addresses: Sequence[Resolved]) -> socket.socket:
    """A socket connected to the first of ``addresses`` that accepts (no name is looked up:
    these are the addresses that were checked). Raises the last ``OSError``."""
    loop = asyncio.get_running_loop()
    failure: OSError = OSError("no address to connect to")
    for resolved in addresses:
        sock = socket.socket(resolved.family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setblocking(False)
            await loop.sock_connect(sock, resolved.sockaddr)
        except OSError as exc:
            sock.close()
            failure = exc
            continue
        except BaseException:
            sock.close()
            raise
        return sock
    raise failure


async def open_tunnel(
    client: asyncio.Transport,
    addresses: Sequence[Resolved],
    early_data: bytes,
    *,
    connect_timeout: float,
    idle: float,
    total: float,
    established: bytes,
    on_close: Callable[[], None],
) -> Tunnel:
    """Connect to one of ``addresses`` (in order), answer ``established`` to the client, then
    copy bytes both ways.

    ``client`` must have reading paused; it is resumed once both sides are joined. Raises
    ``OSError`` or ``TimeoutError`` when the upstream cannot be reached (nothing is sent then).
    """
    loop = asyncio.get_running_loop()
    tunnel = Tunnel(client, idle=idle, total=total, on_close=on_close)
    upstream_side = _Side(tunnel)
    sock: socket.socket | None = None
    try:
        async with asyncio.timeout(connect_timeout):
            sock = await _connect(addresses)
            upstream, _ = await loop.create_connection(lambda: upstream_side, sock=sock)
    except BaseException:
        tunnel.stop_timers()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()
        raise
    # No await from here on: nothing can arrive on either side before it is wired up.
    tunnel.upstream = upstream
    client_side = _Side(tunnel)
    client_side.transport, client_side.peer = client, upstream
    upstream_side.peer = client
    client.set_protocol(client_side)
    client.write(established)
    if early_data:
        upstream.write(early_data)
    client.resume_reading()
    return tunnel
