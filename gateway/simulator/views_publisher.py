"""Marketplace v1 operations with no preview counterpart: Usage, ReferralConversion, Listings."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from . import render
from .context import account_of, base_url_of, installed_or_404, store_of
from .errors import SimulatorError, invalid_parameter, json_response, not_found
from .models import LISTING_FIELDS, Listing
from .params import json_object_field, path_sid, read_form, read_json
from .sids import is_sid

_FORM_NAMES = {
    "module_info": "ModuleInfo",
    "description": "Description",
    "documentation": "Documentation",
    "policies": "Policies",
    "support": "Support",
    "configuration": "Configuration",
    "pricing": "Pricing",
}


def _billable_items(body: Any) -> list[tuple[str, float]]:
    items = body.get("billable_items") if isinstance(body, dict) else None
    if not isinstance(items, list):
        raise invalid_parameter("billable_items is required and must be an array")
    parsed = []
    for i, item in enumerate(items):
        sid = item.get("sid") if isinstance(item, dict) else None
        quantity = item.get("quantity") if isinstance(item, dict) else None
        if not isinstance(sid, str) or not sid:
            raise invalid_parameter(f"billable_items[{i}].sid is required and must be a string")
        if not isinstance(quantity, int | float) or isinstance(quantity, bool):
            raise invalid_parameter(
                f"billable_items[{i}].quantity is required and must be a number"
            )
        parsed.append((sid, float(quantity)))
    return parsed


async def create_usage(request: web.Request) -> web.Response:
    """202 with one ``submitted`` flag per item.

    An item is submitted when its sid is a ``BI`` sid and it is the last item with that sid
    in the request (the spec example submits only the second of two items sharing a sid).
    """
    item = installed_or_404(request, "InstalledAddOnSid")
    items = _billable_items(await read_json(request))
    last = {sid: i for i, (sid, _) in enumerate(items)}
    flags = [last[sid] == i and is_sid(sid, "BI") for i, (sid, _) in enumerate(items)]
    submitted = [pair for pair, ok in zip(items, flags, strict=True) if ok]
    store_of(request).record_usage(item, submitted)
    body = {
        "total_submitted": round(sum(q for _, q in submitted), 6),
        "billable_items": [
            {"sid": sid, "quantity": quantity, "submitted": ok}
            for (sid, quantity), ok in zip(items, flags, strict=True)
        ],
    }
    return json_response(body, status=202)


async def create_referral_conversion(request: web.Request) -> web.Response:
    """202 when the conversion is new (accepted for processing), 200 when already recorded."""
    account_of(request)
    body = await read_json(request)
    sid = body.get("referral_account_sid") if isinstance(body, dict) else None
    if not isinstance(sid, str) or not is_sid(sid, "AC"):
        raise SimulatorError(
            400, 20001, "referral_account_sid is required and must be AC followed by 32 hex digits"
        )
    new = store_of(request).convert_referral(sid)
    return json_response({"converted_account_sid": sid}, status=202 if new else 200)


async def list_listings(request: web.Request) -> web.Response:
    """``{"listings": [...]}``; no ``meta`` (the spec defines none for this operation)."""
    account, base = account_of(request), base_url_of(request)
    return json_response(
        {"listings": [render.listing(x, base) for x in store_of(request).listings_of(account)]}
    )


async def create_listing(request: web.Request) -> web.Response:
    account = account_of(request)
    form = await read_form(request)
    data = {
        field: value
        for field in ("module_info", "configuration")
        if (value := json_object_field(form, _FORM_NAMES[field])) is not None
    }
    item = store_of(request).create_listing(account, data)
    return json_response(render.listing(item, base_url_of(request)))


def _listing_or_404(request: web.Request) -> Listing:
    item = store_of(request).get_listing(account_of(request), path_sid(request, "Sid", "XB"))
    if item is None:
        raise not_found(request.path)
    return item


async def fetch_listing(request: web.Request) -> web.Response:
    return json_response(render.listing(_listing_or_404(request), base_url_of(request)))


async def update_listing(request: web.Request) -> web.Response:
    """Replace each given object field; 304 (empty) when that changes nothing."""
    item = _listing_or_404(request)
    form = await read_form(request)
    changes = {
        field: value
        for field in LISTING_FIELDS
        if (value := json_object_field(form, _FORM_NAMES[field])) is not None
        and value != item.data.get(field)
    }
    if not changes:
        return web.Response(status=304)
    store_of(request).update_listing(item, changes)
    return json_response(render.listing(item, base_url_of(request)))
