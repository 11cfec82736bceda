"""The simulator application factory and its route table."""

from __future__ import annotations

from aiohttp import web

from . import views_assigned as assigned
from . import views_marketplace as market
from . import views_publisher as publisher
from .context import STORE, URL_BASE, account_of
from .errors import Handler, error_middleware
from .seed import Seed, load_seed
from .store import Store

_IPN = "/2010-04-01/Accounts/{AccountSid}/IncomingPhoneNumbers/{ResourceSid}/AssignedAddOns"

ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "/v1/AvailableAddOns", market.list_available),
    ("GET", "/v1/AvailableAddOns/{Sid}", market.fetch_available),
    ("GET", "/v1/AvailableAddOns/{AvailableAddOnSid}/Extensions", market.list_available_extensions),
    (
        "GET",
        "/v1/AvailableAddOns/{AvailableAddOnSid}/Extensions/{Sid}",
        market.fetch_available_extension,
    ),
    ("GET", "/v1/InstalledAddOns", market.list_installed),
    ("POST", "/v1/InstalledAddOns", market.create_installed),
    ("GET", "/v1/InstalledAddOns/{Sid}", market.fetch_installed),
    ("POST", "/v1/InstalledAddOns/{Sid}", market.update_installed),
    ("DELETE", "/v1/InstalledAddOns/{Sid}", market.delete_installed),
    ("GET", "/v1/InstalledAddOns/{InstalledAddOnSid}/Extensions", market.list_installed_extensions),
    (
        "GET",
        "/v1/InstalledAddOns/{InstalledAddOnSid}/Extensions/{Sid}",
        market.fetch_installed_extension,
    ),
    (
        "POST",
        "/v1/InstalledAddOns/{InstalledAddOnSid}/Extensions/{Sid}",
        market.update_installed_extension,
    ),
    ("POST", "/v1/InstalledAddOns/{InstalledAddOnSid}/Usage", publisher.create_usage),
    ("POST", "/v1/ReferralConversion", publisher.create_referral_conversion),
    ("GET", "/v1/Listings", publisher.list_listings),
    ("POST", "/v1/Listings", publisher.create_listing),
    ("GET", "/v1/Listing/{Sid}", publisher.fetch_listing),
    ("POST", "/v1/Listing/{Sid}", publisher.update_listing),
    ("GET", f"{_IPN}.json", assigned.list_assigned),
    ("POST", f"{_IPN}.json", assigned.create_assigned),
    ("GET", _IPN + "/{Sid}.json", assigned.fetch_assigned),
    ("DELETE", _IPN + "/{Sid}.json", assigned.delete_assigned),
    ("GET", _IPN + "/{AssignedAddOnSid}/Extensions.json", assigned.list_assigned_extensions),
    ("GET", _IPN + "/{AssignedAddOnSid}/Extensions/{Sid}.json", assigned.fetch_assigned_extension),
)
"""Every operation of the v1 spec and of the 2010 AssignedAddOns subset."""

MAX_BODY = 8 * 1024 * 1024
"""Body limit: the spec allows Listing ``Policies`` up to 5 MB (aiohttp defaults to 1 MB)."""

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Authorization",
}
"""Response headers the v1 spec declares (with these example values) on every success."""


async def _add_cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    for name, value in CORS_HEADERS.items():
        response.headers.setdefault(name, value)


def create_simulator_app(
    seed: Seed | None = None, *, url_base: str | None = None
) -> web.Application:
    """An in-memory Marketplace v1 + 2010 AssignedAddOns server.

    *seed* defaults to the package's ``default_seed.json``. *url_base* (e.g.
    ``"https://marketplace.twilio.com"``) is the origin of absolute v1 URLs; ``None`` derives
    it from each request so clients pointed at the simulator page through it.
    """
    app = web.Application(middlewares=[error_middleware(account_of)], client_max_size=MAX_BODY)
    app[STORE] = Store(seed if seed is not None else load_seed())
    app[URL_BASE] = (url_base or "").rstrip("/")
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, handler)
    app.on_response_prepare.append(_add_cors_headers)
    return app
