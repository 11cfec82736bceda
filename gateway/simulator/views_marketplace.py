"""Marketplace v1 handlers: AvailableAddOns, InstalledAddOns and their Extensions."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from aiohttp import web

from . import render
from .context import (
    account_of,
    available_or_404,
    base_url_of,
    installed_or_404,
    store_of,
)
from .errors import invalid_parameter, json_response, not_found
from .pagination import paginate, parse_page_request, v1_list
from .params import (
    Form,
    json_object_field,
    parse_bool,
    path_sid,
    read_form,
    required_sid,
    required_text,
    text_field,
)

T = TypeVar("T")


def _list(
    request: web.Request,
    key: str,
    records: Sequence[T],
    sid_of: Callable[[T], str],
    to_json: Callable[[T], dict[str, Any]],
) -> web.Response:
    page = paginate(records, parse_page_request(request.query), sid_of)
    body = v1_list(base_url_of(request), request.path, key, page, [to_json(r) for r in page.items])
    return json_response(body)


# -- AvailableAddOns (global catalogue, read-only) ---------------------------------------


async def list_available(request: web.Request) -> web.Response:
    account_of(request)
    base = base_url_of(request)
    records = list(store_of(request).available.values())
    return _list(
        request,
        "available_add_ons",
        records,
        lambda a: a.sid,
        lambda a: render.available_add_on(a, base),
    )


async def fetch_available(request: web.Request) -> web.Response:
    account_of(request)
    return json_response(
        render.available_add_on(available_or_404(request, "Sid"), base_url_of(request))
    )


async def list_available_extensions(request: web.Request) -> web.Response:
    account_of(request)
    parent, base = available_or_404(request, "AvailableAddOnSid"), base_url_of(request)
    return _list(
        request,
        "extensions",
        parent.extensions,
        lambda e: e.sid,
        lambda e: render.available_extension(parent, e, base),
    )


async def fetch_available_extension(request: web.Request) -> web.Response:
    account_of(request)
    parent = available_or_404(request, "AvailableAddOnSid")
    sid = path_sid(request, "Sid", "XF")
    for ext in parent.extensions:
        if ext.sid == sid:
            return json_response(render.available_extension(parent, ext, base_url_of(request)))
    raise not_found(request.path)


# -- InstalledAddOns (per account) ---------------------------------------------------------


async def create_installed(request: web.Request) -> web.Response:
    account, store = account_of(request), store_of(request)
    form = await read_form(request)
    available_sid = required_sid(form, "AvailableAddOnSid", "XB")
    if not parse_bool("AcceptTermsOfService", required_text(form, "AcceptTermsOfService")):
        raise invalid_parameter("AcceptTermsOfService must be true to install an add-on")
    configuration = json_object_field(form, "Configuration")
    unique_name = _unique_name(form)
    available = store.available.get(available_sid)
    if available is None:
        raise not_found(f"/v1/AvailableAddOns/{available_sid}")
    item = store.install(account, available, configuration, unique_name)
    return json_response(render.installed_add_on(item, base_url_of(request)), status=201)


def _unique_name(form: Form) -> str | None:
    name = text_field(form, "UniqueName")
    if name is not None and not name.strip():
        raise invalid_parameter("UniqueName must not be empty")
    return name


async def list_installed(request: web.Request) -> web.Response:
    account, base = account_of(request), base_url_of(request)
    records = store_of(request).installed_in(account)
    return _list(
        request,
        "installed_add_ons",
        records,
        lambda i: i.sid,
        lambda i: render.installed_add_on(i, base),
    )


async def fetch_installed(request: web.Request) -> web.Response:
    return json_response(
        render.installed_add_on(installed_or_404(request, "Sid"), base_url_of(request))
    )


async def update_installed(request: web.Request) -> web.Response:
    item = installed_or_404(request, "Sid")
    form = await read_form(request)
    configuration = json_object_field(form, "Configuration")
    store_of(request).update_installed(item, configuration, _unique_name(form))
    return json_response(render.installed_add_on(item, base_url_of(request)))


async def delete_installed(request: web.Request) -> web.Response:
    store_of(request).uninstall(installed_or_404(request, "Sid"))
    return web.Response(status=204)


# -- InstalledAddOn Extensions -------------------------------------------------------------


async def list_installed_extensions(request: web.Request) -> web.Response:
    parent, base = installed_or_404(request, "InstalledAddOnSid"), base_url_of(request)
    records = list(parent.extensions.values())
    return _list(
        request,
        "extensions",
        records,
        lambda e: e.sid,
        lambda e: render.installed_extension(parent, e, base),
    )


async def fetch_installed_extension(request: web.Request) -> web.Response:
    parent = installed_or_404(request, "InstalledAddOnSid")
    ext = parent.extensions.get(path_sid(request, "Sid", "XF"))
    if ext is None:
        raise not_found(request.path)
    return json_response(render.installed_extension(parent, ext, base_url_of(request)))


async def update_installed_extension(request: web.Request) -> web.Response:
    parent = installed_or_404(request, "InstalledAddOnSid")
    ext = parent.extensions.get(path_sid(request, "Sid", "XF"))
    if ext is None:
        raise not_found(request.path)
    enabled = parse_bool("Enabled", required_text(await read_form(request), "Enabled"))
    store_of(request).set_enabled(parent, ext, enabled)
    return json_response(render.installed_extension(parent, ext, base_url_of(request)))
