"""Host names and ``host:port`` authorities as config data (pure; no I/O): the canonical
authority form a CONNECT target must have, the ``--proxy-tunnel-hosts`` patterns and the
``--proxy-tunnel-allow-networks`` address ranges.

:mod:`gateway.frontdoor.targets` decides what to do with a target; this module only parses.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass

from yarl import URL

_LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
_HOST_NAME = re.compile(rf"(?=.{{1,253}}\Z)(?:{_LABEL}\.)*{_LABEL}")
DEFAULT_TUNNEL_HOSTS = "*.twilio.com:443"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Target:
    host: str  # lower case; an IPv6 address without brackets
    port: int

    @property
    def authority(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


def _valid_host(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return bool(_HOST_NAME.fullmatch(host))
    return True


def parse_target(raw: bytes) -> Target | None:
    """The ``host:port`` of an authority-form target, or None when it is not exactly that."""
    try:
        text = raw.decode("ascii").lower()
        url = URL("//" + text)
    except (UnicodeDecodeError, ValueError):
        return None
    host, port = url.raw_host, url.explicit_port
    if host is None or port is None or not 0 < port < 65536 or not _valid_host(host):
        return None
    target = Target(host, port)
    # Only the canonical spelling passes: no user info, path, query, fragment, "+443" or "0443".
    return target if target.authority == text else None


@dataclass(frozen=True, slots=True)
class HostPattern:
    """``host:port`` or ``*.domain:port`` (any name below ``domain``, not ``domain`` itself)."""

    host: str
    port: int

    @property
    def wildcard(self) -> bool:
        return self.host.startswith("*.")

    def matches(self, target: Target) -> bool:
        if target.port != self.port:
            return False
        if self.wildcard:
            return target.host.endswith(self.host[1:])
        return target.host == self.host

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse_host_patterns(text: str) -> tuple[HostPattern, ...]:
    """Comma-separated ``HOST:PORT`` / ``*.DOMAIN:PORT`` patterns; empty text means none."""
    patterns = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        wildcard = part.startswith("*.")
        target = parse_target(part[2:].encode() if wildcard else part.encode())
        if target is None:
            raise ValueError(f"expected HOST:PORT or *.DOMAIN:PORT, got {part!r}")
        host = f"*.{target.host}" if wildcard else target.host
        patterns.append(HostPattern(host, target.port))
    return tuple(patterns)


def parse_networks(text: str) -> tuple[Network, ...]:
    """Comma-separated CIDR ranges (``10.0.0.0/8``, ``fd00::/8``) or single addresses; empty
    text means none."""
    networks: list[Network] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=True))
        except ValueError as exc:
            raise ValueError(f"expected an address range such as 10.0.0.0/8, got {part!r}") from exc
    return tuple(networks)
