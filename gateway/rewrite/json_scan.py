"""Where a response's URL fields are, as byte spans of the original JSON (pure; exact).

The exact path of the response rewrite: it reads any valid JSON text, however deep its
nesting and however large its numbers (nothing is converted), and rejects anything else.
Valid means RFC 8259 JSON in strict UTF-8 with an optional UTF-8 byte order mark; a ``\\u``
escape of a lone surrogate is valid (the grammar allows it), a raw encoded surrogate is not.

A URL field is a string value at one of these places, every occurrence counting (a key that
appears twice is two fields): ``url``, ``uri``, ``first_page_uri``, ``previous_page_uri``,
``next_page_uri`` and every member of ``links`` / ``subresource_uris`` of the top-level
object; ``url``, ``first_page_url``, ``previous_page_url``, ``next_page_url`` of its ``meta``
object; and ``url``, ``uri``, every member of ``links`` / ``subresource_uris`` of each object
directly inside an array that is a member of the top-level object (the records of a page).
Nothing deeper, and nothing in any other member, is a field.

Structure is read with the standard library's C scanner over a Latin-1 view of the bytes (so
string positions are byte positions); subtrees that cannot hold a field are skipped with its
``scan_once``, with hooks that keep numbers as text. A large body is scanned in a worker thread
(response_body), so the scan hands the GIL over now and then (``YIELD_EVERY`` records, UTF-8
checked a megabyte at a time): the event loop thread then waits about a millisecond for it,
not a switch interval (5 ms) each time it comes back from a system call.
"""

from __future__ import annotations

import codecs
import json
import json.scanner
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

OBJECT, ARRAY, STRING, SCALAR = "object", "array", "string", "scalar"

TOP_FIELDS = frozenset({"url", "uri", "first_page_uri", "previous_page_uri", "next_page_uri"})
RECORD_FIELDS = frozenset({"url", "uri"})
META_FIELDS = frozenset({"url", "first_page_url", "previous_page_url", "next_page_url"})
LINK_MAPS = frozenset({"links", "subresource_uris"})
BOM = b"\xef\xbb\xbf"

Span = tuple[int, int]  # [start, end): from the opening quote to after the closing one


class InvalidJson(ValueError):
    """The body is not a JSON text."""


@dataclass(slots=True)
class Member:
    """One member of an object: its key (decoded) and the kind and span of its value."""

    key: str
    key_span: Span
    kind: str
    start: int
    end: int


@dataclass(slots=True)
class MetaObject:
    members: list[Member]
    close: int  # offset of its closing brace


@dataclass(slots=True)
class Scan:
    fields: list[Span] = field(default_factory=list)  # every URL field, in document order
    members: list[Member] = field(default_factory=list)  # of the top-level object
    meta: MetaObject | None = None  # the value of the last top-level "meta", when an object


def _refuse(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")


# Numbers stay text (no precision limit, no int digit limit); NaN and Infinity are refused.
_DECODER = json.JSONDecoder(parse_int=str, parse_float=str, parse_constant=_refuse)
_scanstring: Callable[[str, int, bool], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]
YIELD_EVERY = 64  # records between two voluntary hand-overs of the GIL
_UTF8_SLICE = 1 << 20
_WS = re.compile(r"[ \t\n\r]*")
_ws = _WS.match


def scan(body: bytes) -> Scan | None:
    """The URL fields and top-level members of ``body``; ``None`` when it is valid JSON but
    not an object. Raises :class:`InvalidJson` otherwise."""
    _check_utf8(body)
    text = body.decode("latin-1")
    start = 3 if body.startswith(BOM) else 0
    walker = _Walker(text)
    try:
        at = _end_of_ws(text, start)
        if text[at : at + 1] == "{":
            end = walker.object(at, walker.top_member)
            result: Scan | None = walker.result
        else:
            end = walker.skip(at)
            result = None
        end = _end_of_ws(text, end)
    except (ValueError, StopIteration) as exc:  # JSONDecodeError is a ValueError
        raise InvalidJson(str(exc) or "no JSON value where one was expected") from exc
    if end != len(text):
        raise InvalidJson(f"extra data at byte {end}")
    return result


def _check_utf8(body: bytes) -> None:
    """Strict UTF-8 (no encoded surrogates), checked a slice at a time."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(body)
    try:
        for start in range(0, len(body), _UTF8_SLICE):
            decoder.decode(view[start : start + _UTF8_SLICE], final=False)
            if len(body) > _UTF8_SLICE:
                time.sleep(0)  # let another thread have the GIL
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        raise InvalidJson("not UTF-8") from exc


def _end_of_ws(text: str, at: int) -> int:
    found = _ws(text, at)
    assert found is not None  # "*" always matches
    return found.end()


def _expect(text: str, at: int, char: str) -> int:
    if text[at : at + 1] != char:
        raise InvalidJson(f"expected {char!r} at byte {at}")
    return at + 1


class _Walker:
    """A recursive descent over the few levels that can hold fields."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.result = Scan()
        self.records = 0
        self.scan_once: Callable[[str, int], tuple[Any, int]] = json.scanner.make_scanner(
            _DECODER  # type: ignore[arg-type]  # typeshed types the C class, not the factory
        )

    def object(self, at: int, on_member: Callable[[str, Span, int], int]) -> int:
        """Walk the object at ``at`` (its "{"), calling ``on_member`` for each member's
        value; returns the offset after its "}"."""
        text = self.text
        at = _end_of_ws(text, at + 1)
        if text[at : at + 1] == "}":
            return at + 1
        while True:
            key_start = _expect(text, at, '"') - 1
            key, key_end = _scanstring(text, key_start + 1, True)
            at = _end_of_ws(text, _expect(text, _end_of_ws(text, key_end), ":"))
            at = _end_of_ws(text, on_member(key, (key_start, key_end), at))
            if text[at : at + 1] == ",":
                at = _end_of_ws(text, at + 1)
            elif text[at : at + 1] == "}":
                return at + 1
            else:
                raise InvalidJson(f"expected ',' or '}}' at byte {at}")

    def array(self, at: int, on_element: Callable[[int], int]) -> int:
        text = self.text
        at = _end_of_ws(text, at + 1)
        if text[at : at + 1] == "]":
            return at + 1
        while True:
            at = _end_of_ws(text, on_element(at))
            if text[at : at + 1] == ",":
                at = _end_of_ws(text, at + 1)
            elif text[at : at + 1] == "]":
                return at + 1
            else:
                raise InvalidJson(f"expected ',' or ']' at byte {at}")

    def string(self, at: int) -> int:
        return _scanstring(self.text, at + 1, True)[1]

    def skip(self, at: int) -> int:
        """The end of the value at ``at``, which is checked but not kept."""
        char = self.text[at : at + 1]
        if char == '"':
            return self.string(at)
        try:
            return self.scan_once(self.text, at)[1]
        except RecursionError:
            return self.skip_deep(at)

    def skip_deep(self, at: int) -> int:
        """``skip`` without recursion, for nesting deeper than the interpreter's stack."""
        text = self.text
        closers: list[str] = []
        while True:
            at = _end_of_ws(text, at)
            char = text[at : at + 1]
            if char in ("{", "["):
                inner = _end_of_ws(text, at + 1)
                closer = "}" if char == "{" else "]"
                if text[inner : inner + 1] == closer:
                    at = inner + 1
                else:
                    closers.append(closer)
                    at = self._key(inner) if char == "{" else inner
                    continue
            elif char == '"':
                at = self.string(at)
            else:
                at = self.scan_once(text, at)[1]  # a number or a literal: no nesting
            while True:  # after a value: close containers, or go on to the next value
                if not closers:
                    return at
                at = _end_of_ws(text, at)
                char = text[at : at + 1]
                if char == closers[-1]:
                    closers.pop()
                    at += 1
                elif char == ",":
                    at = at + 1 if closers[-1] == "]" else self._key(_end_of_ws(text, at + 1))
                    break
                else:
                    raise InvalidJson(f"unexpected {char!r} at byte {at}")

    def _key(self, at: int) -> int:
        """After a key and its colon."""
        at = self.string(_expect(self.text, at, '"') - 1)
        return _expect(self.text, _end_of_ws(self.text, at), ":")

    def _kind(self, at: int) -> str:
        char = self.text[at : at + 1]
        return {"{": OBJECT, "[": ARRAY, '"': STRING}.get(char, SCALAR)

    def top_member(self, key: str, key_span: Span, at: int) -> int:
        kind = self._kind(at)
        meta: MetaObject | None = None
        if kind == STRING:
            end = self.string(at)
            if key in TOP_FIELDS:
                self.result.fields.append((at, end))
        elif kind == ARRAY:
            end = self.array(at, self.record_or_other)
        elif kind == OBJECT and key in LINK_MAPS:
            end = self.object(at, self.link_member)
        elif kind == OBJECT and key == "meta":
            meta = MetaObject([], 0)
            end = self.object(at, lambda k, s, a: self.meta_member(meta, k, s, a))
            meta.close = end - 1
        else:
            end = self.skip(at)
        self.result.members.append(Member(key, key_span, kind, at, end))
        if key == "meta":
            self.result.meta = meta
        return end

    def link_member(self, key: str, key_span: Span, at: int) -> int:
        if self.text[at : at + 1] == '"':
            end = self.string(at)
            self.result.fields.append((at, end))
            return end
        return self.skip(at)

    def meta_member(self, meta: MetaObject, key: str, key_span: Span, at: int) -> int:
        kind = self._kind(at)
        if kind == STRING:
            end = self.string(at)
            if key in META_FIELDS:
                self.result.fields.append((at, end))
        else:
            end = self.skip(at)
        meta.members.append(Member(key, key_span, kind, at, end))
        return end

    def record_or_other(self, at: int) -> int:
        self.records += 1
        if self.records % YIELD_EVERY == 0:
            time.sleep(0)  # let another thread have the GIL (see the module docstring)
        if self.text[at : at + 1] == "{":
            return self.object(at, self.record_member)
        return self.skip(at)

    def record_member(self, key: str, key_span: Span, at: int) -> int:
        char = self.text[at : at + 1]
        if char == '"':
            end = self.string(at)
            if key in RECORD_FIELDS:
                self.result.fields.append((at, end))
            return end
        if char == "{" and key in LINK_MAPS:
            return self.object(at, self.link_member)
        return self.skip(at)


def decoded(body: bytes, span: Span, latin: str) -> str:
    """The true value of a string token that was decoded from the Latin-1 view as ``latin``."""
    raw = body[span[0] : span[1]]
    if raw.isascii():
        return latin
    value = json.loads(raw)
    assert isinstance(value, str)
    return value
