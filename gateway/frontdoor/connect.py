"""The proxy front door's connection protocol: read one request head with h11, then intercept,
tunnel or refuse.

Only ``CONNECT host:port`` is accepted. An absolute-form ``http://`` request, any other method,
a target that is not a clean ``host:port``, a host that is neither intercepted nor allowed for
tunnelling, a non-443 port on an intercepted host, and bytes that are not HTTP all get 403, and
nothing is connected to for them. The head must arrive within ``HEAD_TIMEOUT`` seconds and fit
in ``MAX_HEAD`` bytes, however it arrives: in one send or several, complete or not (431 above;
h11's own bound covers only a head still incomplete).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Protocol, cast

import h11

from gateway.config.hosts import Target, parse_target
from gateway.errors import GatewayError, ProxyBusy, ProxyRefused, error_body
from gateway.frontdoor.targets import Outcome, Policy
from gateway.telemetry import metrics

log = logging.getLogger("gateway")

HEAD_TIMEOUT = 10.0
MAX_HEAD = 16 * 1024
LINGER = 1.0  # a refused client's input is read and dropped this long, so the answer is read
ESTABLISHED = b"HTTP/1.1 200 Connection established\r\n\r\n"
_REASONS = {
    403: b"Forbidden",
    431: b"Request Header Fields Too Large",
    502: b"Bad Gateway",
    503: b"Service Unavailable",
    504: b"Gateway Timeout",
}


def error_response(error: GatewayError, base: str) -> bytes:
    """A complete HTTP/1.1 error answer with Twilio's error JSON; the connection then closes."""
    body = error_body(error.status, error.code, error.message, base)
    head = (
        b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
        b"Connection: close\r\n\r\n" % (error.status, _REASONS[error.status], len(body))
    )
    return head + body


class Door(Protocol):
    """What a connection needs from the front door it arrived at
    (:class:`gateway.frontdoor.listener.ProxyFrontDoor`, which owns the connections)."""

    policy: Policy
    error_base: str

    def admit(self, transport: asyncio.Transport) -> bool: ...

    def release(self, transport: asyncio.Transport) -> None: ...

    def start(
        self, outcome: Outcome, transport: asyncio.Transport, target: Target, early: bytes
    ) -> None: ...


class ConnectProtocol(asyncio.Protocol):
    """One client connection to the proxy front door, until it is handed on or refused."""

    def __init__(self, door: Door) -> None:
        self._door = door
        self._parser = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD)
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._done = False  # refused, or handed on to a tunnel or the TLS handshake
        self._received = 0  # bytes given to the parser

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one.
        transport = cast(asyncio.Transport, transport)
        self._transport = transport
        if not self._door.admit(transport):
            self._refuse(
                ProxyBusy("Too many proxy connections are open; try again shortly"), "busy"
            )
            return
        self._timer = asyncio.get_running_loop().call_later(HEAD_TIMEOUT, self._head_timeout)

    def _head_timeout(self) -> None:
        if not self._done:
            self._refuse(ProxyRefused("No complete CONNECT request arrived in time"), "slow")

    def data_received(self, data: bytes) -> None:
        if self._done:  # refused: dropped (a connection handed on no longer arrives here)
            return
        self._received += len(data)
        try:
            self._parser.receive_data(data)
            event = self._parser.next_event()
        except h11.RemoteProtocolError as exc:
            if exc.error_status_hint == 431:  # h11: an incomplete head past MAX_HEAD
                self._refuse_too_large()
            else:
                self._refuse(ProxyRefused("The request is not valid HTTP"), "malformed")
            return
        if event is h11.NEED_DATA:
            return
        unparsed, _ = self._parser.trailing_data
        if self._received - len(unparsed) > MAX_HEAD:  # a complete head, too large
            self._refuse_too_large()
            return
        if not isinstance(event, h11.Request) or event.method != b"CONNECT":
            message = "This is a CONNECT-only proxy for the intercepted hosts"
            self._refuse(ProxyRefused(message), "not CONNECT")
            return
        target = parse_target(event.target)
        if target is None:
            self._refuse(ProxyRefused("The CONNECT target is not HOST:PORT"), "bad target")
            return
        self._decide(target)

    def _decide(self, target: Target) -> None:
        try:
            while (event := self._parser.next_event()) is not h11.PAUSED:
                if event is h11.NEED_DATA or not isinstance(event, h11.EndOfMessage):
                    raise h11.RemoteProtocolError("CONNECT with a body")
        except h11.RemoteProtocolError:
            self._refuse(ProxyRefused("A CONNECT request must not carry a body"), "body")
            return
        early, _ = self._parser.trailing_data
        outcome = self._door.policy.decide(target)
        if outcome is Outcome.REFUSED:
            message = f"CONNECT to {target.authority} is not allowed by this gateway"
            self._refuse(ProxyRefused(message), target.authority)
            return
        if outcome is Outcome.INTERCEPTED and early:
            # TLS bytes sent before our 200 cannot be handed to the ssl module; clients wait.
            self._refuse(ProxyRefused("Data was sent before the tunnel was open"), "early")
            return
        self._hand_on()
        if outcome is Outcome.INTERCEPTED:  # a tunnel is counted once its address is checked
            metrics.PROXY_CONNECTS.labels(outcome.value).inc()
        assert self._transport is not None
        self._door.start(outcome, self._transport, target, bytes(early))

    def _refuse_too_large(self) -> None:
        message = f"The CONNECT request head is larger than {MAX_HEAD // 1024} KiB"
        self._refuse(ProxyRefused(message, status=431), "head too large")

    def _hand_on(self) -> None:
        self._done = True
        if self._timer is not None:
            self._timer.cancel()
        assert self._transport is not None
        self._transport.pause_reading()

    def _refuse(self, error: GatewayError, why: str) -> None:
        """Answer ``error``, end the output, and close at the client's end of input or after
        ``LINGER`` seconds. Until then what the client still sends is read and dropped:
        closing with unread input would reset the connection, destroying the answer unread."""
        self._hand_on()
        metrics.PROXY_CONNECTS.labels(Outcome.REFUSED.value).inc()
        log.info("proxy front door refused a connection (%s)", why)
        transport = self._transport
        assert transport is not None
        transport.write(error_response(error, self._door.error_base))
        transport.write_eof()
        transport.resume_reading()
        self._timer = asyncio.get_running_loop().call_later(LINGER, transport.close)

    def eof_received(self) -> bool:
        return False  # the transport closes itself (after writing what is queued)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._transport is not None:
            self._door.release(self._transport)
