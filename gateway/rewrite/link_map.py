"""Which URL a response field gets: upstream URL -> the gateway's URL (pure; no I/O).

A value is one of the upstream's URLs when it starts with one of the upstream's URL prefixes
followed by ``/``, ``?`` or nothing (``https://api.twilio.com.evil`` is not the upstream);
the longest such prefix wins. Its path (up to the first ``?``; an empty path is ``/``) is
mapped back to the legacy path when it fully matches a deprecated rule's target template, and
kept otherwise; the query after it is kept byte for byte.
"""

from __future__ import annotations

import importlib
import os
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from gateway.config.rules import Rule
from gateway.config.template_regex import segment_regex

# The optional compiled accelerator (gateway/rewrite/_rewrite_accel.c), built where a C compiler was
# available at install time. MARKETPLACE_GATEWAY_NO_EXTENSIONS=1 skips building it and, at
# run time, using it: everything then runs in pure Python (the test suite runs both ways).
NO_EXTENSIONS_ENV = "MARKETPLACE_GATEWAY_NO_EXTENSIONS"
NOT_OBJECT, NEEDS_PYTHON = 1, 2  # the accelerator's answers besides bytes and None


def load_accelerator() -> Any:
    """The compiled module, or ``None`` when it is not built or switched off."""
    if os.environ.get(NO_EXTENSIONS_ENV):
        return None
    try:
        return importlib.import_module("gateway.rewrite._rewrite_accel")
    except ImportError:
        return None


ACCELERATOR = load_accelerator()

# A rule template as the accelerator takes it: literal pieces and ``None`` for a placeholder.
TemplatePieces = tuple[bytes | None, ...]


@dataclass(frozen=True, slots=True)
class PathMap:
    """Upstream path -> public path for one family of routes.

    ``rules`` are the deprecated rules of one upstream; a path that fully matches one of
    their targets becomes that rule's legacy path. Any other path is kept (the gateway also
    serves the upstream's own paths, so the URL still leads back through it). When every
    rule's ``from`` and ``to`` differ only in their first segment (``/marketplace`` vs
    ``/v1``), a match is mapped by swapping that prefix (``swap``).
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

    def templates(self) -> tuple[TemplatePieces, ...]:
        """The rules' target templates as literal pieces and placeholders (``None``)."""
        return tuple(
            tuple(None if is_param else text.encode() for is_param, text in rule.target.pieces)
            for rule in self.rules
        )

    def tails_regex(self) -> str:
        """Regex text matching exactly the paths after the swap prefix that :meth:`map`
        maps, factored by common prefixes (``/A``, ``/A/{x}``, ``/A/{x}/E`` ...)."""
        assert self.swap is not None
        target = self.swap[0]
        return _trie_regex([rule.target.text[len(target) :].split("/")[1:] for rule in self.rules])


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


def _trie_regex(paths: Sequence[Sequence[str]]) -> str:
    children: dict[str, list[Sequence[str]]] = {}  # by segment regex: names don't matter
    ends_here = False
    for path in paths:
        if not path:
            ends_here = True
        else:
            # A placeholder matches what routing accepts, in time linear in the segment.
            children.setdefault(segment_regex(path[0], names=False), []).append(path[1:])
    if not children:
        return ""
    branches = ["/" + segment + _trie_regex(rest) for segment, rest in children.items()]
    body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    return f"(?:{body})?" if ends_here else body


def _unnamed(pattern: str) -> str:
    return re.sub(r"\(\?P<[A-Za-z_][A-Za-z0-9_]*>", "(?:", pattern)


def json_string_content(text: str) -> bytes:
    """``text`` as the inside of a JSON string (orjson's escaping, without the quotes)."""
    return orjson.dumps(text)[1:-1]


@dataclass(frozen=True, slots=True)
class LinkRewriter:
    """Everything needed to rewrite the URLs of one route's responses."""

    prefixes: tuple[str, ...]  # upstream URL prefixes, longest first
    path_map: PathMap
    # Byte strings of which at least one occurs in any body that can hold an upstream URL,
    # unless the body escapes an ASCII character as \u00XX (see may_hold_upstream_urls).
    markers: tuple[bytes, ...] = ()
    prefix_bytes: tuple[bytes, ...] = ()  # the prefixes as bytes, longest first
    compiled: Any = None  # the accelerator's Rewriter for this configuration
    # Parse-and-prove's byte substitutions (see Substitutions), None where they cannot be
    # exact: rules that are not a prefix swap, or one prefix nested in another.
    substitutions: Substitutions | None = None
    # Held by a large rewrite (response_body): one at a time, so that the event loop competes
    # with one worker for the GIL (pure Python) or for a core (compiled) at most.
    large_body_lock: threading.Lock = field(
        default_factory=threading.Lock, compare=False, repr=False
    )

    @classmethod
    def build(
        cls,
        prefixes: Sequence[str],
        deprecated_rules: Sequence[Rule],
        *,
        accelerate: bool | None = None,
    ) -> LinkRewriter:
        """``accelerate``: use the compiled accelerator (default: when it is available)."""
        for prefix in prefixes:  # as written in JSON without escapes, and ASCII (see markers)
            if not (prefix.isascii() and prefix.isprintable()) or '"' in prefix or "\\" in prefix:
                raise ValueError(f"not usable as an upstream URL prefix: {prefix!r}")
        ordered = tuple(sorted(set(prefixes), key=len, reverse=True))
        as_bytes = tuple(p.encode() for p in ordered)
        nested = any(q != p and p.startswith(q) for p in as_bytes for q in as_bytes)
        # The longest run without "/" of each prefix: an upstream URL holds it literally
        # unless one of its characters is \u-escaped ("/" may also be written "\/").
        markers = tuple(sorted({max(p.split(b"/"), key=len) for p in as_bytes}))
        path_map = PathMap.build(deprecated_rules)
        swap = None if path_map.swap is None else tuple(s.encode() for s in path_map.swap)
        exact_swap = not path_map.rules or swap is not None
        compiled = None
        module = ACCELERATOR if accelerate is None else (load_accelerator() if accelerate else None)
        if accelerate and module is None:
            raise RuntimeError("the compiled accelerator is not available")
        if module is not None and exact_swap:
            target, source = swap if swap is not None else (None, None)
            compiled = module.Rewriter(as_bytes, target, source, path_map.templates())
        # Parse-and-prove counts strings per prefix: exact only when no prefix holds another.
        subs = Substitutions.build(as_bytes, path_map) if exact_swap and not nested else None
        return cls(ordered, path_map, markers, as_bytes, compiled, subs)

    def may_hold_upstream_urls(self, body: bytes) -> bool:
        """False only when no JSON string in ``body`` can start with an upstream prefix."""
        for marker in self.markers:
            if marker in body:
                return True
        return b"\\u00" in body and _ASCII_ESCAPE.search(body) is not None

    def url(self, value: str, public_base: str) -> str:
        """``value`` mapped to the public base when it is one of the upstream's URLs."""
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


# A \u escape of a printable ASCII character (U+0020..U+007F): the only escapes that can hide
# an upstream prefix's characters ("/" aside, whose escape "\/" leaves the marker intact).
_ASCII_ESCAPE = re.compile(rb"\\u00[2-7][0-9A-Fa-f]")


@dataclass(frozen=True, slots=True)
class PrefixSubstitutions:
    """One prefix's regexes (each starts with a literal, which the regex engine searches for
    fast): ``legacy`` maps a swappable deprecated path (its ``/v1`` becomes ``/marketplace``),
    ``plain`` any other URL with a path, ``bare`` the origin alone or followed by ``?``."""

    quoted: bytes  # '"' + prefix
    slashed: bytes  # '"' + prefix + "/"
    legacy: re.Pattern[bytes] | None
    plain: re.Pattern[bytes]
    bare: re.Pattern[bytes]


@dataclass(frozen=True, slots=True)
class Substitutions:
    """Parse-and-prove's rewrite: once every string that starts with an upstream prefix is
    known to be a URL field, the prefixes are replaced in the bytes by C-level regexes. They
    assume URL strings without escapes, which ``unescaped`` checks."""

    prefixes: tuple[PrefixSubstitutions, ...]
    swap_source: bytes
    clean: re.Pattern[bytes]  # a whole URL string without any escape
    flexible: re.Pattern[bytes]  # a string starting with a prefix in any escaped spelling

    @classmethod
    def build(cls, prefixes: tuple[bytes, ...], path_map: PathMap) -> Substitutions:
        lookahead, source = None, b""
        if path_map.swap is not None:
            target, source_text = path_map.swap
            source = source_text.encode()
            lookahead = re.escape(target.encode()) + b"(?=" + path_map.tails_regex().encode()
            lookahead += b'[?"])'
        subs = []
        for prefix in prefixes:
            quoted = b'"' + re.escape(prefix)
            subs.append(
                PrefixSubstitutions(
                    b'"' + prefix,
                    b'"' + prefix + b"/",
                    None if lookahead is None else re.compile(quoted + lookahead),
                    re.compile(quoted + b"(?=/)"),
                    re.compile(quoted + b'(?=[?"])'),
                )
            )
        origin = b"(?:" + b"|".join(re.escape(p) for p in prefixes) + b")"
        return cls(
            tuple(subs),
            source,
            re.compile(b'"' + origin + rb'[^"\\]*"'),
            re.compile(b'"(?:' + b"|".join(_flexible(p) for p in prefixes) + b")"),
        )

    def count(self, body: bytes) -> list[int]:
        """How many strings start with each prefix (exactly, given ``unescaped``)."""
        return [body.count(subs.quoted) for subs in self.prefixes]

    def unescaped(self, body: bytes, found: int) -> bool:
        """For a body with backslashes: do the ``found`` strings starting with a prefix
        start with it literally, hold no escape, and open with a real (unescaped) quote?"""
        if any(b"\\" + subs.quoted in body for subs in self.prefixes):
            return False
        return len(self.clean.findall(body)) == found == len(self.flexible.findall(body))

    def apply(self, body: bytes, public: bytes, counts: list[int]) -> bytes:
        template = b'"' + public.replace(b"\\", b"\\\\")
        for subs, count in zip(self.prefixes, counts, strict=True):
            if not count:
                continue
            slashed = body.count(subs.slashed)
            if subs.legacy is not None:
                body = subs.legacy.sub(template + self.swap_source, body)
            body = subs.plain.sub(template, body)
            if slashed != count:  # a bare origin, an origin and a query, or a lookalike
                body = subs.bare.sub(template + b"/", body)
        return body


def _flexible(prefix: bytes) -> bytes:
    """Regex text for ``prefix`` with any character \\u-escaped and "/" also as "\\/"."""
    parts = []
    for code in prefix:
        hex_digits = b"".join(
            b"[" + bytes([d, d ^ 0x20]) + b"]" if d >= 0x61 else bytes([d])
            for d in f"{code:04x}".encode()
        )
        options = [re.escape(bytes([code])), rb"\\u" + hex_digits]
        if code == 0x2F:
            options.append(rb"\\/")
        parts.append(b"(?:" + b"|".join(options) + b")")
    return b"".join(parts)
