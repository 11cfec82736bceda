"""Room for the connections the caps allow: the process's file-descriptor limit (``ulimit -n``)
raised at start-up to what the configured caps may need, as far as the hard limit allows, with
one warning when that is not far enough.

Past the limit, accepting fails (``EMFILE``) before any cap is reached, and every client is
turned away, not just the ones over a cap (issue 17.5: with ``ulimit -n 1024``, held
connections locked legitimate TLS clients out).
"""

from __future__ import annotations

import logging
import resource

from gateway.config.settings import GatewayConfig
from gateway.serving.admission import MAX_LINGERING

log = logging.getLogger("gateway")

SPARE = 64  # listening sockets, the event loop, log and rule files, the metric files


def needed(config: GatewayConfig) -> int:
    """File descriptors the configured caps may hold at once, with some to spare."""
    count = config.max_client_connections + MAX_LINGERING + SPARE
    # Upstream connections: the pool's size, or one per client connection when unlimited.
    count += config.pool_size or config.max_client_connections
    if config.tls_listen is not None:  # a cap of its own; a TLS refusal is closed at once
        count += config.max_client_connections
    if config.metrics_listen is not None:
        count += config.max_metrics_connections + MAX_LINGERING
    if config.proxy_listen is not None:
        count += 2 * config.proxy_max_tunnels  # a blind tunnel has an upstream socket too
    return count


def make_room(count: int) -> int:
    """Raise the soft limit on open files to ``count`` (never past the hard limit, never
    lower than it is); the limit now in force. Warns once when it stays under ``count``."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < count:
        target = count if hard == resource.RLIM_INFINITY else min(count, hard)
        if target > soft:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
                soft = target
            except (OSError, ValueError):
                pass
    if soft != resource.RLIM_INFINITY and soft < count:
        log.warning(
            "the open-file limit (ulimit -n) is %d, under the %d that the connection caps may "
            "need (max_client_connections, max_metrics_connections, proxy_max_tunnels, "
            "pool_size): past it new connections fail at accept; raise the limit or lower the "
            "caps",
            soft,
            count,
        )
    return int(soft)
