"""Resource representations: Marketplace v1 (absolute ``url``/``links``, ISO dates) and
2010 AssignedAddOns (relative ``uri``/``subresource_uris``, RFC 2822 dates)."""

from __future__ import annotations

import copy
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from .models import (
    Assignment,
    AvailableAddOn,
    AvailableExtension,
    InstalledAddOn,
    InstalledExtension,
    Listing,
)


def iso_date(value: datetime) -> str:
    """``2016-04-07T23:52:28Z``."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def rfc2822_date(value: datetime) -> str:
    """``Thu, 07 Apr 2016 23:52:28 +0000``."""
    return format_datetime(value)


def available_add_on(item: AvailableAddOn, base: str) -> dict[str, Any]:
    url = f"{base}/v1/AvailableAddOns/{item.sid}"
    return {
        "sid": item.sid,
        "friendly_name": item.friendly_name,
        "description": item.description,
        "pricing_type": item.pricing_type,
        "configuration_schema": copy.deepcopy(item.configuration_schema),
        "url": url,
        "links": {"extensions": f"{url}/Extensions"},
    }


def available_extension(
    parent: AvailableAddOn, ext: AvailableExtension, base: str
) -> dict[str, Any]:
    return {
        "sid": ext.sid,
        "available_add_on_sid": parent.sid,
        "friendly_name": ext.friendly_name,
        "product_name": ext.product_name,
        "unique_name": ext.unique_name,
        "url": f"{base}/v1/AvailableAddOns/{parent.sid}/Extensions/{ext.sid}",
    }


def installed_add_on(item: InstalledAddOn, base: str) -> dict[str, Any]:
    url = f"{base}/v1/InstalledAddOns/{item.sid}"
    return {
        "sid": item.sid,
        "account_sid": item.account_sid,
        "friendly_name": item.friendly_name,
        "description": item.description,
        "configuration": copy.deepcopy(item.configuration),
        "unique_name": item.unique_name,
        "date_created": iso_date(item.date_created),
        "date_updated": iso_date(item.date_updated),
        "url": url,
        # The spec's examples list extensions and available_add_on; its dependentProperties
        # add usage (/v1/InstalledAddOns/{sid}/Usage), which real answers carry too.
        "links": {
            "extensions": f"{url}/Extensions",
            "available_add_on": f"{base}/v1/AvailableAddOns/{item.available_add_on_sid}",
            "usage": f"{url}/Usage",
        },
    }


def installed_extension(
    parent: InstalledAddOn, ext: InstalledExtension, base: str
) -> dict[str, Any]:
    return {
        "sid": ext.sid,
        "installed_add_on_sid": parent.sid,
        "friendly_name": ext.friendly_name,
        "product_name": ext.product_name,
        "unique_name": ext.unique_name,
        "enabled": ext.enabled,
        "url": f"{base}/v1/InstalledAddOns/{parent.sid}/Extensions/{ext.sid}",
    }


def listing(item: Listing, base: str) -> dict[str, Any]:
    body: dict[str, Any] = {"url": f"{base}/v1/Listing/{item.sid}", "sid": item.sid}
    body.update(copy.deepcopy(item.data))
    return body


def assigned_uri(assignment: Assignment) -> str:
    """Relative URI of an AssignedAddOn (``.json`` suffix included)."""
    return (
        f"/2010-04-01/Accounts/{assignment.account_sid}/IncomingPhoneNumbers/"
        f"{assignment.resource_sid}/AssignedAddOns/{assignment.installed_add_on_sid}"
    )


def assigned_add_on(assignment: Assignment, item: InstalledAddOn) -> dict[str, Any]:
    uri = assigned_uri(assignment)
    return {
        "sid": item.sid,
        "account_sid": assignment.account_sid,
        "resource_sid": assignment.resource_sid,
        "friendly_name": item.friendly_name,
        "description": item.description,
        "configuration": copy.deepcopy(item.configuration),
        "unique_name": item.unique_name,
        "date_created": rfc2822_date(assignment.date_created),
        "date_updated": rfc2822_date(assignment.date_updated),
        "uri": f"{uri}.json",
        "subresource_uris": {"extensions": f"{uri}/Extensions.json"},
    }


def assigned_extension(assignment: Assignment, ext: InstalledExtension) -> dict[str, Any]:
    return {
        "sid": ext.sid,
        "account_sid": assignment.account_sid,
        "resource_sid": assignment.resource_sid,
        "assigned_add_on_sid": assignment.installed_add_on_sid,
        "friendly_name": ext.friendly_name,
        "product_name": ext.product_name,
        "unique_name": ext.unique_name,
        "enabled": ext.enabled,
        "uri": f"{assigned_uri(assignment)}/Extensions/{ext.sid}.json",
    }
