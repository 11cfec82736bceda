"""The seam between :mod:`gateway.upstream` and a transport, and the failures both speak.

A transport sends one request and returns an :class:`Answer` once the response head has
arrived: the body is read after that, so that what decides about it (the size cap, the byte
budget) is decided above the transport, the same for every transport. A failure is always a
:class:`~gateway.errors.GatewayError` made by one of the functions below, so the two
transports fail with the same kinds, messages and codes; a failure after which nothing at all
came back is wrapped in :class:`NoAnswer`, which marks it as safe to try again for a GET.
"""

from __future__ import annotations

from typing import NamedTuple, Protocol

from multidict import CIMultiDictProxy

from gateway.errors import (
    GatewayError,
    UpstreamBadResponse,
    UpstreamResponseTooLarge,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.models import UpstreamRequest


class Timeouts(NamedTuple):
    """The deadlines of one attempt, in seconds from its start: ``connect`` bounds the wait for
    a pooled connection plus the connect itself; ``read`` the wait for each next piece of the
    response; ``total`` the whole attempt, body included. (A tuple: one is made per attempt.)"""

    connect: float
    read: float
    total: float


class Answer(Protocol):
    """A response whose head has arrived; its body is read with :meth:`read` or
    :meth:`read_chunk`, then :meth:`release` hands the connection back (or closes it)."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> CIMultiDictProxy[str]: ...

    @property
    def content_length(self) -> int | None:
        """The length the head declares, or ``None`` (chunked, or until the connection ends)."""
        ...

    async def read(self) -> bytes:
        """The whole body; for a body whose declared length was checked already."""
        ...

    async def read_chunk(self) -> bytes:
        """The next piece of the body, ``b""`` at its end."""
        ...

    async def release(self) -> None:
        """Done with the answer: its connection goes back to the pool if the body was read to
        its end and the connection may be kept, else it is closed. Always called."""
        ...


class Transport(Protocol):
    """Sends requests upstream; one per process, open for the app's lifetime."""

    @property
    def closed(self) -> bool: ...

    async def send(self, request: UpstreamRequest, timeouts: Timeouts) -> Answer:
        """Send ``request``; its answer once the head has arrived. Raises a
        :class:`~gateway.errors.GatewayError`, wrapped in :class:`NoAnswer` when nothing came
        back."""
        ...

    async def close(self) -> None: ...


class NoAnswer(Exception):
    """The upstream sent nothing back (the connect failed, or the connection closed before a
    response head arrived): a GET may be tried once more. ``log_line`` is logged once per
    request (a DNS failure's host and cause), never a URL."""

    def __init__(self, error: GatewayError, log_line: str | None = None) -> None:
        super().__init__(error.message)
        self.error = error
        self.log_line = log_line


# -- the failures, one function per kind (the ``kind`` is the failure metric's label) -------


def refused() -> GatewayError:
    return UpstreamUnavailable("The upstream refused the connection", kind="refused")


def dns_failed() -> GatewayError:
    return UpstreamUnavailable(
        "The upstream host name could not be resolved (DNS lookup failed)", kind="dns"
    )


def dns_log_line(host: str, reason: str) -> str:
    return f"upstream host {host} does not resolve: {reason}"


def tls_failed() -> GatewayError:
    return UpstreamUnavailable("TLS verification of the upstream failed", kind="tls")


def reset() -> GatewayError:
    return UpstreamUnavailable("The upstream closed the connection", kind="reset")


def timed_out() -> GatewayError:
    return UpstreamTimeout("The upstream did not answer in time", kind="timeout")


def truncated() -> GatewayError:
    return UpstreamBadResponse("The upstream response body was cut short", kind="truncated")


def malformed() -> GatewayError:
    return UpstreamBadResponse("The upstream sent a malformed response", kind="bad_response")


def failed() -> GatewayError:
    return UpstreamBadResponse("The upstream call failed", kind="bad_response")


def too_large(cap: int) -> GatewayError:
    return UpstreamResponseTooLarge(
        f"The upstream response is larger than {cap} bytes", kind="too_large"
    )
