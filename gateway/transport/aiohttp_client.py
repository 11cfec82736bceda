"""The ``aiohttp`` transport: aiohttp's ``ClientSession``, as the gateway used it before the
lean transport, kept as the reference (``--upstream-transport aiohttp``).

aiohttp's errors are translated here, and only here, into the seam's failures. Redirects are
never followed (so ``Authorization`` never leaves for another host); the body is passed on in
its content coding (``auto_decompress`` off); aiohttp's own silent retry of idempotent methods
(DELETE included) is switched off, so that :mod:`gateway.upstream`'s rule is the only one; and
a pooled connection that speaks out of turn is closed, never reused (both through
:mod:`gateway.serving.server`, the one module that touches aiohttp's private API).
"""

from __future__ import annotations

import ssl

import aiohttp
from multidict import CIMultiDictProxy
from yarl import URL

from gateway.errors import GatewayError
from gateway.models import UpstreamRequest
from gateway.serving.server import (
    disable_connection_retry,
    discard_connections_speaking_out_of_turn,
)
from gateway.transport import seam
from gateway.transport.seam import NoAnswer, Timeouts

_NO_USER_AGENT = ("User-Agent",)


class AiohttpTransport:
    """A ``ClientSession`` with the pool limits of the config; made inside a running loop."""

    def __init__(
        self,
        *,
        pool_size: int,
        pool_size_per_host: int,
        keepalive_timeout: float,
        tls: ssl.SSLContext | bool,
        resolver: aiohttp.abc.AbstractResolver | None = None,
    ) -> None:
        connector = aiohttp.TCPConnector(
            limit=pool_size,
            limit_per_host=pool_size_per_host,
            keepalive_timeout=keepalive_timeout,
            ssl=tls,
            resolver=resolver,
        )
        discard_connections_speaking_out_of_turn(connector)  # no answer reaches the wrong request
        self.session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),  # never carry one consumer's cookies to another
            auto_decompress=True,
        )
        disable_connection_retry(self.session)  # upstream.forward decides retries (GET only)

    @property
    def closed(self) -> bool:
        return self.session.closed

    async def close(self) -> None:
        await self.session.close()

    async def send(self, request: UpstreamRequest, timeouts: Timeouts) -> _AiohttpAnswer:
        timeout = aiohttp.ClientTimeout(
            total=timeouts.total, connect=timeouts.connect, sock_read=timeouts.read
        )
        try:
            response = await self.session.request(
                request.method,
                URL(request.url, encoded=True),
                headers=request.headers,
                data=request.body or None,
                allow_redirects=False,
                timeout=timeout,
                auto_decompress=False,  # decoded, or not, by gateway.rewrite.content_coding
                # A client that sent no User-Agent gets none added for it ("Python/3.x
                # aiohttp/..."). Asked for only then: skipping costs aiohttp a header copy.
                skip_auto_headers=None if "User-Agent" in request.headers else _NO_USER_AGENT,
            )
        except aiohttp.ClientConnectorError as exc:
            raise _no_connection(exc) from exc
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
            raise NoAnswer(seam.reset()) from exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _translate(exc) from exc
        return _AiohttpAnswer(response)


class _AiohttpAnswer:
    __slots__ = ("_response",)

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response

    @property
    def status(self) -> int:
        return self._response.status

    @property
    def headers(self) -> CIMultiDictProxy[str]:
        return self._response.headers

    @property
    def content_length(self) -> int | None:
        return self._response.content_length

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _translate(exc) from exc

    async def read_chunk(self) -> bytes:
        try:
            return await self._response.content.readany()
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _translate(exc) from exc

    async def release(self) -> None:
        response = self._response
        response.release()
        await response.wait_for_close()


def _no_connection(exc: aiohttp.ClientConnectorError) -> NoAnswer:
    if isinstance(exc, aiohttp.ClientSSLError | aiohttp.ClientConnectorCertificateError):
        return NoAnswer(seam.tls_failed())
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        reason = exc.os_error.strerror or type(exc.os_error).__name__
        return NoAnswer(seam.dns_failed(), seam.dns_log_line(exc.host, reason))
    return NoAnswer(seam.refused())


def _translate(exc: BaseException) -> GatewayError:
    """The failure for an aiohttp error once the connection was made."""
    if isinstance(exc, TimeoutError):  # aiohttp's ServerTimeoutError family subclasses it
        return seam.timed_out()
    if isinstance(exc, aiohttp.ClientPayloadError):
        return seam.truncated()
    if isinstance(exc, aiohttp.ClientResponseError):
        return seam.malformed()
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientOSError):
        return seam.reset()
    return seam.failed()
