"""Typed app keys and per-request lookups shared by the views."""

from __future__ import annotations

from aiohttp import web

from .auth import account_for
from .errors import not_found
from .models import AvailableAddOn, InstalledAddOn
from .params import path_sid
from .store import Store

STORE = web.AppKey("marketplace_simulator_store", Store)
URL_BASE = web.AppKey("marketplace_simulator_url_base", str)
"""Origin for absolute v1 URLs; the empty string means "derive it from each request"."""


def store_of(request: web.Request) -> Store:
    """The simulator state of the app serving *request*."""
    return request.app[STORE]


def account_of(request: web.Request) -> str:
    """The authenticated Account SID (401 / 20003 when the credentials are not acceptable)."""
    return account_for(request.headers.get("Authorization"), store_of(request).api_keys)


def base_url_of(request: web.Request) -> str:
    """``url_base`` if configured, else the origin the client used (``scheme://host[:port]``)."""
    configured = request.app[URL_BASE]
    return configured if configured else f"{request.scheme}://{request.host}"


def available_or_404(request: web.Request, name: str) -> AvailableAddOn:
    """The catalogue entry whose ``XB`` sid is the path parameter *name*."""
    item = store_of(request).available.get(path_sid(request, name, "XB"))
    if item is None:
        raise not_found(request.path)
    return item


def installed_or_404(request: web.Request, name: str) -> InstalledAddOn:
    """The caller's installation whose ``XE`` sid is the path parameter *name*."""
    item = store_of(request).get_installed(account_of(request), path_sid(request, name, "XE"))
    if item is None:
        raise not_found(request.path)
    return item
