"""Fixtures for the rewrite microbenchmarks: v1 bodies and the gateway's rewriter and router.

The bodies are the bench harness's own fixtures when ``$BENCH_STATE/fixtures`` exists
(``benchmarks/setup.sh`` or ``harness/make_fixtures.py`` wrote them; BENCH_STATE defaults to
``${TMPDIR:-/tmp}/marketplace-bench``). Otherwise they are generated here, in process, with
the same shape: a 50-record ``InstalledAddOns`` page of ~33 KB whose ``url``, ``links.*`` and
``meta.*_url`` values are absolute ``https://marketplace.twilio.com/v1`` URLs (153 of them),
and one record of ~1 KB.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.config.rules import load_rules
from gateway.config.settings import load_config
from gateway.proxy import Pipeline
from gateway.rewrite import link_map
from gateway.rewrite.link_map import LinkRewriter
from gateway.routes import Route, routes_of
from gateway.routing import Router

V1 = "https://marketplace.twilio.com/v1"
UPSTREAM = "http://127.0.0.1:18081"  # as the bench runs the gateway
PUBLIC_BASE = "http://127.0.0.1:8080"
LIST_RULE = "preview_installed_add_ons"
SINGLE_RULE = "preview_installed_add_on"


@dataclass(frozen=True)
class Bodies:
    list_page: bytes  # 50 records
    single: bytes  # one record
    source: str  # where they came from


def _state_dir() -> Path:
    default = Path(os.environ.get("TMPDIR") or "/tmp") / "marketplace-bench"
    return Path(os.environ.get("BENCH_STATE") or default)


def _from_bench_state() -> Bodies | None:
    fixtures = _state_dir() / "fixtures"
    try:
        manifest = json.loads((fixtures / "manifest.json").read_text())
        list_page = (fixtures / "v1" / "InstalledAddOns.json").read_bytes()
        sid = manifest["bench_single_sid"]
        single = (fixtures / "v1" / "InstalledAddOns" / f"{sid}.json").read_bytes()
    except (OSError, ValueError, KeyError):
        return None
    return Bodies(list_page, single, str(fixtures))


def _generated() -> Bodies:
    """A deterministic page shaped like make_fixtures.py's (same fields, similar sizes)."""
    rng = random.Random(20160407)

    def sid(prefix: str) -> str:
        return prefix + format(rng.getrandbits(128), "032x")

    account = sid("AC")
    available = [sid("XB") for _ in range(12)]
    names = [
        ("VoiceBase High Accuracy Transcription", "Automatic Transcription and Keyword Extract..."),
        ("Whitepages Pro Caller Identity", "Caller name, address and line type"),
        ("Nomorobo Spam Score", "Robocaller and telemarketer spam score"),
        ("Ekata Phone Validation", "Carrier, line type and prepaid status"),
    ]
    records = []
    for index in range(50):
        xe = sid("XE")
        name, description = names[index % len(names)]
        url = f"{V1}/InstalledAddOns/{xe}"
        records.append(
            {
                "sid": xe,
                "account_sid": account,
                "friendly_name": name,
                "description": description,
                "configuration": {
                    "bad_words": rng.random() < 0.6,
                    "callback_url": f"https://hooks.example.com/twilio/addons/{rng.getrandbits(32):08x}",
                },
                "unique_name": f"addon_{index + 1}",
                "date_created": f"2016-04-{1 + index % 28:02d}T09:31:11Z",
                "date_updated": f"2016-05-{1 + index % 28:02d}T22:58:31Z",
                "url": url,
                "links": {
                    "extensions": url + "/Extensions",
                    "available_add_on": f"{V1}/AvailableAddOns/{available[index % 12]}",
                },
            }
        )

    def page_url(page: int) -> str:
        token = f"&PageToken=PAXE{records[-1]['sid'][2:]}" if page else ""
        return f"{V1}/InstalledAddOns?PageSize=50&Page={page}{token}"

    page = {
        "installed_add_ons": records,
        "meta": {
            "page": 0,
            "page_size": 50,
            "first_page_url": page_url(0),
            "previous_page_url": None,
            "url": page_url(0),
            "next_page_url": page_url(1),
            "key": "installed_add_ons",
        },
    }
    single = dict(records[0], configuration={**records[0]["configuration"], "tags": ["emea"]})

    def dump(obj: object) -> bytes:
        return json.dumps(obj, separators=(",", ":")).encode()

    return Bodies(dump(page), dump(single), "generated in process (benchmarks/conftest.py)")


@pytest.fixture(scope="session")
def bodies() -> Bodies:
    return _from_bench_state() or _generated()


@pytest.fixture(scope="session")
def pipeline() -> Pipeline:
    """Built exactly as the gateway builds it at start-up for the bench command line."""
    config = load_config(
        {
            "marketplace_upstream": UPSTREAM,
            "public_base_url": PUBLIC_BASE,
            "listen": "127.0.0.1:8080",
        },
        {},
    )
    return Pipeline.build(config, load_rules(config.rules))


@pytest.fixture(scope="session")
def list_rewriter(pipeline: Pipeline) -> LinkRewriter:
    return route_named(pipeline, LIST_RULE).rewriter


@pytest.fixture(scope="session")
def single_rewriter(pipeline: Pipeline) -> LinkRewriter:
    return route_named(pipeline, SINGLE_RULE).rewriter


# The ways response_rewrite.rewrite_body can take (see its docstring): the compiled
# accelerator, pure-Python parse-and-prove, and the exact scan (json_scan) alone.
REWRITE_PATHS = ["compiled", "parse-and-prove", "exact"]


def path_rewriter(pipeline: Pipeline, rule: str, path: str) -> LinkRewriter:
    """The pipeline's rewriter for ``rule``, rebuilt to take ``path``."""
    built = route_named(pipeline, rule).rewriter
    if path == "compiled":
        if link_map.ACCELERATOR is None:
            pytest.skip("the C accelerator is not built")
        return built
    return LinkRewriter.build(built.prefixes, built.path_map.rules, accelerate=False)


@pytest.fixture(scope="session")
def router(pipeline: Pipeline) -> Router[Route]:
    return pipeline.router


def route_named(pipeline: Pipeline, name: str) -> Route:
    return {route.name: route for route in routes_of(pipeline.router)}[name]
