"""The one validation of a rule set against a config.

``gateway serve`` (before any worker starts), :func:`gateway.routes.compile_routes` (in every
worker) and ``gateway rules check`` all call :func:`validate`, so a rule set that passes the
check starts. It imports no metrics, so the ``--workers`` supervisor can run it.
"""

from __future__ import annotations

from gateway.config.policy import DeprecationPolicy
from gateway.config.rules import RuleError, RuleSet
from gateway.config.settings import GatewayConfig


def validate(ruleset: RuleSet, config: GatewayConfig) -> dict[str, DeprecationPolicy]:
    """Check ``ruleset`` against ``config``; the deprecation policy of each deprecated rule.

    Raises :class:`RuleError` naming the file, the rule and the field: an upstream the config
    has no address for, or a rule's own dates that contradict the configured ones.
    """
    upstreams = config.upstreams
    policies: dict[str, DeprecationPolicy] = {}
    for rule in ruleset.rules:
        if rule.upstream not in upstreams:
            raise RuleError(
                f"{rule.file}: rule {rule.name!r}: field 'upstream': "
                f"the config has no upstream {rule.upstream!r}"
            )
        if not rule.deprecated:
            continue
        try:
            policies[rule.name] = config.deprecation.overridden(rule.deprecation, rule.sunset)
        except ValueError as exc:
            raise RuleError(f"{rule.file}: rule {rule.name!r}: {exc}") from exc
    return policies
