"""A small v1-shaped upstream for the gateway's own tests: real socket, recorded requests.

It answers like Marketplace v1 (absolute ``https://marketplace.twilio.com`` URLs, ``meta``
paging with a ``PageToken`` holding ``=`` padding) and like the 2010 API (relative ``uri``s),
and keeps every request it received so tests can check what the gateway forwarded.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass, field

import orjson
from aiohttp import web
from multidict import CIMultiDictProxy

V1 = "https://marketplace.twilio.com/v1"
ACCOUNT = "AC0123456789abcdef0123456789abcdef"


def sid(prefix: str, number: int) -> str:
    return f"{prefix}{number:032x}"


def installed(number: int) -> dict[str, object]:
    xe = sid("XE", number)
    return {
        "sid": xe,
        "account_sid": ACCOUNT,
        "friendly_name": f"Add-on {number}",
        "description": "Transcribes calls",
        "configuration": {
            "callback_url": "https://marketplace.twilio.com/v1/not-a-link",
            "url": "https://marketplace.twilio.com/v1/InstalledAddOns/keep",
        },
        "unique_name": f"addon-{number}",
        "date_created": "2016-04-07T23:52:28Z",
        "date_updated": "2016-04-07T23:52:28Z",
        "url": f"{V1}/InstalledAddOns/{xe}",
        "links": {
            "extensions": f"{V1}/InstalledAddOns/{xe}/Extensions",
            "available_add_on": f"{V1}/AvailableAddOns/{sid('XB', number)}",
        },
    }


@dataclass
class Received:
    method: str
    raw_path: str
    headers: CIMultiDictProxy[str]
    body: bytes


@dataclass
class FakeUpstream:
    url: str = ""
    received: list[Received] = field(default_factory=list)
    total: int = 7  # installed add-ons in the list

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        self.received.append(Received(request.method, request.raw_path, request.headers, body))
        path = request.path
        if path == "/v1/InstalledAddOns" and request.method == "GET":
            return self._page(request)
        if path == "/v1/InstalledAddOns" and request.method == "POST":
            return _json(installed(99), 201)
        if path.startswith("/v1/InstalledAddOns/") and request.method == "DELETE":
            return web.Response(status=204)
        if "gzip" in request.query:  # compresses although the gateway asked for identity
            raw = orjson.dumps(self._resource(path))
            return web.Response(
                body=gzip.compress(raw),
                headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
            )
        if path == "/v1/text":
            return web.Response(text=f"see {V1}/InstalledAddOns", content_type="text/plain")
        if path == "/v1/echo":
            return _json({"headers": dict(request.headers), "body": body.decode("latin-1")})
        if path.startswith("/2010-04-01/"):
            return _json(
                {
                    "sid": sid("XE", 1),
                    "uri": path,
                    "subresource_uris": {"extensions": path.replace(".json", "/Extensions.json")},
                }
            )
        if path.startswith("/v1/"):
            return _json(self._resource(path), 200, extra={"ETag": '"abc"', "X-Custom": "1"})
        return _json({"code": 20404, "message": "not found", "status": 404}, 404)

    def _resource(self, path: str) -> dict[str, object]:
        resource = installed(1)
        resource["url"] = f"https://marketplace.twilio.com{path}"
        return resource

    def _page(self, request: web.Request) -> web.Response:
        size = int(request.query.get("PageSize", "50"))
        page = int(request.query.get("Page", "0"))
        start = page * size
        records = [installed(n) for n in range(start, min(start + size, self.total))]
        base = f"{V1}/InstalledAddOns"
        more = start + size < self.total
        token = f"PT{start + size:x}a%2Bb=="
        return _json(
            {
                "installed_add_ons": records,
                "meta": {
                    "page": page,
                    "page_size": size,
                    "first_page_url": f"{base}?PageSize={size}&Page=0",
                    "previous_page_url": (
                        f"{base}?Page={page - 1}&PageSize={size}" if page else None
                    ),
                    "url": f"{base}?PageSize={size}&Page={page}",
                    "next_page_url": (
                        f"{base}?PageToken={token}&Page={page + 1}&PageSize={size}"
                        if more
                        else None
                    ),
                    "key": "installed_add_ons",
                },
            }
        )


def _json(payload: object, status: int = 200, extra: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        body=orjson.dumps(payload),
        status=status,
        content_type="application/json",
        headers=extra,
    )
