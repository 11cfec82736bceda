"""pytest-benchmark microbenchmarks of the gateway's pure per-request steps.

    .venv/bin/python -m pytest benchmarks/ --benchmark-only          # timings
    .venv/bin/python -m pytest benchmarks/ --benchmark-disable       # run once, no timing

The response rewrite is measured on each of its ways (``compiled``: the C accelerator;
``parse-and-prove`` and ``exact``: pure Python), on the 50-record list page and one record;
the references show what the yardstick pays (``bytes.replace``) and what any parse-and-serialise
rewrite would (an orjson round trip). Every benchmark also checks its result, so a "fast" but
wrong rewrite cannot pass.
"""

from __future__ import annotations

import gzip
from typing import Any

import orjson
import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from benchmarks.conftest import (
    LIST_RULE,
    PUBLIC_BASE,
    REWRITE_PATHS,
    SINGLE_RULE,
    V1,
    Bodies,
    path_rewriter,
    route_named,
)
from gateway import request_rewrite
from gateway.models import UpstreamResponse
from gateway.proxy import Pipeline
from gateway.rewrite import content_coding, json_scan
from gateway.rewrite.link_map import LinkRewriter
from gateway.rewrite.response_rewrite import rewrite_body, rewrite_error_message, rewrite_exactly
from gateway.routes import Route
from gateway.routing import Router
from gateway.serving import headers, response_body

LIST_PATH = "/marketplace/InstalledAddOns?PageSize=50"
SINGLE_PATH = "/marketplace/InstalledAddOns/XE8f6ef1aa8b0dd2442e039eb1e0f66088"
CLIENT_HEADERS = CIMultiDict(
    {
        "Host": "127.0.0.1:8080",
        "Authorization": "Basic QUNhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYTp0b2tlbg==",
        "Accept": "application/json",
        "User-Agent": "bench-wrk/4.1 (twilio-migration-gateway yardstick)",
    }
)
UPSTREAM_HEADERS = CIMultiDictProxy(
    CIMultiDict(
        {
            "Server": "nginx",
            "Date": "Tue, 24 Nov 2026 07:19:02 GMT",
            "Content-Type": "application/json",
            "Content-Length": "35014",
            "Last-Modified": "Tue, 24 Nov 2026 07:18:37 GMT",
            "Connection": "keep-alive",
            "ETag": '"6743a1ed-88c6"',
        }
    )
)


def _check_rewritten(out: bytes | None, urls: int) -> None:
    assert out is not None
    assert b"marketplace.twilio.com" not in out
    assert out.count(PUBLIC_BASE.encode() + b"/marketplace/") == urls


def _rewrite(path: str) -> Any:
    return rewrite_exactly if path == "exact" else rewrite_body


def _args(path: str, body: bytes, rewriter: LinkRewriter) -> tuple[Any, ...]:
    if path == "exact":
        return (body, rewriter, PUBLIC_BASE)
    return (body, "application/json", rewriter, PUBLIC_BASE)


@pytest.mark.parametrize("path", REWRITE_PATHS)
def test_rewrite_list_page(benchmark: Any, bodies: Bodies, pipeline: Pipeline, path: str) -> None:
    """The 50-record page (~35 KB, 153 URLs)."""
    body = bodies.list_page
    assert body.count(V1.encode() + b"/") == 153, bodies.source
    rewriter = path_rewriter(pipeline, LIST_RULE, path)
    benchmark.extra_info.update(body_bytes=len(body), source=bodies.source)
    out = benchmark(_rewrite(path), *_args(path, body, rewriter))
    _check_rewritten(out, 153)


@pytest.mark.parametrize("path", REWRITE_PATHS)
def test_rewrite_single(benchmark: Any, bodies: Bodies, pipeline: Pipeline, path: str) -> None:
    """One record (~1 KB, 3 URLs)."""
    rewriter = path_rewriter(pipeline, SINGLE_RULE, path)
    out = benchmark(_rewrite(path), *_args(path, bodies.single, rewriter))
    _check_rewritten(out, 3)


@pytest.mark.parametrize("path", ["compiled", "parse-and-prove"])
def test_rewrite_no_upstream_urls(
    benchmark: Any, bodies: Bodies, pipeline: Pipeline, path: str
) -> None:
    """A ~35 KB JSON body without any upstream URL: passed through (None)."""
    body = bodies.list_page.replace(b"marketplace.twilio.com", b"elsewhere.example.com")
    rewriter = path_rewriter(pipeline, LIST_RULE, path)
    assert benchmark(rewrite_body, body, "application/json", rewriter, PUBLIC_BASE) is None


def test_rewrite_list_page_with_a_customer_url(
    benchmark: Any, bodies: Bodies, pipeline: Pipeline
) -> None:
    """Pure Python when a customer field holds an upstream URL: the count does not prove the
    shortcut, so the exact scan runs after the parse (the worst ordinary case)."""
    body = bodies.list_page.replace(
        b'"configuration":{', b'"configuration":{"home":"' + V1.encode() + b'/x",', 1
    )
    rewriter = path_rewriter(pipeline, LIST_RULE, "parse-and-prove")
    out = benchmark(rewrite_body, body, "application/json", rewriter, PUBLIC_BASE)
    assert out is not None and V1.encode() + b"/x" in out


def test_json_scan_list_page(benchmark: Any, bodies: Bodies) -> None:
    """The exact scan alone (no mapping)."""
    found = benchmark(json_scan.scan, bodies.list_page)
    assert found is not None and len(found.fields) == 153


def test_response_body_prepare_single(
    benchmark: Any, bodies: Bodies, single_rewriter: LinkRewriter
) -> None:
    """The whole body step for one record: coding check, rewrite, error-message check."""
    incoming = UpstreamResponse(200, UPSTREAM_HEADERS, bodies.single, 0.001)

    def step() -> response_body.OutgoingBody:
        response_body.off_loop(incoming, single_rewriter)
        return response_body.prepare(incoming, single_rewriter, PUBLIC_BASE, True, 1 << 24)

    out = benchmark(step)
    _check_rewritten(out.body, 3)


def test_gzip_decode_list_page(benchmark: Any, bodies: Bodies) -> None:
    """An upstream that compresses although asked not to: gunzip within the size cap."""
    coded = gzip.compress(bodies.list_page)
    assert benchmark(content_coding.decode, coded, "gzip", 1 << 24) == bodies.list_page


def test_error_message(benchmark: Any, pipeline: Pipeline) -> None:
    """A deprecated route's 404: the v1 path in ``message`` becomes the legacy path."""
    body = (
        b'{"code":20404,"message":"The requested resource /v1/InstalledAddOns/XE'
        + b"ab" * 16
        + b' was not found","more_info":"https://www.twilio.com/docs/errors/20404","status":404}'
    )
    rewriter = route_named(pipeline, SINGLE_RULE).rewriter
    out = benchmark(rewrite_error_message, body, "application/json", rewriter)
    assert out is not None and b"/marketplace/InstalledAddOns/XE" in out


@pytest.mark.parametrize(
    ("path", "rule"), [(LIST_PATH, LIST_RULE), (SINGLE_PATH, SINGLE_RULE)], ids=["list", "single"]
)
def test_router_match(benchmark: Any, router: Router, path: str, rule: str) -> None:
    match = benchmark(router.match, "GET", path)
    assert match.rule.name == rule


def test_request_build(benchmark: Any, router: Router[Route], pipeline: Pipeline) -> None:
    """Upstream URL + outbound header filtering for a typical client GET."""
    match = router.match("GET", LIST_PATH)
    base = match.route.upstream.base
    outgoing = benchmark(request_rewrite.build, match, base, "GET", CLIENT_HEADERS, b"")
    assert outgoing.url == base + "/v1/InstalledAddOns?PageSize=50"
    assert "Host" not in outgoing.headers


def test_response_headers(benchmark: Any) -> None:
    """Inbound header filtering of a typical nginx upstream response."""
    out = benchmark(headers.inbound, UPSTREAM_HEADERS, body_rewritten=True)
    assert "ETag" not in out and "Content-Length" not in out


# References: what the same page costs with the cheapest possible approaches: what the
# yardstick pays (bytes.replace), and the floor of any parse-and-serialise rewrite.


def test_reference_orjson_roundtrip(benchmark: Any, bodies: Bodies) -> None:
    body = bodies.list_page
    out = benchmark(lambda: orjson.dumps(orjson.loads(body)))
    assert len(out) == len(body)


def test_reference_bytes_replace(benchmark: Any, bodies: Bodies) -> None:
    body = bodies.list_page
    new = PUBLIC_BASE.encode() + b"/marketplace/"
    out = benchmark(body.replace, V1.encode() + b"/", new)
    assert b"marketplace.twilio.com" not in out
