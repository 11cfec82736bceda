"""What one client connection may hold, from the config: the deadlines and the cap that the
connection handler in :mod:`gateway.serving.server` and the listener in
:mod:`gateway.serving.site` apply (nginx's defaults, each an option).

The body deadlines and the budget for bodies in memory are applied by
:mod:`gateway.serving.request_body`; everything here is per connection.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from aiohttp import web

from gateway.config.settings import GatewayConfig


@dataclass(frozen=True, slots=True)
class ClientLimits:
    """Per-connection bounds."""

    header_timeout: float  # request line and headers (and a TLS handshake before them)
    keepalive_timeout: float  # idle between requests
    send_timeout: float  # a response write that makes no progress
    max_connections: int  # open connections on the listener; more are refused at accept
    cap_option: str = "max_client_connections"  # the option setting max_connections

    @classmethod
    def of(cls, config: GatewayConfig) -> ClientLimits:
        """The main listener's (plain or TLS)."""
        return cls(
            header_timeout=config.client_header_timeout,
            keepalive_timeout=config.client_keepalive_timeout,
            send_timeout=config.client_send_timeout,
            max_connections=config.max_client_connections,
        )

    @classmethod
    def of_metrics(cls, config: GatewayConfig) -> ClientLimits:
        """The ``--metrics-listen`` listener's: the same deadlines, a cap of its own."""
        cap = config.max_metrics_connections
        return replace(cls.of(config), max_connections=cap, cap_option="max_metrics_connections")


# Where an app tells its runner (gateway.serving.server.GatewayRunner) the limits to apply.
CLIENT_LIMITS = web.AppKey("client_limits", ClientLimits)
