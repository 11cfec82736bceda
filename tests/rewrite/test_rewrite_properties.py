"""Properties of the response rewrite over random documents (hypothesis).

Random JSON documents get upstream URLs planted at random URL-field places, and decoys (the
same kind of URLs) in customer data. The rewritten body must decode to the original document
with exactly the planted fields mapped, and swapping each new URL back for its old one must
give back the original bytes. A second property: all ways to the answer (compiled,
parse-and-prove, exact) give the same bytes or the same refusal, also for mangled bodies.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config.rules import load_rules
from gateway.errors import UpstreamBadResponse
from gateway.rewrite import link_map, response_rewrite
from gateway.rewrite.link_map import LinkRewriter
from gateway.rewrite.response_rewrite import rewrite_body, rewrite_exactly

PREVIEW_RULES = [r for r in load_rules().rules if r.deprecated and r.upstream == "marketplace"]
PREFIXES = ("https://marketplace.twilio.com", "http://127.0.0.1:18081", "http://m.internal/tw/mp")
PUBLIC = "https://gw.example/base"
SEGMENT = r"(?:[A-Za-z0-9_~.\-]|%[0-9A-Fa-f]{2})+"
LEGACY = re.compile(
    rf"/v1(/(?:Installed|Available)AddOns(?:/{SEGMENT}(?:/Extensions(?:/{SEGMENT})?)?)?)"
)
SETTINGS = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,  # the same examples on every run: CI stays reproducible
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

segments = st.sampled_from(
    ["InstalledAddOns", "AvailableAddOns", "Extensions", "Usage", "XE0a1b", "XB9f", "%2A", "a.b~c",
     "XE!1", "%zz", "ñ", "Listings"]
)  # fmt: skip
paths = st.builds(
    lambda first, rest: "/" + "/".join([first, *rest]),
    st.sampled_from(["v1", "v1", "v1", "2010-04-01", "v2"]),
    st.lists(segments, max_size=4),
)
queries = st.one_of(
    st.just(""), st.text("PageSizeTokn=&%+-_059", max_size=20).map(lambda q: "?" + q)
)
tails = st.builds(lambda path, query: path + query, paths, queries)


def customer_text(text: str) -> bool:
    return not any(p in text for p in (*PREFIXES, PUBLIC)) and "\\" not in text


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12).filter(customer_text),
)
keys = st.one_of(
    st.sampled_from(["url", "uri", "links", "subresource_uris", "sid", "configuration", "é", ""]),
    st.text(max_size=6).filter(lambda k: customer_text(k) and k != "meta"),
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=3),
    max_leaves=8,
)
top_keys = keys.filter(lambda k: k != "links")
record_keys = keys.filter(lambda k: k not in ("url", "uri", "links", "subresource_uris"))
link_names = st.lists(st.text("abcdef_", min_size=1, max_size=5), unique=True, max_size=3)


def mapped(tail: str) -> str:
    """The oracle: where an upstream URL's path and query lead on the gateway."""
    path, mark, query = tail.partition("?")
    legacy = LEGACY.fullmatch(path)
    return PUBLIC + ("/marketplace" + legacy.group(1) if legacy else path) + mark + query


@st.composite
def planted_documents(
    draw: st.DrawFn,
) -> tuple[dict[str, Any], dict[str, Any], list[tuple[str, str]]]:
    """(document, expected document, [(old URL, new URL)]) for one upstream prefix."""
    prefix = draw(st.sampled_from(PREFIXES))
    pairs: list[tuple[str, str]] = []

    def url() -> tuple[str, str]:
        tail = draw(tails)
        pair = (prefix + tail, mapped(tail))
        pairs.append(pair)
        return pair

    def decoy() -> str:
        return prefix + draw(tails)  # an upstream URL in customer data: never changed

    doc: dict[str, Any] = draw(
        st.dictionaries(keys.filter(lambda k: k not in ("links",)), values, max_size=4)
    )
    expected = copy.deepcopy(doc)

    def record() -> tuple[dict[str, Any], dict[str, Any]]:
        got: dict[str, Any] = draw(
            st.dictionaries(
                keys.filter(lambda k: k not in ("url", "uri", "links", "subresource_uris")),
                values,
                max_size=3,
            )
        )
        want = copy.deepcopy(got)
        for name in draw(st.sets(st.sampled_from(["url", "uri"]))):
            got[name], want[name] = url()
        for name in draw(st.sets(st.sampled_from(["links", "subresource_uris"]))):
            got[name], want[name] = {}, {}
            for link in draw(
                st.lists(st.text("abcdef_", min_size=1, max_size=5), unique=True, max_size=3)
            ):
                got[name][link], want[name][link] = url()
        got["configuration"] = want["configuration"] = {"url": decoy(), "links": {"x": decoy()}}
        return got, want

    got, want = record()
    doc.update(got)
    expected.update(want)
    for name in draw(
        st.sets(st.sampled_from(["first_page_uri", "previous_page_uri", "next_page_uri"]))
    ):
        doc[name], expected[name] = url()
    if draw(st.booleans()):
        records = [record() for _ in range(draw(st.integers(0, 3)))]
        doc["records"] = [r[0] for r in records] + [decoy(), 7]
        expected["records"] = [r[1] for r in records] + [doc["records"][-2], 7]
    if draw(st.booleans()):
        meta: dict[str, Any] = {"page": 0}
        want_meta: dict[str, Any] = {"page": 0}
        for name in draw(
            st.sets(
                st.sampled_from(["url", "first_page_url", "previous_page_url", "next_page_url"])
            )
        ):
            meta[name], want_meta[name] = url()
        lists = [k for k, v in doc.items() if isinstance(v, list)]
        meta["key"] = want_meta["key"] = lists[0] if len(lists) == 1 else "records"
        doc["meta"], expected["meta"] = meta, want_meta
    return doc, expected, pairs


def encode(doc: Any, style: int) -> bytes:
    if style == 0:
        return json.dumps(doc, separators=(",", ":")).encode()
    if style == 1:
        return json.dumps(doc, ensure_ascii=False, indent=2).replace("\n", "\r\n").encode()
    return b"\xef\xbb\xbf" + json.dumps(doc, ensure_ascii=False).encode() + b" \n"


def build() -> LinkRewriter:
    return LinkRewriter.build(PREFIXES, PREVIEW_RULES)


@pytest.mark.usefixtures("rewrite_path")
@SETTINGS
@given(planted=planted_documents(), style=st.integers(0, 2))
def test_only_the_planted_fields_change(
    planted: tuple[dict[str, Any], dict[str, Any], list[tuple[str, str]]], style: int
) -> None:
    doc, expected, pairs = planted
    body = encode(doc, style)
    out = rewrite_body(body, "application/json", build(), PUBLIC)
    got = body if out is None else out
    assert json.loads(got.decode("utf-8-sig")) == expected
    restored = got
    for old, new in pairs:  # a new URL is written plainly; the old one as the upstream wrote it
        restored = restored.replace(
            orjson.dumps(new), json.dumps(old, ensure_ascii=style == 0).encode()
        )
    assert restored == body


def outcome(body: bytes, rewriter: LinkRewriter, exact: bool) -> bytes | None | str:
    try:
        if exact:
            if not rewriter.may_hold_upstream_urls(body):
                return None
            return rewrite_exactly(body, rewriter, PUBLIC)
        return rewrite_body(body, "application/json", rewriter, PUBLIC)
    except UpstreamBadResponse:
        return "invalid"


@pytest.mark.skipif(link_map.ACCELERATOR is None, reason="the C accelerator is not built")
@SETTINGS
@given(
    planted=planted_documents(),
    style=st.integers(0, 2),
    mangle=st.lists(st.tuples(st.integers(0, 10**6), st.binary(max_size=2)), max_size=2),
)
def test_every_way_gives_the_same_answer(
    planted: tuple[dict[str, Any], dict[str, Any], list[tuple[str, str]]],
    style: int,
    mangle: list[tuple[int, bytes]],
) -> None:
    body = encode(planted[0], style)
    for at, new in mangle:  # overwrite a byte or two somewhere: often no longer JSON
        at %= len(body)
        body = body[:at] + new + body[at + len(new) :]
    compiled = LinkRewriter.build(PREFIXES, PREVIEW_RULES, accelerate=True)
    pure = LinkRewriter.build(PREFIXES, PREVIEW_RULES, accelerate=False)
    answers = {
        outcome(body, compiled, False),
        outcome(body, pure, False),
        outcome(body, pure, True),
    }
    assert len(answers) == 1, answers


@pytest.mark.skipif(link_map.ACCELERATOR is None, reason="the C accelerator is not built")
@pytest.mark.parametrize(
    "special", [b"\\n", b"\\/", b"\\u00e9", b"\xc3\xa9", b"\xe2\x82\xac", b"\x01", b"\xff", b'"']
)
def test_a_special_byte_at_every_offset_of_a_string_is_seen_by_every_way(special: bytes) -> None:
    """The compiled scan skips 16 and 8 bytes at a time inside strings: an escape, non-ASCII,
    a control or a quote at any offset of a block must stop it exactly where the byte loop
    would."""
    compiled = LinkRewriter.build(PREFIXES, PREVIEW_RULES, accelerate=True)
    pure = LinkRewriter.build(PREFIXES, PREVIEW_RULES, accelerate=False)
    url = PREFIXES[0].encode() + b"/v1/InstalledAddOns/XE0a1b"
    for at in range(0, 40):
        text = b"a" * at + special + b"b" * (40 - at)
        for body in (
            b'{"url": "' + url + b'", "notes": "' + text + b'"}',
            b'{"notes": "' + text + b'", "url": "' + url + b"?x=" + text + b'"}',
        ):
            answers = {
                outcome(body, compiled, False),
                outcome(body, pure, False),
                outcome(body, pure, True),
            }
            assert len(answers) == 1, (at, answers)


def test_parse_and_prove_is_taken_when_it_can_be(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not a property, a guard: the exact path must not silently become the common one."""
    monkeypatch.setattr(link_map, "ACCELERATOR", None)
    calls: list[bytes] = []
    real = response_rewrite.rewrite_exactly

    def spy(body: bytes, rewriter: LinkRewriter, public: str) -> bytes | None:
        calls.append(body)
        return real(body, rewriter, public)

    monkeypatch.setattr(response_rewrite, "rewrite_exactly", spy)
    page = {"records": [{"url": f"{PREFIXES[0]}/v1/InstalledAddOns/XE{n}"} for n in range(5)]}
    assert rewrite_body(json.dumps(page).encode(), "application/json", build(), PUBLIC)
    assert calls == []
    page["configuration"] = {"url": f"{PREFIXES[0]}/v1/InstalledAddOns"}  # customer URL
    assert rewrite_body(json.dumps(page).encode(), "application/json", build(), PUBLIC)
    assert len(calls) == 1
