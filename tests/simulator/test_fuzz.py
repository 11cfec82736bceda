"""Fuzzing the simulator: every route, fed awkward and random input, answers below 500.

Real Twilio answers a malformed request with a 4xx; the simulator must too, since the gateway's
own tests and demos stand on it. The inputs come from a seeded generator (the same cases every
run): path parameters that are valid seeded SIDs, SID-shaped strangers or junk; the query and
form parameters the published specs name, plus unknown ones, with values drawn from a list of
known troublemakers (integers beyond 64 bits, Unicode digits, %-escapes, NUL, JSON fragments,
5,000-character strings) and random text; bodies as forms, JSON of every shape, multipart
without a boundary, and random bytes under random content types.
"""

from __future__ import annotations

import base64
import json
import random
import re
from collections import Counter
from typing import Any
from urllib.parse import quote, urlencode

from aiohttp import web
from aiohttp.test_utils import TestClient
from yarl import URL

from gateway.simulator import create_simulator_app, load_seed
from gateway.simulator.app import ROUTES
from tests.paths import SPECS

from .conftest import basic

SEED = 20241201
CASES_PER_ROUTE = 150
ACCOUNT = "AC00000000000000000000000000000001"  # owns the seed's installed add-on and key

PLACEHOLDER = re.compile(r"\{(\w+)\}")

SimClient = TestClient[web.Request, web.Application]

TROUBLE = [
    "",
    " ",
    "0",
    "-1",
    "1001",
    "1000",
    "9223372036854775808",
    "99999999999999999999999",
    "-99999999999999999999999",
    "1" * 5000,
    "1e3",
    "1_000",
    "+5",
    " 5 ",
    "\u0663",  # ARABIC-INDIC DIGIT THREE: int() accepts it
    "0x10",
    "true",
    "True",
    "false",
    "null",
    "{}",
    "[]",
    '{"a": 1}',
    '{"a": {"b": [1, 2, {"c": null}]}}',
    "[1, 2, 3]",
    '"text"',
    "1e309",
    "NaN",
    "%",
    "%ZZ",
    "%00",
    "\x00",
    "\r\n",
    "caf\u00e9",
    "\U0001f600",
    "a" * 5000,
    "PT",
    "PTAAAA",
    "PT" + base64.urlsafe_b64encode(b"99999999999999999999").decode(),
    "PT" + base64.urlsafe_b64encode(b"5:XE" + b"0" * 32).decode(),
    "XB" + "0" * 32,
    "XE" + "f" * 32,
    "XF" + "0" * 32,
    "AC" + "0" * 32,
    "PN" + "0" * 32,
    "BI" + "a" * 32,
]

JSON_BODIES: list[Any] = [
    None,
    [],
    {},
    "text",
    12,
    {"billable_items": None},
    {"billable_items": "x"},
    {"billable_items": [None, 1, "x"]},
    {"billable_items": [{"sid": "BI" + "a" * 32, "quantity": 10**30}]},
    {"billable_items": [{"sid": "BI" + "a" * 32, "quantity": 1e308}]},
    {"billable_items": [{"sid": 5, "quantity": "1"}]},
    {"billable_items": [{"sid": "BI" + "a" * 32, "quantity": True}]},
    {"billable_items": [{"sid": {"x": 1}, "quantity": [1]}]},
    {"referral_account_sid": None},
    {"referral_account_sid": ["AC" + "0" * 32]},
    {"referral_account_sid": "AC" + "0" * 32},
    {"referral_account_sid": "AC" + "0" * 5000},
]


def _spec_names() -> tuple[list[str], list[str]]:
    """Every query parameter and form field named by the three specs."""
    query: set[str] = {"PageSize", "Page", "PageToken"}
    form: set[str] = set()
    for path in sorted(SPECS.glob("*.json")):
        spec = json.loads(path.read_text("utf-8"))
        for item in spec["paths"].values():
            for operation in item.values():
                if not isinstance(operation, dict):
                    continue
                for parameter in operation.get("parameters", []):
                    if parameter.get("in") == "query":
                        query.add(parameter["name"])
                content = operation.get("requestBody", {}).get("content", {})
                for media in content.values():
                    form.update(media.get("schema", {}).get("properties", {}))
    return sorted(query), sorted(form)


QUERY_NAMES, FORM_NAMES = _spec_names()


class Cases:
    """Deterministic random inputs."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        sim = load_seed()
        installed = sim.installed_add_ons[0]
        available = sim.available_add_ons[0]
        self.valid = {
            "XB": [available.sid, *(x.sid for x in sim.listings)],
            "XF": [e.sid for e in available.extensions],
            "XE": [installed.sid],
            "AC": [ACCOUNT],
            "PN": list(installed.assigned_to),
        }

    def text(self) -> str:
        rng = self.rng
        roll = rng.random()
        if roll < 0.55:
            return rng.choice(TROUBLE)
        if roll < 0.8:
            return str(rng.choice([rng.randint(-(2**70), 2**70), rng.randint(-5, 2000)]))
        alphabet = "aXBEF0123456789%&=+;:/?#[]{}\"' \t\\\u00e9\u2603\x7f"
        return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))

    def path_value(self, name: str) -> str:
        rng = self.rng
        prefix = {
            "AccountSid": "AC",
            "ResourceSid": "PN",
            "AvailableAddOnSid": "XB",
            "InstalledAddOnSid": "XE",
            "AssignedAddOnSid": "XE",
        }.get(name)
        roll = rng.random()
        if roll < 0.5:
            candidates = [s for values in self.valid.values() for s in values]
            if prefix is not None:
                candidates = self.valid[prefix]
            return rng.choice(candidates)
        if roll < 0.7:
            return rng.choice(["XB", "XE", "XF", "AC", "PN", "BI"]) + f"{rng.getrandbits(128):032x}"
        return quote(self.text() or "x", safe="")

    def query(self) -> str:
        rng = self.rng
        pairs = [
            (rng.choice([*QUERY_NAMES, "Unknown", "pagesize"]), self.text())
            for _ in range(rng.randint(0, 4))
        ]
        if rng.random() < 0.1:
            return "PageSize=%FF%FE&Page=%&=&&Bad"
        return urlencode(pairs)

    def body(self) -> tuple[bytes | None, dict[str, str]]:
        rng = self.rng
        roll = rng.random()
        form = {"Content-Type": "application/x-www-form-urlencoded"}
        if roll < 0.45:
            fields = [
                (rng.choice([*FORM_NAMES, "Unknown"]), self.text())
                for _ in range(rng.randint(0, 6))
            ]
            return urlencode(fields).encode(), form
        if roll < 0.7:
            payload = rng.choice(JSON_BODIES)
            return json.dumps(payload).encode(), {"Content-Type": "application/json"}
        if roll < 0.8:
            return b"--x\r\n\r\n", {"Content-Type": "multipart/form-data"}
        if roll < 0.9:
            raw = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 64)))
            kind = rng.choice(
                ["application/json", "application/x-www-form-urlencoded", "text/plain", "x/y"]
            )
            return raw, {"Content-Type": kind}
        return None, {}


async def test_every_route_answers_every_input_below_500(aiohttp_client: Any) -> None:
    client: SimClient = await aiohttp_client(create_simulator_app())
    cases = Cases(SEED)
    auth = {"Authorization": basic(ACCOUNT)}
    failures: list[str] = []
    statuses: Counter[int] = Counter()
    for method, template, _handler in ROUTES:
        for _ in range(CASES_PER_ROUTE):
            path = PLACEHOLDER.sub(lambda found: cases.path_value(found.group(1)), template)
            query = cases.query()
            body, headers = cases.body() if method == "POST" else (None, {})
            url = URL(path + (f"?{query}" if query else ""), encoded=True)
            async with client.request(
                method, url, data=body, headers={**auth, **headers}
            ) as response:
                await response.read()
                statuses[response.status // 100] += 1
                if response.status >= 500:
                    failures.append(f"{response.status}: {method} {url} body={body!r:.200}")
    assert sum(statuses.values()) == len(ROUTES) * CASES_PER_ROUTE
    assert statuses[2] > 100 and statuses[4] > 400, statuses  # both sides were exercised
    assert not failures, "\n".join(failures[:20])


async def test_a_page_beyond_64_bits_is_a_400_not_a_500(aiohttp_client: Any) -> None:
    client: SimClient = await aiohttp_client(create_simulator_app())
    auth = {"Authorization": basic(ACCOUNT)}
    for query in ("Page=99999999999999999999999", "PageSize=1&Page=9223372036854775808"):
        async with client.get(f"/v1/AvailableAddOns?{query}", headers=auth) as response:
            assert response.status == 400, query
            body = await response.json()
            assert body["code"] == 20001 and "Page must be between" in body["message"]
    async with client.get("/v1/AvailableAddOns?PageSize=99999999999999999999", headers=auth) as r:
        assert r.status == 400
        assert "PageSize must be between 1 and 1000" in (await r.json())["message"]
