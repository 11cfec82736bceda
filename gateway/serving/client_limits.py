"""What one client connection may hold, from the config: the deadlines and the cap that the
connection handler in :mod:`gateway.serving.server` applies (nginx's defaults, each an option).

The body deadlines and the budget for bodies in memory are applied by
:mod:`gateway.serving.request_body`; everything here is per connection.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from gateway.config.settings import GatewayConfig


@dataclass(frozen=True, slots=True)
class ClientLimits:
    """Per-connection bounds."""

    header_timeout: float  # request line and headers, from the connection or the first byte
    keepalive_timeout: float  # idle between requests
    send_timeout: float  # a response write that makes no progress
    max_connections: int  # open connections per listener; more are answered 503 and closed

    @classmethod
    def of(cls, config: GatewayConfig) -> ClientLimits:
        return cls(
            header_timeout=config.client_header_timeout,
            keepalive_timeout=config.client_keepalive_timeout,
            send_timeout=config.client_send_timeout,
            max_connections=config.max_client_connections,
        )


# Where an app tells its runner (gateway.serving.server.GatewayRunner) the limits to apply.
CLIENT_LIMITS = web.AppKey("client_limits", ClientLimits)
