"""gateway.routes: one compiled route per rule, and the one validation that `serve`,
`create_app` and `rules check` share."""

from __future__ import annotations

from multidict import CIMultiDict

from gateway.config.rules import load_rules
from gateway.migration.deprecation import add_headers
from gateway.migration.policy import Caller, Forward, Policy
from gateway.routes import compile_routes, routes_of
from tests.conftest import make_config

XE = "XE" + "ab" * 16
EARLY_SUNSET = (
    '[[rule]]\nname = "legacy"\nmethods = ["GET"]\nfrom = "/marketplace/AvailableAddOns"\n'
    'to = "/v1/AvailableAddOns"\nupstream = "marketplace"\ndeprecated = true\n'
    "sunset = 2020-01-01T00:00:00Z\n"
)


def test_one_route_per_rule_with_everything_a_request_needs() -> None:
    config = make_config("http://127.0.0.1:9")
    ruleset = load_rules()
    router = compile_routes(config, ruleset)
    routes = {route.name: route for route in routes_of(router)}
    assert sorted(routes) == sorted(rule.name for rule in ruleset.rules)
    legacy = routes["preview_installed_add_on"]
    assert legacy.deprecated and legacy.upstream.base == "http://127.0.0.1:9"
    assert legacy.sunset == config.deprecation.sunset.timestamp()
    assert (
        legacy.successor_url({"Sid": XE})
        == f"https://marketplace.twilio.com/v1/InstalledAddOns/{XE}"
    )
    assert legacy.metrics.name == "preview_installed_add_on"
    passthrough = routes["v1_installed_add_on"]
    assert (passthrough.deprecation, passthrough.sunset) == (None, None)
    # One rewriter per upstream and kind, shared by the routes of that family.
    assert legacy.rewriter is routes["preview_installed_add_ons"].rewriter
    assert legacy.rewriter is not passthrough.rewriter


def test_the_router_hands_back_the_compiled_route() -> None:
    router = compile_routes(make_config("http://127.0.0.1:9"), load_rules())
    match = router.match("GET", f"/marketplace/InstalledAddOns/{XE}?PageSize=2")
    assert match.route.rule is match.rule
    assert (match.route.name, dict(match.params), match.query) == (
        "preview_installed_add_on",
        {"Sid": XE},
        "PageSize=2",
    )


def test_deprecation_headers_only_for_deprecated_routes() -> None:
    config = make_config("http://127.0.0.1:9")
    router = compile_routes(config, load_rules())
    policy = Policy.build(config)
    headers: CIMultiDict[str] = CIMultiDict({"Link": "<upstream>; rel=next"})
    legacy = router.match("GET", f"/marketplace/InstalledAddOns/{XE}")
    successor = legacy.route.successor_url(legacy.params)
    add_headers(headers, policy.decide(legacy.route, successor, Caller(None), 0.0).headers)
    assert headers["Deprecation"].startswith("@") and "GMT" in headers["Sunset"]
    assert headers.getall("Link")[:2] == [
        "<upstream>; rel=next",
        f'<https://marketplace.twilio.com/v1/InstalledAddOns/{XE}>; rel="successor-version"',
    ]
    v1 = router.match("GET", f"/v1/InstalledAddOns/{XE}")
    assert policy.decide(v1.route, "", Caller(None), 0.0) == Forward(())
