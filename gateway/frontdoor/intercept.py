"""TLS interception: terminate the client's TLS with a leaf for the CONNECT host, then hand the
decrypted connection to the gateway's one aiohttp server (the same pipeline as every listener).

The connection holds a slot of the proxy front door (counted when it was accepted), never one of
the main listener's: a full main listener does not refuse it. Whatever fails on the way, the
handshake or starting the handler, the connection is closed and the slot given back.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable

from aiohttp import web

from gateway.frontdoor.door import INTERCEPTED_HOST
from gateway.frontdoor.settings import HANDSHAKE_TIMEOUT
from gateway.serving.secure import HandshakeFailed, Relay, handshake
from gateway.serving.server import connection_handler

log = logging.getLogger("gateway")

__all__ = ["HANDSHAKE_TIMEOUT", "intercept"]


async def intercept(
    transport: asyncio.Transport,
    host: str,
    context: ssl.SSLContext,
    server: web.Server,
    *,
    established: bytes,
    total: float,
    handshake_timeout: float = HANDSHAKE_TIMEOUT,
    on_close: Callable[[], None],
) -> None:
    """Answer ``established``, do the server side of the TLS handshake, hand over to ``server``.

    ``transport`` must have reading paused (start_tls resumes it). ``on_close`` is called once
    when the connection ends, however it ends: after a failed handshake or a failed hand-over
    (then the connection is closed at once), or when the client or the gateway closes it.
    """
    relay = Relay(on_close)
    try:
        transport.write(established)
        secure = await handshake(transport, relay, context, timeout=handshake_timeout)
    except HandshakeFailed as failed:
        log.info(
            "TLS handshake for %s failed (%s); a client must trust the interception CA",
            host,
            failed.reason,
        )
        return
    except BaseException:  # cancelled at shutdown, or a write to a closed transport
        relay.abort(transport)
        raise
    token = INTERCEPTED_HOST.set(host)
    try:
        # aiohttp starts this connection's request task here, inside the context set above.
        attached = relay.attach(lambda: connection_handler(server), secure)
    finally:
        INTERCEPTED_HOST.reset(token)
    if attached:
        relay.close_after(total)
