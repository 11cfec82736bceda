"""The process's transport, as ``upstream_transport`` names it, with the config's pool limits
and TLS settings."""

from __future__ import annotations

import logging

from gateway.config.settings import GatewayConfig
from gateway.transport.seam import Transport

log = logging.getLogger("gateway")

TRANSPORTS = ("lean", "aiohttp")


def make_transport(config: GatewayConfig) -> Transport:
    """A new transport; inside a running event loop (the aiohttp one binds to it)."""
    if not config.tls_verify:
        log.warning(
            "TLS verification of upstreams is OFF: credentials can be intercepted; "
            "use this only against a test upstream"
        )
    if config.upstream_transport == "aiohttp":
        from gateway.transport.aiohttp_client import AiohttpTransport
        from gateway.transport.tls import aiohttp_ssl

        return AiohttpTransport(
            pool_size=config.pool_size,
            pool_size_per_host=config.pool_size_per_host,
            keepalive_timeout=config.keepalive_timeout,
            tls=aiohttp_ssl(config.tls_verify, config.ca_bundle),
        )
    from gateway.transport.lean import LeanTransport
    from gateway.transport.tls import client_context

    return LeanTransport(
        pool_size=config.pool_size,
        pool_size_per_host=config.pool_size_per_host,
        keepalive_timeout=config.keepalive_timeout,
        tls=client_context(config.tls_verify, config.ca_bundle),
    )
