"""A scripted legacy-client session for ``gateway demo --walkthrough``.

It calls the gateway exactly as a Preview Marketplace app would (Basic auth, form bodies with
``True`` as 6.x-8.x clients send it, following ``next_page_url`` verbatim), prints each call
and the rewritten response, and fails if any step does not answer as Twilio documents.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import aiohttp

DEMO_ACCOUNT = "AC" + "0" * 31 + "1"  # the account the default simulator seed fills
DEMO_TOKEN = "demo-token"


class WalkthroughFailed(Exception):
    pass


async def _call(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    expect: int,
    form: dict[str, str] | None = None,
) -> Any:
    async with session.request(method, url, data=form) as response:
        text = await response.text()
        print(f"\n>>> {method} {url}" + (f"  form={form}" if form else ""))
        deprecation = response.headers.get("Deprecation")
        extra = f"  Deprecation: {deprecation}" if deprecation else ""
        print(f"<<< {response.status} {response.reason}{extra}")
        payload = json.loads(text) if text else None
        if payload is not None:
            print(json.dumps(payload, indent=2)[:1500])
        if response.status != expect:
            raise WalkthroughFailed(f"{method} {url}: expected {expect}, got {response.status}")
        return payload


async def run_walkthrough(gateway_url: str) -> int:
    """Run the session against ``gateway_url``; 0 when every step behaved, else 1."""
    base = f"{gateway_url}/marketplace"
    credentials = base64.b64encode(f"{DEMO_ACCOUNT}:{DEMO_TOKEN}".encode()).decode()
    headers = {"Authorization": f"Basic {credentials}"}
    async with aiohttp.ClientSession(headers=headers) as session:
        try:
            page = await _call(session, "GET", f"{base}/AvailableAddOns?PageSize=2", 200)
            add_ons = list(page["available_add_ons"])
            pages = 1
            while page["meta"]["next_page_url"]:
                page = await _call(session, "GET", page["meta"]["next_page_url"], 200)
                add_ons.extend(page["available_add_ons"])
                pages += 1
            print(f"\n=== {len(add_ons)} available add-ons over {pages} pages, all via the gateway")
            chosen = add_ons[0]
            await _call(session, "GET", f"{base}/AvailableAddOns/{chosen['sid']}", 200)
            await _call(session, "GET", f"{base}/AvailableAddOns/{chosen['sid']}/Extensions", 200)
            installed = await _call(
                session,
                "POST",
                f"{base}/InstalledAddOns",
                201,
                {
                    "AvailableAddOnSid": chosen["sid"],
                    "AcceptTermsOfService": "True",
                    "UniqueName": "walkthrough-install",
                },
            )
            sid = installed["sid"]
            await _call(session, "GET", f"{base}/InstalledAddOns/{sid}", 200)
            await _call(
                session, "POST", f"{base}/InstalledAddOns/{sid}", 200, {"UniqueName": "renamed"}
            )
            extensions = await _call(
                session, "GET", f"{base}/InstalledAddOns/{sid}/Extensions", 200
            )
            for extension in extensions["extensions"][:1]:
                url = f"{base}/InstalledAddOns/{sid}/Extensions/{extension['sid']}"
                await _call(session, "POST", url, 200, {"Enabled": "True"})
            await _call(session, "GET", f"{base}/InstalledAddOns/XE{'f' * 32}", 404)
            await _call(session, "DELETE", f"{base}/InstalledAddOns/{sid}", 204)
        except (WalkthroughFailed, aiohttp.ClientError, KeyError, IndexError) as exc:
            print(f"\nwalkthrough FAILED: {exc!r}")
            return 1
    print("\nwalkthrough OK: every legacy call answered as the Preview API documents")
    return 0
