"""Match a request's method and raw path against the rules (pure; no I/O).

Matching happens on the raw request target, so ``%2F`` never turns into a path separator.
Targets that could reach a different resource once decoded (dot segments, backslashes, empty
segments, encoded slashes or dots) are refused before any rule is tried.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Generic, TypeVar

from gateway.config.rules import Rule, RuleSet
from gateway.errors import BadRequest, MethodNotAllowed, RouteNotFound
from gateway.models import RouteMatch

T = TypeVar("T")

# %-escapes that decode to "/", "\", "." or NUL, and raw characters no SID or name holds.
_FORBIDDEN_IN_PATH = re.compile(r"%(?:2[fFeE]|5[cC]|00)|\\|//|/\.\.?(?:/|$)")


@dataclass(frozen=True, slots=True)
class Router(Generic[T]):
    """Rules grouped by their first path segment, for a short scan per request; each rule
    carries what a match hands back (the rule itself, or the route compiled from it).

    Rules whose first segment holds a placeholder (``/{Version}/...``) fit no bucket; they are
    tried after the bucket's rules, for every path.
    """

    buckets: Mapping[str, tuple[tuple[Rule, T], ...]]
    anywhere: tuple[tuple[Rule, T], ...] = ()

    @classmethod
    def build(cls, entries: Iterable[tuple[Rule, T]]) -> Router[T]:
        """A router over ``(rule, what a match returns)`` pairs, in rule order."""
        buckets: dict[str, list[tuple[Rule, T]]] = {}
        anywhere: list[tuple[Rule, T]] = []
        for entry in entries:
            first = _first_segment(entry[0].source.text)
            if "{" in first:
                anywhere.append(entry)
            else:
                buckets.setdefault(first, []).append(entry)
        return cls({key: tuple(found) for key, found in buckets.items()}, tuple(anywhere))

    @staticmethod
    def from_ruleset(ruleset: RuleSet) -> Router[Rule]:
        """A router whose matches carry the bare rules (for tools and tests)."""
        return Router[Rule].build((rule, rule) for rule in ruleset.rules)

    def match(self, method: str, target: str) -> RouteMatch[T]:
        """The route for ``method`` and the raw request ``target`` (path and query).

        HEAD matches the rules that allow GET. Raises :class:`BadRequest` for a target that is
        not a plain path, :class:`RouteNotFound` when no rule's path matches or the path is
        refused, and :class:`MethodNotAllowed` (with ``Allow``, HEAD listed beside GET) when
        only the method is wrong.
        """
        if not target.startswith("/"):
            raise BadRequest(
                "Absolute-form and other non-path request targets are not accepted; "
                "send the path only"
            )
        path, _, query = target.partition("?")
        if _FORBIDDEN_IN_PATH.search(path):
            raise RouteNotFound(f"The requested resource {_printable(path)} was not found")
        wanted = _as_get(method)
        allowed: set[str] = set()
        candidates = self.buckets.get(_first_segment(path), ())
        if self.anywhere:
            candidates = (*candidates, *self.anywhere)
        for rule, route in candidates:
            found = rule.source.regex.fullmatch(path)
            if found is None:
                continue
            params = found.groupdict()
            if rule.patterns and not rule.accepts(params):
                continue  # a value the spec's pattern refuses names no resource: 404
            if wanted in rule.methods:
                return RouteMatch(rule, params, query, route)
            allowed |= rule.methods
        if allowed:
            allow = ", ".join(sorted(allowed | ({HEAD} if "GET" in allowed else set())))
            raise MethodNotAllowed(
                f"Method {method} is not allowed on {_printable(path)}; allowed: {allow}",
                headers={"Allow": allow},
            )
        raise RouteNotFound(f"The requested resource {_printable(path)} was not found")


HEAD = "HEAD"


def _as_get(method: str) -> str:
    """HEAD is answered as the GET would be, without the body (RFC 9110, 9.3.2): it matches
    every rule that allows GET, and no rule lists it."""
    return "GET" if method == HEAD else method


def forwarded_method(method: str) -> str:
    """The method sent upstream for a client's ``method``: GET for HEAD. The gateway rewrites
    bodies, so only the upstream's GET answer gives the headers (Content-Length above all) that
    the client's GET would get; the body is then left out by the server."""
    return _as_get(method)


def _first_segment(path: str) -> str:
    return path[1:].split("/", 1)[0]


def _printable(path: str) -> str:
    """A path safe to echo in a message: capped, without control characters."""
    cleaned = "".join(ch if ch.isprintable() else "?" for ch in path[:200])
    return cleaned + ("..." if len(path) > 200 else "")
