"""Twilio-style paging: ``PageSize`` / ``Page`` / ``PageToken`` in, paging links out.

``PageSize`` is 1..1000 (default 50); ``Page`` is the 0-based page index ("client state
only"); ``PageToken`` is opaque: ``"PT"`` + urlsafe base64 (padding kept) of
``"<offset>"`` or ``"<offset>:<anchor sid>"``. A next-page token carries the sid of the last
record served, so deleting earlier records between requests does not skip anything.
Token payloads are padded so that the base64 text always ends in ``=``: clients and proxies
that mangle ``=`` inside query strings are caught at once.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .errors import invalid_page_token, invalid_parameter

T = TypeVar("T")

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
MAX_PAGE = 2**31 - 1
"""Highest ``Page`` accepted: offsets (``Page * PageSize``) stay far inside 64 bits, which is
what the JSON encoder can write back in ``meta.page``; anything above is a 400, as Twilio
answers a paging parameter out of range."""
_INTEGER = re.compile(r"-?[0-9]{1,19}")
_PAYLOAD = re.compile(r"(\d{1,9})(?::([A-Z]{2}[0-9a-fA-F]{32}))?;*")


def encode_token(offset: int, anchor: str | None = None) -> str:
    """A PageToken for *offset* (optionally anchored after the record *anchor*)."""
    payload = str(offset) if anchor is None else f"{offset}:{anchor}"
    if len(payload) % 3 == 0:
        payload += ";"  # base64 of a length not divisible by 3 always ends in "="
    return "PT" + base64.urlsafe_b64encode(payload.encode("ascii")).decode("ascii")


def decode_token(token: str) -> tuple[int, str | None]:
    """``(offset, anchor)`` from a PageToken; 400 / 21481 if it was not issued by us."""
    if not token.startswith("PT"):
        raise invalid_page_token()
    try:
        payload = base64.urlsafe_b64decode(token[2:].encode("ascii")).decode("ascii")
    except (binascii.Error, UnicodeError, ValueError):
        raise invalid_page_token() from None
    match = _PAYLOAD.fullmatch(payload)
    if match is None:
        raise invalid_page_token()
    return int(match.group(1)), match.group(2)


def _int_param(query: Mapping[str, str], name: str, low: int, high: int | None) -> int | None:
    raw = query.get(name)
    if raw is None:
        return None
    if _INTEGER.fullmatch(raw) is None:  # int() would take " 5", "1_0" and non-ASCII digits
        if re.fullmatch(r"-?[0-9]+", raw):
            raise invalid_parameter(f"{name} must be {_bounds(low, high)}, got {raw[:40]}")
        raise invalid_parameter(f"{name} must be an integer, got {raw[:40]!r}")
    value = int(raw)
    if value < low or (high is not None and value > high):
        raise invalid_parameter(f"{name} must be {_bounds(low, high)}, got {value}")
    return value


def _bounds(low: int, high: int | None) -> str:
    return f"between {low} and {high}" if high is not None else f">= {low}"


@dataclass(frozen=True, slots=True)
class PageRequest:
    """The paging parameters of one list request."""

    page_size: int
    page: int
    token: str | None
    offset: int
    anchor: str | None


def parse_page_request(query: Mapping[str, str]) -> PageRequest:
    """Validate ``PageSize``, ``Page`` and ``PageToken``; 400 on anything malformed."""
    size = _int_param(query, "PageSize", 1, MAX_PAGE_SIZE) or DEFAULT_PAGE_SIZE
    page = _int_param(query, "Page", 0, MAX_PAGE) or 0
    token = query.get("PageToken")
    if token is not None:
        offset, anchor = decode_token(token)
    else:
        offset, anchor = page * size, None
    return PageRequest(page_size=size, page=page, token=token, offset=offset, anchor=anchor)


@dataclass(frozen=True, slots=True)
class PageResult(Generic[T]):
    """One page of records plus what is needed to link its neighbours."""

    items: list[T]
    request: PageRequest
    offset: int
    next_token: str | None
    previous_token: str | None


def paginate(
    records: Sequence[T], request: PageRequest, sid_of: Callable[[T], str]
) -> PageResult[T]:
    """Cut the page *request* asks for out of *records* (already in list order)."""
    offset = min(request.offset, len(records))
    if request.anchor is not None:
        sids = [sid_of(r) for r in records]
        if request.anchor in sids:
            offset = sids.index(request.anchor) + 1
    items = list(records[offset : offset + request.page_size])
    end = offset + len(items)
    next_token = encode_token(end, sid_of(items[-1])) if items and end < len(records) else None
    previous_token = None
    if offset > 0:
        previous_token = encode_token(max(offset - request.page_size, 0))
    return PageResult(items, request, offset, next_token, previous_token)


def _query(size: int, page: int, token: str | None) -> str:
    query = f"?PageSize={size}&Page={page}"
    return query + f"&PageToken={token}" if token else query


def _links(path: str, result: PageResult[Any]) -> tuple[str, str, str | None, str | None]:
    req = result.request
    first = path + _query(req.page_size, 0, None)
    this = path + _query(req.page_size, req.page, req.token)
    nxt = (
        path + _query(req.page_size, req.page + 1, result.next_token) if result.next_token else None
    )
    prev = None
    if result.previous_token is not None:
        prev = path + _query(req.page_size, max(req.page - 1, 0), result.previous_token)
    return first, this, prev, nxt


def v1_list(
    base_url: str, path: str, key: str, result: PageResult[Any], records: list[Any]
) -> dict[str, Any]:
    """A Marketplace v1 list body: ``{key: records, "meta": {...}}`` with absolute URLs."""
    first, this, prev, nxt = (base_url + link if link else None for link in _links(path, result))
    meta = {
        "page": result.request.page,
        "page_size": result.request.page_size,
        "first_page_url": first,
        "previous_page_url": prev,
        "url": this,
        "next_page_url": nxt,
        "key": key,
    }
    return {key: records, "meta": meta}


def api2010_list(
    path: str, key: str, result: PageResult[Any], records: list[Any]
) -> dict[str, Any]:
    """A 2010 API list body: top-level paging keys with relative URIs."""
    first, this, prev, nxt = _links(path, result)
    return {
        key: records,
        "page": result.request.page,
        "page_size": result.request.page_size,
        "start": result.offset,
        "end": result.offset + max(len(records) - 1, 0),
        "uri": this,
        "first_page_uri": first,
        "previous_page_uri": prev,
        "next_page_uri": nxt,
    }
