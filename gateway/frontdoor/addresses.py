"""Where a blind tunnel may connect: its target resolved once, each address checked, and only
the addresses that passed handed on (the tunnel connects to one of those, never to the name).

A name a ``--proxy-tunnel-hosts`` pattern allows may still resolve to an internal address (a
split-horizon DNS entry, a hosts file, a rebinding name): loopback, private, link-local (the
cloud metadata service at 169.254.169.254), unique-local, shared (100.64.0.0/10), multicast,
reserved and the like. Such an address is refused unless ``--proxy-tunnel-allow-networks``
names a range holding it. An IPv4 address inside an IPv6 one (mapped, NAT64's 64:ff9b::/96,
6to4) is judged as that IPv4 address.

The name is looked up as given, through the system resolver: the hosts file answers first (so
Kubernetes ``hostAliases`` work), and resolv.conf's search domains apply as they do for any
program on the machine.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from gateway.config.hosts import Network

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class InternalAddress(Exception):
    """Every address the target resolved to is internal and not allowed."""

    def __init__(self, host: str, addresses: Iterable[Address]) -> None:
        shown = ", ".join(sorted({str(a) for a in addresses}))
        super().__init__(f"{host} resolves only to internal addresses ({shown})")


@dataclass(frozen=True, slots=True)
class Resolved:
    """One address a target resolved to, as ``socket.connect`` takes it."""

    family: int
    address: Address
    sockaddr: tuple[Any, ...]


def _embedded_ipv4(address: Address) -> ipaddress.IPv4Address | None:
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def is_internal(address: Address) -> bool:
    """Whether ``address`` is anything but a public unicast address."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return is_internal(embedded)
    if isinstance(address, ipaddress.IPv6Address) and address.is_site_local:
        return True
    return not address.is_global or address.is_multicast


def allowed(address: Address, networks: Iterable[Network]) -> bool:
    """Public, or inside one of the explicitly allowed ``networks``."""
    if not is_internal(address):
        return True
    return any(address.version == net.version and address in net for net in networks)


async def resolve(host: str, port: int, networks: Iterable[Network]) -> list[Resolved]:
    """The addresses ``host`` resolves to that a tunnel may connect to, in the resolver's
    order. Raises ``OSError`` (``socket.gaierror``) when it does not resolve, and
    :class:`InternalAddress` when no address is allowed."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    networks = tuple(networks)
    found: list[Resolved] = []
    refused: list[Address] = []
    for family, _, _, _, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        address = ipaddress.ip_address(sockaddr[0])
        if allowed(address, networks):
            found.append(Resolved(family, address, tuple(sockaddr)))
        else:
            refused.append(address)
    if not found:
        raise InternalAddress(host, refused)
    return found
