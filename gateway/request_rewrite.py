"""Build the upstream request from a route match (pure; no I/O)."""

from __future__ import annotations

from multidict import CIMultiDict, CIMultiDictProxy

from gateway.models import RouteMatch, UpstreamRequest
from gateway.serving.headers import outbound


def upstream_url(match: RouteMatch[object], upstream_base: str) -> str:
    """Upstream base + the rule's target path with the raw parameter values + raw query."""
    path = match.rule.target.render(match.params)
    if match.query:
        return f"{upstream_base}{path}?{match.query}"
    return upstream_base + path


def build(
    match: RouteMatch[object],
    upstream_base: str,
    method: str,
    headers: CIMultiDictProxy[str] | CIMultiDict[str],
    body: bytes,
) -> UpstreamRequest:
    """The request to send: URL, filtered headers, and the body byte for byte."""
    return UpstreamRequest(
        method=method,
        url=upstream_url(match, upstream_base),
        headers=outbound(headers),
        body=body,
    )
