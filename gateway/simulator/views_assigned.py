"""2010 API: ``/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers/{PN}/AssignedAddOns``.

Phone numbers are not modelled: any well-formed ``PN`` sid is a number of the caller's
account, so tests and demos need no IncomingPhoneNumber setup. An AssignedAddOn's sid is
the sid of the installed add-on it assigns (``XE``, as in the spec's examples), and its
extensions are the installation's extensions with their current ``enabled`` state.
"""

from __future__ import annotations

from aiohttp import web

from . import render
from .auth import unauthenticated
from .context import account_of, store_of
from .errors import json_response, not_found
from .models import Assignment
from .pagination import api2010_list, paginate, parse_page_request
from .params import path_sid, read_form, required_sid
from .sids import is_sid


def _number(request: web.Request) -> tuple[str, str]:
    """``(account, PN sid)`` after checking the path's AccountSid against the credentials.

    A path account other than the authenticated one is 401 / 20003: Twilio's 20003 page lists
    "using subaccount credentials to access the main account or another subaccount" as a cause,
    i.e. Twilio reports it as an authentication failure, not as 403 or 404.
    """
    account = account_of(request)
    if request.match_info["AccountSid"] != account:
        raise unauthenticated()
    return account, path_sid(request, "ResourceSid", "PN")


def _assignment_or_404(request: web.Request, name: str) -> Assignment:
    account, number = _number(request)
    sid = request.match_info[name]
    found = store_of(request).get_assignment(account, number, sid)
    if found is None:
        raise not_found(request.path)
    return found


async def list_assigned(request: web.Request) -> web.Response:
    account, number = _number(request)
    store = store_of(request)
    page = paginate(
        store.assigned_to(account, number),
        parse_page_request(request.query),
        lambda a: a.installed_add_on_sid,
    )
    records = [
        render.assigned_add_on(a, store.installed[a.installed_add_on_sid]) for a in page.items
    ]
    return json_response(api2010_list(request.path, "assigned_add_ons", page, records))


async def create_assigned(request: web.Request) -> web.Response:
    account, number = _number(request)
    store = store_of(request)
    installed_sid = required_sid(await read_form(request), "InstalledAddOnSid", "XE")
    item = store.get_installed(account, installed_sid)
    if item is None:
        raise not_found(f"/v1/InstalledAddOns/{installed_sid}")
    assignment = store.assign(account, number, installed_sid)
    return json_response(render.assigned_add_on(assignment, item), status=201)


async def fetch_assigned(request: web.Request) -> web.Response:
    assignment = _assignment_or_404(request, "Sid")
    item = store_of(request).installed[assignment.installed_add_on_sid]
    return json_response(render.assigned_add_on(assignment, item))


async def delete_assigned(request: web.Request) -> web.Response:
    store_of(request).unassign(_assignment_or_404(request, "Sid"))
    return web.Response(status=204)


async def list_assigned_extensions(request: web.Request) -> web.Response:
    assignment = _assignment_or_404(request, "AssignedAddOnSid")
    item = store_of(request).installed[assignment.installed_add_on_sid]
    page = paginate(
        list(item.extensions.values()), parse_page_request(request.query), lambda e: e.sid
    )
    records = [render.assigned_extension(assignment, e) for e in page.items]
    return json_response(api2010_list(request.path, "extensions", page, records))


async def fetch_assigned_extension(request: web.Request) -> web.Response:
    assignment = _assignment_or_404(request, "AssignedAddOnSid")
    item = store_of(request).installed[assignment.installed_add_on_sid]
    sid = request.match_info["Sid"]
    ext = item.extensions.get(sid) if is_sid(sid, "XF") else None
    if ext is None:
        raise not_found(request.path)
    return json_response(render.assigned_extension(assignment, ext))
