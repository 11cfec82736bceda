"""The ``lean`` transport: a pooled HTTP/1.1 client on asyncio protocols (the default).

Per request, on a kept-alive connection: split the URL, take an idle connection of the
origin's pool, write the head built by :mod:`gateway.transport.wire` (and the body), and wait
for the answer's head (:class:`~gateway.transport.connection.Connection`). No timer is made
for that: the connection's read deadline is moved, not remade. Only a request that must wait
for room or dial a new connection runs under a timer, its connect deadline.

Dialling resolves the host (a failed lookup is the ``dns`` failure, logged once per request
by :mod:`gateway.upstream`), connects, and for ``https`` does the TLS handshake with the
process's context (:mod:`gateway.transport.tls`), SNI and hostname check on the URL's host.
Redirects are answers like any other; nothing is decoded; nothing is retried here.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Awaitable, Callable

from gateway.models import UpstreamRequest
from gateway.transport import seam
from gateway.transport.connection import Connection
from gateway.transport.pool import Pool, Slots
from gateway.transport.seam import NoAnswer, Timeouts
from gateway.transport.wire import Origin, request_head, split_url

# (host, port) -> addresses to connect to, in order; for tests that stage lookups. Without
# one, the event loop resolves (getaddrinfo).
Resolve = Callable[[str, int], Awaitable[list[str]]]


class LeanTransport:
    """Keep-alive pools, one per origin, under one ``pool_size``."""

    def __init__(
        self,
        *,
        pool_size: int,
        pool_size_per_host: int,
        keepalive_timeout: float,
        tls: ssl.SSLContext,
        resolve: Resolve | None = None,
    ) -> None:
        self.pool_size = pool_size
        self.pool_size_per_host = pool_size_per_host
        self.keepalive_timeout = keepalive_timeout
        self._tls = tls
        self._resolve = resolve
        self._slots = Slots(pool_size)
        self._pools: dict[str, Pool] = {}
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        self._closed = True
        for pool in self._pools.values():
            pool.close()

    async def send(self, request: UpstreamRequest, timeouts: Timeouts) -> Connection:
        if self._closed:  # the app is shutting down
            raise seam.failed()
        total_at = asyncio.get_running_loop().time() + timeouts.total
        origin, target = split_url(request.url)
        pool = self._pools.get(origin)
        if pool is None:
            pool = self._pool(origin)
        connection = pool.take()
        if connection is None:
            try:
                async with asyncio.timeout(timeouts.connect):
                    connection = await pool.acquire()
            except TimeoutError:
                raise seam.timed_out() from None
        body = request.body
        head = request_head(
            request.method, target, pool.origin.host_header, request.headers.items(), len(body)
        )
        return await connection.send(head, body, timeouts.read, total_at)

    def _pool(self, origin: str) -> Pool:
        pool = Pool(
            Origin.parse(origin),
            self._slots,
            self.pool_size_per_host,
            self.keepalive_timeout,
            self._dial,
        )
        self._pools[origin] = pool
        return pool

    async def _dial(self, pool: Pool) -> Connection:
        """A new connection to ``pool``'s origin, TLS done; a seam failure if there is none."""
        origin = pool.origin
        loop = asyncio.get_running_loop()
        tls = self._tls if origin.tls else None
        sni = origin.host if origin.tls else None
        try:
            resolve = self._resolve
            host, port = origin.host, origin.port
            addresses = [host] if resolve is None else await resolve(host, port)
            last: OSError | None = None
            for address in addresses:
                try:
                    _, connection = await loop.create_connection(
                        lambda: Connection(pool, loop),
                        address,
                        origin.port,
                        ssl=tls,
                        server_hostname=sni,
                    )
                    return connection
                except ssl.SSLError:
                    raise
                except socket.gaierror:
                    raise
                except OSError as exc:
                    last = exc
            raise last or OSError("no address to connect to")
        except socket.gaierror as exc:
            reason = exc.strerror or type(exc).__name__
            raise NoAnswer(seam.dns_failed(), seam.dns_log_line(origin.host, reason)) from exc
        except (ssl.SSLError, ssl.CertificateError) as exc:
            raise NoAnswer(seam.tls_failed()) from exc
        except OSError as exc:
            raise NoAnswer(seam.refused()) from exc
