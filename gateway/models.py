"""Frozen values passed between the steps of one request."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from multidict import CIMultiDict, CIMultiDictProxy

from gateway.config.rules import Rule

T = TypeVar("T", covariant=True)


@dataclass(frozen=True, slots=True)
class RouteMatch(Generic[T]):
    """The rule a request matched, its raw (still %-encoded) path parameters and query, and
    what the router carries for that rule (the compiled route, or the rule itself)."""

    rule: Rule
    params: Mapping[str, str]
    query: str  # raw query string without "?", "" when absent
    route: T


@dataclass(frozen=True, slots=True)
class UpstreamRequest:
    """Exactly what is sent upstream."""

    method: str
    url: str  # absolute and already encoded; sent as is
    headers: CIMultiDict[str]
    body: bytes


@dataclass(frozen=True, slots=True)
class UpstreamResponse:
    """What came back: status, headers, the body as sent (still in its content coding), and
    how long it took."""

    status: int
    headers: CIMultiDictProxy[str]
    body: bytes
    seconds: float
