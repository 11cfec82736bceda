"""gateway.serving.response_body: decode, rewrite, or pass the body on untouched; when to go
off-loop."""

from __future__ import annotations

import gzip

import orjson
import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.config.rules import load_rules
from gateway.models import UpstreamResponse
from gateway.rewrite.link_map import LinkRewriter
from gateway.serving.response_body import OFF_LOOP_ABOVE, OFF_LOOP_ABOVE_PURE, off_loop, prepare

pytestmark = pytest.mark.usefixtures("rewrite_path")

PREVIEW_RULES = [r for r in load_rules().rules if r.deprecated and r.upstream == "marketplace"]
GW = "https://gw.example"
DOC = b'{"url":"https://marketplace.twilio.com/v1/InstalledAddOns/XE1","n":1.50}'
REWRITTEN = b'{"url":"https://gw.example/marketplace/InstalledAddOns/XE1","n":1.50}'


def response(body: bytes, *headers: tuple[str, str], status: int = 200) -> UpstreamResponse:
    return UpstreamResponse(status, CIMultiDictProxy(CIMultiDict(headers)), body, 0.01)


def rewriter() -> LinkRewriter:
    return LinkRewriter.build(("https://marketplace.twilio.com",), PREVIEW_RULES)


JSON = ("Content-Type", "application/json")


def test_plain_json_is_rewritten() -> None:
    out = prepare(response(DOC, JSON), rewriter(), GW, True, 1 << 20)
    assert (out.body, out.changed, out.encoded) == (REWRITTEN, True, False)


def test_a_body_without_upstream_urls_is_the_same_object() -> None:
    body = b'{"url":"https://example.com"}'
    incoming = response(body, JSON)
    out = prepare(incoming, rewriter(), GW, False, 1 << 20)
    assert out.body is incoming.body and not out.changed and not out.encoded


def test_gzip_is_decoded_then_rewritten() -> None:
    incoming = response(gzip.compress(DOC), JSON, ("Content-Encoding", "gzip"))
    out = prepare(incoming, rewriter(), GW, True, 1 << 20)
    assert (out.body, out.changed, out.encoded) == (REWRITTEN, True, False)


@pytest.mark.parametrize("coding", ["xyz", "br", "gzip, gzip", "zstd"])
def test_a_coding_not_decoded_here_passes_untouched(coding: str) -> None:
    body = gzip.compress(gzip.compress(DOC)) if coding == "gzip, gzip" else b"\x1b\x00opaque"
    incoming = response(body, JSON, ("Content-Encoding", coding))
    out = prepare(incoming, rewriter(), GW, True, 1 << 20)
    assert out.body is incoming.body and not out.changed and out.encoded


def test_a_deprecated_routes_error_message_names_the_legacy_path() -> None:
    body = b'{"code": 20404, "message": "/v1/InstalledAddOns/XE1 was not found", "status": 404}'
    out = prepare(response(body, JSON, status=404), rewriter(), GW, True, 1 << 20)
    assert out.body == body.replace(b"/v1/", b"/marketplace/")
    assert prepare(response(body, JSON, status=404), rewriter(), GW, False, 1 << 20).body == body


def test_off_loop() -> None:
    rewrite = rewriter()
    limit = OFF_LOOP_ABOVE if rewrite.compiled is not None else OFF_LOOP_ABOVE_PURE
    small, large = b"{}", b" " * (limit + 1)
    assert not off_loop(response(small, JSON), rewrite)
    assert not off_loop(response(large[:limit], JSON), rewrite)
    assert off_loop(response(large, JSON), rewrite)
    assert not off_loop(response(gzip.compress(small), ("Content-Encoding", "gzip")), rewrite)
    numbers = b",".join(b"%d" % n for n in range(400_000))  # 2.6 MB, a fifth of that zipped
    zipped = gzip.compress(numbers)
    assert len(zipped) > limit // 64 and len(numbers) > limit
    assert off_loop(response(zipped, ("Content-Encoding", "gzip")), rewrite)
    assert not off_loop(response(zipped, ("Content-Encoding", "xyz")), rewrite)  # not decoded


def test_a_decoded_body_over_the_cap_is_refused() -> None:
    body = gzip.compress(orjson.dumps({"pad": "x" * 5000}))
    with pytest.raises(Exception) as caught:
        prepare(response(body, JSON, ("Content-Encoding", "gzip")), rewriter(), GW, True, 1000)
    assert getattr(caught.value, "code", None) == 88005
