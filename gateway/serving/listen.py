"""Opening a listening socket, with one plain sentence when it cannot be opened.

Used by ``gateway serve`` (and its ``--workers`` supervisor), ``gateway demo`` and
``gateway simulate``, which report :class:`ListenError` as one line and exit status 2 instead
of a traceback. The ``--workers`` supervisor imports this module, which loads no metric
declarations; sites are started by :func:`gateway.serving.site.start_site`.
"""

from __future__ import annotations

import contextlib
import errno
import socket

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
