"""The simulator's records. Catalogue entries are frozen; installed state is mutable."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

LISTING_FIELDS = (
    "description",
    "support",
    "policies",
    "module_info",
    "documentation",
    "configuration",
    "pricing",
)
"""The object-valued fields of a Listing, in the spec's order (form names are PascalCase)."""


@dataclass(frozen=True, slots=True)
class AvailableExtension:
    """An extension point of an available add-on (``XF``)."""

    sid: str
    friendly_name: str
    product_name: str
    unique_name: str


@dataclass(frozen=True, slots=True)
class AvailableAddOn:
    """A catalogue entry (``XB``); global, read-only."""

    sid: str
    friendly_name: str
    description: str
    pricing_type: str
    configuration_schema: dict[str, Any]
    extensions: tuple[AvailableExtension, ...]


@dataclass(slots=True)
class InstalledExtension:
    """One extension of an installation. Shares the ``XF`` sid of the catalogue extension."""

    sid: str
    friendly_name: str
    product_name: str
    unique_name: str
    enabled: bool = False


@dataclass(slots=True)
class InstalledAddOn:
    """An add-on installed in one account (``XE``)."""

    sid: str
    account_sid: str
    available_add_on_sid: str
    friendly_name: str
    description: str
    configuration: dict[str, Any]
    unique_name: str
    date_created: datetime
    date_updated: datetime
    extensions: dict[str, InstalledExtension] = field(default_factory=dict)


@dataclass(slots=True)
class Assignment:
    """An installed add-on assigned to an IncomingPhoneNumber (2010 API)."""

    account_sid: str
    resource_sid: str
    installed_add_on_sid: str
    date_created: datetime
    date_updated: datetime


@dataclass(slots=True)
class Listing:
    """A publisher's Marketplace Listing (``XB``). ``account_sid`` None = visible to all."""

    sid: str
    account_sid: str | None
    data: dict[str, dict[str, Any]]
