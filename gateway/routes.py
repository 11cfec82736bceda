"""Compiled routes: one frozen object per rule, built once at start-up from the rules and the
config.

A :class:`Route` holds everything a request on that rule needs: the rule, its upstream, its
response rewriter, its deprecation headers and sunset, and its bound metric children. What a
deprecated call gets (its headers, or a refusal) is decided by
:meth:`gateway.migration.policy.Policy.decide` from the route's deprecation headers. The
:class:`~gateway.routing.Router` hands it back with each match. Compiling starts with
:func:`gateway.config.validation.validate`, the check ``gateway rules check`` runs too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.config.rules import Rule, RuleSet
from gateway.config.settings import GatewayConfig
from gateway.config.upstreams import Upstream
from gateway.config.validation import validate
from gateway.migration.deprecation import DeprecationHeaders, successor_url
from gateway.rewrite.link_map import LinkRewriter
from gateway.routing import Router
from gateway.telemetry.metrics import RouteMetrics


@dataclass(frozen=True, slots=True)
class Route:
    """One rule, compiled: what forwarding, rewriting, headers and metrics need for it."""

    rule: Rule
    upstream: Upstream
    rewriter: LinkRewriter
    deprecation: DeprecationHeaders | None  # None for a rule that is not deprecated
    sunset: float | None  # Unix seconds, deprecated rules only
    metrics: RouteMetrics

    @property
    def name(self) -> str:
        return self.rule.name

    @property
    def deprecated(self) -> bool:
        return self.rule.deprecated

    def successor_url(self, params: Mapping[str, str]) -> str:
        """The v1 URL of the resource a request on this route addressed."""
        return successor_url(self.rule.target, params, self.upstream.successor_origin)


def compile_routes(config: GatewayConfig, ruleset: RuleSet) -> Router[Route]:
    """Validate ``ruleset`` and compile one :class:`Route` per rule, behind a router."""
    policies = validate(ruleset, config)
    upstreams = config.upstreams
    rewriters: dict[tuple[str, bool], LinkRewriter] = {}  # one per upstream and kind
    routes: list[tuple[Rule, Route]] = []
    for rule in ruleset.rules:
        upstream = upstreams[rule.upstream]
        key = (rule.upstream, rule.deprecated)
        if key not in rewriters:
            family = [r for r in ruleset.rules if r.deprecated and r.upstream == rule.upstream]
            rewriters[key] = LinkRewriter.build(
                upstream.url_prefixes, family if rule.deprecated else []
            )
        policy = policies.get(rule.name)
        route = Route(
            rule=rule,
            upstream=upstream,
            rewriter=rewriters[key],
            deprecation=DeprecationHeaders.for_policy(policy) if policy else None,
            sunset=policy.sunset.timestamp() if policy else None,
            metrics=RouteMetrics(rule.name, rule.deprecated),
        )
        routes.append((rule, route))
    return Router.build(routes)


def routes_of(router: Router[Route]) -> list[Route]:
    """Every route of ``router``, in rule order within each first path segment."""
    found = [route for bucket in router.buckets.values() for _, route in bucket]
    return found + [route for _, route in router.anywhere]
