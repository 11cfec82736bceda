"""The upstream table: every family of routes the gateway forwards to, as data.

Each row gives an upstream's name (what a rule's ``upstream`` field names), its default address
and what its calls are. From the table come the options ``<name>_upstream`` and
``<name>_public_origins`` (:mod:`gateway.config.options`), the config's ``upstreams`` mapping, the
validation of the rules' ``upstream`` field, and the v1 origins the command tools print.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Upstream:
    """Where one family of routes is forwarded, and the origins its URLs are written with."""

    name: str
    base: str  # e.g. "https://marketplace.twilio.com" (no trailing slash; may carry a path)
    public_origins: tuple[str, ...]  # absolute URL prefixes recognised as this upstream's

    @property
    def url_prefixes(self) -> tuple[str, ...]:
        """Every prefix that marks a URL in a response body as this upstream's."""
        seen: dict[str, None] = {self.base: None}
        for origin in self.public_origins:
            seen.setdefault(origin, None)
        return tuple(seen)

    @property
    def successor_origin(self) -> str:
        """The public origin clients are told to call instead (Link, brownout messages)."""
        return (self.public_origins or (self.base,))[0]


@dataclass(frozen=True, slots=True)
class UpstreamRow:
    """One row of the table: the upstream's name, Twilio's public origin, what it serves."""

    name: str
    origin: str
    serves: str


TABLE: tuple[UpstreamRow, ...] = (
    UpstreamRow("marketplace", "https://marketplace.twilio.com", "Marketplace v1 calls"),
    UpstreamRow("api", "https://api.twilio.com", "2010 API (AssignedAddOns) calls"),
)

NAMES: tuple[str, ...] = tuple(row.name for row in TABLE)
ORIGINS: dict[str, str] = {row.name: row.origin for row in TABLE}
