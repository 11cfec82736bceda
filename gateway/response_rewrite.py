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

_META_URL_KEYS = ("url", "first_page_url", "previous_page_url", "next_page_url")
_TOP_PAGE_KEYS = ("first_page_uri", "previous_page_uri", "next_page_uri")

# orjson silently reads an integer wider than 64 bits as a float (losing digits). A body with
# a number token of 19+ digits is decoded and encoded by the standard library, which keeps it
# exact. Only tokens after ":", "[" or "," count, so the hex digits of SIDs inside strings do
# not send every page down the slow path (a string holding ": 1234..." merely costs speed).
# Every byte mapped to its class: digit "0", a byte that may precede a number token ":",
# "-" itself, anything else "x"; JSON whitespace is deleted. A number token of 19+ digits then
# shows as ":" plus 19 "0" (or ":-" ...) and one C-level substring search finds it, where a
# regex scan over a hex-heavy page costs several hundred microseconds.
_CLASSES = bytes(
    0x30 if chr(c).isdigit() and c < 128 else 0x3A if c in b":,[" else c if c == 0x2D else 0x78
    for c in range(256)
)
_LONG_TOKEN = b":" + b"0" * 19
_LONG_NEGATIVE = b":-" + b"0" * 19


def _has_long_number(body: bytes) -> bool:
    """Whether a number token of 19+ digits may occur (digits inside SIDs do not count).

    A string holding ``": 1234..."`` also answers True: that only costs speed, never accuracy.
    """
    classes = body.translate(_CLASSES, b" \t\r\n")
    return _LONG_TOKEN in classes or _LONG_NEGATIVE in classes


@dataclass(frozen=True, slots=True)
class PathMap:
    """Upstream path -> public path for one family of routes.

    ``rules`` are the deprecated rules of one upstream; a path that matches one of their
    targets becomes that rule's legacy path. Any other path is kept (the gateway also serves
    the upstream's own paths, so the URL still leads back through it). When every rule's
    ``from`` and ``to`` differ only in their first segment (``/marketplace`` vs ``/v1``), a match
    is mapped by swapping that prefix, which is all the hot path has to do.
    """

    rules: tuple[Rule, ...]
    combined: re.Pattern[str] | None  # one alternative per rule, named r0, r1, ...
    swap: tuple[str, str] | None = None  # (target prefix, source prefix)

    @classmethod
    def build(cls, rules: Sequence[Rule]) -> PathMap:
        if not rules:
            return cls((), None)
        alternatives = "|".join(
            f"(?P<r{index}>{_unnamed(rule.target.regex.pattern)})"
            for index, rule in enumerate(rules)
        )
        swaps = {_prefix_swap(rule) for rule in rules}
        swap = swaps.pop() if len(swaps) == 1 else None
        return cls(tuple(rules), re.compile(alternatives), swap)

    def map(self, path: str) -> str:
        combined = self.combined
        if combined is None:
            return path
        found = combined.fullmatch(path)
        if found is None:
            return path
        if self.swap is not None:
            target, source = self.swap
            return source + path[len(target) :]
        assert found.lastgroup is not None
        rule = self.rules[int(found.lastgroup[1:])]
        params = rule.target.regex.fullmatch(path)
        assert params is not None  # the combined pattern just matched this alternative
        return rule.source.render(params.groupdict())


def _prefix_swap(rule: Rule) -> tuple[str, str] | None:
    """``("/v1", "/marketplace")`` when the templates differ only in their first segment."""
    target, source = rule.target.text, rule.source.text
    target_first = "/" + target[1:].split("/", 1)[0]
    source_first = "/" + source[1:].split("/", 1)[0]
    if "{" in target_first + source_first:
        return None
    if target[len(target_first) :] != source[len(source_first) :]:
        return None
    return target_first, source_first


def _segment_regex(segment: str) -> str:
    """One template segment as regex text; a placeholder is any run of segment characters."""
    parts = re.split(r"\{[A-Za-z_][A-Za-z0-9_]*\}", segment)
    return "[^/?\\n#]+".join(re.escape(part) for part in parts)


def _trie_regex(paths: Sequence[Sequence[str]]) -> str:
    """Regex text matching exactly the given segment lists, factored by common prefixes so
    that the engine never retries a shared segment (``/A``, ``/A/{x}``, ``/A/{x}/E`` ...)."""
    children: dict[str, list[Sequence[str]]] = {}  # by segment regex: names don't matter
    ends_here = False
    for path in paths:
        if not path:
            ends_here = True
        else:
            children.setdefault(_segment_regex(path[0]), []).append(path[1:])
    if not children:
        return ""
    branches = ["/" + segment + _trie_regex(rest) for segment, rest in children.items()]
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    return f"(?:{body})?" if ends_here else body


def _unnamed(pattern: str) -> str:
    return re.sub(r"\(\?P<[A-Za-z_][A-Za-z0-9_]*>", "(?:", pattern)


@dataclass(frozen=True, slots=True)
class LinkRewriter:
    """Everything needed to rewrite the URLs of one route's responses."""

    prefixes: tuple[str, ...]  # upstream URL prefixes, e.g. "https://marketplace.twilio.com"
    path_map: PathMap
    markers: tuple[bytes, ...] = ()  # the prefixes as bytes, also with JSON-escaped "/"
    # The same mapping as regexes over many URLs joined by newlines, so that a 50-record page
    # costs two C-level substitutions instead of 150 Python calls (see rewrite_many).
    batch_legacy: re.Pattern[str] | None = None  # upstream prefix + target prefix, when swappable
    batch_plain: re.Pattern[str] | None = None  # any other URL of the upstream

    @classmethod
    def build(cls, prefixes: Sequence[str], deprecated_rules: Sequence[Rule]) -> LinkRewriter:
        markers = {p.encode() for p in prefixes} | {
            p.replace("/", "\\/").encode() for p in prefixes
        }
        path_map = PathMap.build(deprecated_rules)
        ordered = sorted(prefixes, key=len, reverse=True)
        origin = "(?:" + "|".join(re.escape(p) for p in ordered) + ")"
        plain: re.Pattern[str] | None = re.compile(f"\\n{origin}(?=/)")
        legacy = None
        if path_map.swap is not None:
            target, _ = path_map.swap
            tails = _trie_regex(
                [rule.target.text[len(target) :].split("/")[1:] for rule in path_map.rules]
            )
            legacy = re.compile(f"\\n{origin}{re.escape(target)}(?=(?:{tails})(?:[?\\n]|$))")
        elif path_map.rules:
            plain = None  # no batch form: every URL goes through url()
        return cls(tuple(prefixes), path_map, tuple(sorted(markers)), legacy, plain)

    def rewrite_many(self, values: list[str], public_base: str) -> list[str]:
        """``url()`` of each value, in bulk when that is provably the same."""
        plain = self.batch_plain
        if (
            plain is None
            or "\n" in public_base
            or "\\" in public_base
            or public_base.startswith(self.prefixes)
        ):
            return [self.url(value, public_base) for value in values]
        # Each value starts right after a newline, so the patterns can lead with a literal.
        joined = "\n" + "\n".join(values)
        if joined.count("\n") != len(values):  # a value held a newline of its own
            return [self.url(value, public_base) for value in values]
        if self.batch_legacy is not None and self.path_map.swap is not None:
            joined = self.batch_legacy.sub("\n" + public_base + self.path_map.swap[1], joined)
        joined = plain.sub("\n" + public_base, joined)
        result = joined[1:].split("\n")
        # A bare origin or an origin followed by "?" was left alone above; url() settles it.
        if any("\n" + prefix in joined for prefix in self.prefixes):
            for index, value in enumerate(result):
                if value.startswith(self.prefixes):
                    result[index] = self.url(value, public_base)
        return result

    def url(self, value: Any, public_base: str) -> Any:
        """``value`` mapped to the public base when it is one of the upstream's URLs."""
        if value.__class__ is not str:
            return value
        for prefix in self.prefixes:
            if value.startswith(prefix):
                rest = value[len(prefix) :]
                if rest[:1] not in ("/", "?", ""):
                    continue  # "https://api.twilio.com.evil" is not the upstream
                mark = rest.find("?")
                if mark < 0:
                    return public_base + self.path_map.map(rest or "/")
                return public_base + self.path_map.map(rest[:mark] or "/") + rest[mark:]
        return value


_PATH_TOKEN = re.compile(r"/[A-Za-z0-9_.~%\-/]+")


def rewrite_error_message(body: bytes, content_type: str, rewriter: LinkRewriter) -> bytes | None:
    """A deprecated route's error body with the upstream paths in ``message`` shown as the
    legacy paths the client called ("/v1/InstalledAddOns/XE..." -> "/marketplace/..."), or
    ``None`` when there is nothing to change. Nothing else in the body is touched."""
    swap = rewriter.path_map.swap
    if swap is None or not body or not is_json(content_type) or swap[0].encode() not in body:
        return None
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    message = data.get("message") if isinstance(data, dict) else None
    if not isinstance(message, str):
        return None
    mapped = _PATH_TOKEN.sub(lambda token: rewriter.path_map.map(token.group(0)), message)
    if mapped == message:
        return None
    data["message"] = mapped
    return orjson.dumps(data)


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
    if not _has_long_number(body):
        try:
            return orjson.loads(body), False
        except orjson.JSONDecodeError:
            pass  # maybe a lone surrogate escape, which orjson refuses and JSON allows
    try:
        return json.loads(body, parse_constant=_refuse, parse_float=_finite_float), True
    except (ValueError, RecursionError) as exc:
        raise UpstreamBadResponse(
            "The upstream sent a JSON content type with an invalid body", kind="invalid_json"
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
    holders: list[dict[str, Any]] = []
    keys: list[str] = []
    values: list[str] = []
    _collect_record(data, holders, keys, values)
    for key in _TOP_PAGE_KEYS:
        value = data.get(key)
        if value.__class__ is str:
            holders.append(data)
            keys.append(key)
            values.append(value)
    meta = data.get("meta")
    if isinstance(meta, dict):
        for key in _META_URL_KEYS:
            value = meta.get(key)
            if value.__class__ is str:
                holders.append(meta)
                keys.append(key)
                values.append(value)
        _normalize_meta(meta, data)
    for value in data.values():
        if value.__class__ is list:
            for item in value:
                if item.__class__ is dict:
                    _collect_record(item, holders, keys, values)
    if not values:
        return
    for holder, key, new_value in zip(
        holders, keys, rewriter.rewrite_many(values, public_base), strict=True
    ):
        holder[key] = new_value


def _collect_record(
    record: dict[str, Any], holders: list[dict[str, Any]], keys: list[str], values: list[str]
) -> None:
    """Note every URL-bearing string field of one record (``url``, ``uri``, ``links.*``, ...)."""
    # Unrolled over the four field names: this runs for every record of every page.
    value = record.get("url")
    if value.__class__ is str:
        holders.append(record)
        keys.append("url")
        values.append(value)
    value = record.get("uri")
    if value.__class__ is str:
        holders.append(record)
        keys.append("uri")
        values.append(value)
    for links in (record.get("links"), record.get("subresource_uris")):
        if links.__class__ is dict:
            for name, link in links.items():
                if link.__class__ is str:
                    holders.append(links)
                    keys.append(name)
                    values.append(link)


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
