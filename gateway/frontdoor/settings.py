"""The proxy front door's settings, worked out once at start-up (no I/O, no metrics: the
``--workers`` supervisor builds them too, to fail before any worker starts)."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.config.hosts import Network
from gateway.frontdoor.leaves import LeafContexts
from gateway.frontdoor.targets import Policy

HANDSHAKE_TIMEOUT = 10.0  # an intercepted connection's TLS handshake, at most (and never longer
# than client_header_timeout)


@dataclass(frozen=True, slots=True)
class ProxySettings:
    """Everything the proxy front door needs, worked out once at start-up."""

    policy: Policy
    leaves: LeafContexts
    connect_timeout: float
    idle_timeout: float
    total_timeout: float
    max_tunnels: int
    error_base: str  # the main listener's base URL, for ``more_info`` in refusals
    handshake_timeout: float = HANDSHAKE_TIMEOUT  # an intercepted connection's TLS handshake
    allowed_networks: tuple[Network, ...] = ()  # internal ranges a tunnel may reach
