"""Deprecation (RFC 9745), Sunset (RFC 8594) and successor ``Link`` headers (pure; no I/O)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime

from multidict import CIMultiDict

from gateway.config.policy import DeprecationPolicy
from gateway.config.rules import Template


def deprecation_value(moment: datetime) -> str:
    """RFC 9745 ``Deprecation`` field value: ``@`` and the Unix time in seconds."""
    return f"@{int(moment.timestamp())}"


def sunset_value(moment: datetime) -> str:
    """RFC 8594 ``Sunset`` field value: an IMF-fixdate in GMT."""
    return format_datetime(moment.astimezone(UTC), usegmt=True)


@dataclass(frozen=True, slots=True)
class DeprecationHeaders:
    """The fixed part of one rule's headers, worked out once at start-up."""

    deprecation: str
    sunset: str
    links: tuple[str, ...]  # the documentation links, already formatted

    @classmethod
    def for_policy(cls, policy: DeprecationPolicy) -> DeprecationHeaders:
        links = []
        if policy.deprecation_link:
            links.append(f'<{policy.deprecation_link}>; rel="deprecation"; type="text/html"')
        if policy.sunset_link:
            links.append(f'<{policy.sunset_link}>; rel="sunset"; type="text/html"')
        return cls(deprecation_value(policy.deprecation), sunset_value(policy.sunset), tuple(links))

    def pairs(self, successor: str, sunset: str | None = None) -> tuple[tuple[str, str], ...]:
        """The headers as ``(name, value)`` pairs, with ``sunset`` (a consumer's own cut-off)
        instead of the route's Sunset when given."""
        return (
            ("Deprecation", self.deprecation),
            ("Sunset", sunset or self.sunset),
            ("Link", f'<{successor}>; rel="successor-version"'),
            *(("Link", link) for link in self.links),
        )

    def apply(self, headers: CIMultiDict[str], successor: str) -> None:
        """Add the headers to ``headers`` (:func:`add_headers`)."""
        add_headers(headers, self.pairs(successor))


def add_headers(headers: CIMultiDict[str], pairs: tuple[tuple[str, str], ...]) -> None:
    """Add deprecation ``pairs`` to ``headers``: ``Link`` values are added, never overwritten
    (the upstream's stay); ``Deprecation`` and ``Sunset`` are set."""
    for name, value in pairs:
        if name == "Link":
            headers.add(name, value)
        else:
            headers[name] = value


def successor_url(target: Template, params: Mapping[str, str], origin: str) -> str:
    """The v1 URL of the resource a deprecated request addressed: ``origin`` + ``target``."""
    return origin + target.render(params)
