"""Counting a listener's connections at accept, before TLS or any byte is read, and refusing
those over its cap.

Each listener has a :class:`Gate` of its own (the main listener, plain or TLS; the metrics
listener; the proxy front door), so that a flood on one never takes the slots of another.
Every connection admitted is counted in ``gateway_client_connections``; every one refused, in
``gateway_client_limit_hits_total`` under the name of the option that sets the cap.

A refused plain connection is answered (``gateway.serving.site`` writes 503 with
``Retry-After``), its output ended, and it is closed at the client's end of input or after
:data:`LINGER` seconds; until then what the client sends is read and dropped, so that the close
does not turn into a reset that could destroy the answer before the client reads it. At
most :data:`MAX_LINGERING` refusals per listener wait like that at once; past them a refused
connection is closed at once, so refusals too hold a bounded number of sockets.
"""

from __future__ import annotations

import asyncio

from gateway.telemetry.metrics import CLIENT_CONNECTIONS, CLIENT_LIMIT_HITS

LINGER = 1.0
MAX_LINGERING = 64


class Gate:
    """One listener's open connections and its cap."""

    __slots__ = ("cap", "limit", "open", "lingering")

    def __init__(self, cap: int, limit: str) -> None:
        self.cap = cap
        self.limit = limit  # the option setting the cap: the limit-hit metric's label
        self.open = 0
        self.lingering = 0  # refused connections still being answered

    def enter(self) -> bool:
        """Take a slot for a new connection; False (and a limit hit counted) when full."""
        if self.open >= self.cap:
            CLIENT_LIMIT_HITS.labels(self.limit).inc()
            return False
        self.open += 1
        CLIENT_CONNECTIONS.inc()
        return True

    def leave(self) -> None:
        """Give back a slot taken by :meth:`enter` (once per connection)."""
        self.open -= 1
        CLIENT_CONNECTIONS.dec()

    def refuse(self, transport: asyncio.Transport, answer: bytes) -> None:
        """Answer a connection :meth:`enter` refused and close it (at once without ``answer``
        or when too many refusals linger already)."""
        if not answer or self.lingering >= MAX_LINGERING:
            transport.abort()
            return
        refusal = _Refusal(self, transport)
        transport.set_protocol(refusal)
        refusal.start(answer)


class _Refusal(asyncio.Protocol):
    """A refused connection: the answer is written and the output ended; what the client
    sends is dropped until its end of input or :data:`LINGER` seconds, then it is closed."""

    def __init__(self, gate: Gate, transport: asyncio.Transport) -> None:
        self._gate = gate
        self._transport = transport
        self._timer: asyncio.TimerHandle | None = None

    def start(self, answer: bytes) -> None:
        self._gate.lingering += 1
        self._transport.write(answer)
        self._transport.write_eof()
        self._timer = asyncio.get_running_loop().call_later(LINGER, self._transport.close)

    def data_received(self, data: bytes) -> None:
        pass  # dropped

    def eof_received(self) -> bool:
        return False  # close

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._gate.lingering -= 1
