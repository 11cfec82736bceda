"""Which front door a request came through: ``direct``, ``tls`` or ``proxy``.

The proxy front door hands each intercepted connection to the gateway's one aiohttp server
with :data:`INTERCEPTED_HOST` set. aiohttp runs a connection's requests in a task created when
the connection is handed over, and a task starts with a copy of the context it was created in,
so every request of that connection (and only those) sees the host it was intercepted for.
``tests/frontdoor/test_door.py`` fails should aiohttp ever stop carrying the context over.
"""

from __future__ import annotations

from contextvars import ContextVar

from aiohttp import web

INTERCEPTED_HOST: ContextVar[str | None] = ContextVar("gateway_intercepted_host", default=None)

DIRECT, TLS, PROXY = "direct", "tls", "proxy"


def intercepted_host() -> str | None:
    """The host this request's connection was intercepted for, or None off the proxy."""
    return INTERCEPTED_HOST.get()


def front_door(request: web.BaseRequest) -> str:
    """``proxy`` for an intercepted connection, ``tls`` for the HTTPS listener, else ``direct``."""
    if INTERCEPTED_HOST.get() is not None:
        return PROXY
    return TLS if request.secure else DIRECT
