"""Opening a listening socket, with one plain sentence when it cannot be opened.

Used by ``gateway serve`` (and its ``--workers`` supervisor), ``gateway demo`` and
``gateway simulate``, which report :class:`ListenError` as one line and exit status 2 instead
of a traceback. The supervisor imports this module: it loads no metric declarations (the
gateway's own site, :mod:`gateway.serving.site`, is imported when a site is started).
"""

from __future__ import annotations

import contextlib
import errno
import socket
import ssl

from aiohttp import web

_REASONS = {
    errno.EADDRINUSE: "the address is already in use",
    errno.EACCES: "permission denied (ports below 1024 need privileges)",
    errno.EADDRNOTAVAIL: "the address is not one of this machine's",
}


class ListenError(Exception):
    """A listening socket could not be opened; the message names the address and why."""


def address(host: str, port: int) -> str:
    """``host:port``, with brackets around an IPv6 literal."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def listen_error(host: str, port: int, exc: OSError) -> ListenError:
    """The :class:`ListenError` for ``exc`` raised while binding ``host:port``."""
    if isinstance(exc, socket.gaierror):
        reason = "the host name does not resolve"
    else:
        reason = _REASONS.get(exc.errno or 0) or (
            exc.strerror.lower() if exc.strerror else type(exc).__name__
        )
    return ListenError(f"cannot listen on {address(host, port)}: {reason}")


async def start_site(
    runner: web.BaseRunner,
    host: str,
    port: int,
    *,
    reuse_port: bool = False,
    ssl_context: ssl.SSLContext | None = None,
    backlog: int = 128,
) -> int:
    """Listen on ``host:port`` for ``runner`` (set up already); the port really bound. A
    :class:`~gateway.serving.server.GatewayRunner` gets a
    :class:`~gateway.serving.site.GatewaySite` (connections counted at accept, before TLS); any
    other runner (the simulator's) aiohttp's own ``TCPSite``.

    Raises :class:`ListenError` when the socket cannot be opened.
    """
    from gateway.serving.server import GatewayRunner
    from gateway.serving.site import GatewaySite

    site: web.BaseSite
    if isinstance(runner, GatewayRunner):
        site = GatewaySite(
            runner, host, port, ssl_context=ssl_context, backlog=backlog, reuse_port=reuse_port
        )
    else:
        site = web.TCPSite(
            runner,
            host,
            port,
            reuse_port=reuse_port or None,
            ssl_context=ssl_context,
            backlog=backlog,
        )
    try:
        await site.start()
    except OSError as exc:
        raise listen_error(host, port, exc) from exc
    return int(runner.addresses[-1][1])


def check_bindable(host: str, port: int) -> None:
    """Bind and close ``host:port`` once (as ``SO_REUSEPORT`` workers will), or raise
    :class:`ListenError`: the ``--workers`` supervisor's check before it starts anyone."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        for family, kind, proto, _, sockaddr in infos:
            with socket.socket(family, kind, proto) as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                with contextlib.suppress(AttributeError, OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                if family == socket.AF_INET6:
                    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                sock.bind(sockaddr)
    except OSError as exc:
        raise listen_error(host, port, exc) from exc
