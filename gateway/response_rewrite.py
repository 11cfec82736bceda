"""Map upstream URLs in JSON response bodies back to the gateway (pure; no I/O).

Only the URL-bearing fields named in api-mapping section 2 are touched, at the top level and
in each record of a list: ``url``, ``uri``, every value of ``links`` and ``subresource_uris``,
the four ``meta.*_url`` and the 2010 ``*_page_uri`` keys. A value is rewritten only when it
starts with one of the upstream's URL prefixes; relative 2010 URIs and everything else
(``configuration``, ``configuration_schema``, ``more_info``, ...) pass unchanged. The path and
query after the prefix are kept byte for byte, except that a deprecated route's upstream
path is mapped back to its legacy path.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.errors import UpstreamBadResponse
from gateway.rules import Rule

_RECORD_URL_KEYS = ("url", "uri")
_RECORD_URL_MAPS = ("links", "subresource_uris")
_META_URL_KEYS = ("url", "first_page_url", "previous_page_url", "next_page_url")
_TOP_PAGE_KEYS = ("first_page_uri", "previous_page_uri", "next_page_uri")

# orjson silently reads an integer wider than 64 bits as a float (losing digits). A body with
# a run of 19+ digits is decoded and encoded by the standard library, which keeps it exact.
_LONG_DIGITS = re.compile(rb"[0-9]{19,}")


@dataclass(frozen=True, slots=True)
class PathMap:
    """Upstream path -> public path for one family of routes.

    ``rules`` are the deprecated rules of one upstream; a path that matches one of their
    targets becomes that rule's legacy path. Any other path is kept (the gateway also serves
    the upstream's own paths, so the URL still leads back through it).
    """

    rules: tuple[Rule, ...]
    combined: re.Pattern[str] | None

    @classmethod
    def build(cls, rules: Sequence[Rule]) -> PathMap:
        if not rules:
            return cls((), None)
        alternatives = "|".join(
            f"(?P<r{index}>{_unnamed(rule.target.regex.pattern)})"
            for index, rule in enumerate(rules)
        )
        return cls(tuple(rules), re.compile(alternatives))

    def map(self, path: str) -> str:
        if self.combined is None:
            return path
        found = self.combined.fullmatch(path)
        if found is None or found.lastgroup is None:
            return path
        rule = self.rules[int(found.lastgroup[1:])]
        params = rule.target.regex.fullmatch(path)
        assert params is not None  # the combined pattern just matched this alternative
        return rule.source.render(params.groupdict())


def _unnamed(pattern: str) -> str:
    return re.sub(r"\(\?P<[A-Za-z_][A-Za-z0-9_]*>", "(?:", pattern)


@dataclass(frozen=True, slots=True)
class LinkRewriter:
    """Everything needed to rewrite the URLs of one route's responses."""

    prefixes: tuple[str, ...]  # upstream URL prefixes, e.g. "https://marketplace.twilio.com"
    path_map: PathMap
    markers: tuple[bytes, ...] = ()  # the prefixes as bytes, also with JSON-escaped "/"

    @classmethod
    def build(cls, prefixes: Sequence[str], deprecated_rules: Sequence[Rule]) -> LinkRewriter:
        markers = {p.encode() for p in prefixes} | {
            p.replace("/", "\\/").encode() for p in prefixes
        }
        return cls(tuple(prefixes), PathMap.build(deprecated_rules), tuple(sorted(markers)))

    def url(self, value: Any, public_base: str) -> Any:
        """``value`` mapped to the public base when it is one of the upstream's URLs."""
        if not isinstance(value, str):
            return value
        for prefix in self.prefixes:
            if value.startswith(prefix):
                rest = value[len(prefix) :]
                if rest[:1] not in ("/", "?", ""):
                    continue  # "https://api.twilio.com.evil" is not the upstream
                path, mark, query = rest.partition("?")
                return f"{public_base}{self.path_map.map(path or '/')}{mark}{query}"
        return value


def is_json(content_type: str) -> bool:
    """``application/json`` or any ``+json`` media type."""
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


def rewrite_body(
    body: bytes, content_type: str, rewriter: LinkRewriter, public_base: str
) -> bytes | None:
    """The rewritten body, or ``None`` when it is to be sent unchanged.

    Raises :class:`UpstreamBadResponse` for a JSON body that carries upstream URLs but does
    not parse.
    """
    if not body or not is_json(content_type):
        return None
    if not any(marker in body for marker in rewriter.markers):
        return None
    data, exact = _loads(body)
    if not isinstance(data, dict):
        return None
    rewrite_document(data, rewriter, public_base)
    if exact:  # ASCII escapes also keep a lone surrogate ("\ud800") valid JSON
        return json.dumps(data, separators=(",", ":"), allow_nan=False).encode()
    return orjson.dumps(data)


def _loads(body: bytes) -> tuple[Any, bool]:
    """The decoded body, and whether the standard library decoded it (and must encode it)."""
    if not _LONG_DIGITS.search(body):
        try:
            return orjson.loads(body), False
        except orjson.JSONDecodeError:
            pass  # maybe a lone surrogate escape, which orjson refuses and JSON allows
    try:
        return json.loads(body, parse_constant=_refuse, parse_float=_finite_float), True
    except (ValueError, RecursionError) as exc:
        raise UpstreamBadResponse(
            "The upstream sent a JSON content type with an invalid body"
        ) from exc


def _refuse(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"{text} is out of range")
    return value


def rewrite_document(data: dict[str, Any], rewriter: LinkRewriter, public_base: str) -> None:
    """Rewrite one decoded response document in place."""
    _rewrite_record(data, rewriter, public_base)
    for key in _TOP_PAGE_KEYS:
        if key in data:
            data[key] = rewriter.url(data[key], public_base)
    meta = data.get("meta")
    if isinstance(meta, dict):
        for key in _META_URL_KEYS:
            if key in meta:
                meta[key] = rewriter.url(meta[key], public_base)
        _normalize_meta(meta, data)
    for value in data.values():
        if isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    _rewrite_record(item, rewriter, public_base)


def _rewrite_record(record: dict[str, Any], rewriter: LinkRewriter, public_base: str) -> None:
    for key in _RECORD_URL_KEYS:
        if key in record:
            record[key] = rewriter.url(record[key], public_base)
    for key in _RECORD_URL_MAPS:
        links = record.get(key)
        if isinstance(links, dict):
            for name, link in links.items():
                links[name] = rewriter.url(link, public_base)


def _normalize_meta(meta: dict[str, Any], data: dict[str, Any]) -> None:
    """Fill ``meta.key`` when the upstream left it out but the page has one record list.

    Clients locate the records through ``meta.key``; paging links stay as rewritten (a missing
    ``next_page_url`` means the last page to every official client).
    """
    if isinstance(meta.get("key"), str) and meta["key"] in data:
        return
    lists = [key for key, value in data.items() if isinstance(value, list)]
    if len(lists) == 1:
        meta["key"] = lists[0]
