"""gateway.routing: matching on the raw request target (pure; literal data in, values out)."""

from __future__ import annotations

import pytest

from gateway.config.rules import Rule, build_ruleset, load_rules
from gateway.errors import BadRequest, MethodNotAllowed, RouteNotFound
from gateway.routing import Router, forwarded_method

XE = "XE" + "0123456789abcdef" * 2
XF = "XF" + "fedcba9876543210" * 2
AC = "AC" + "0123456789abcdef" * 2
PN = "PN" + "0123456789abcdef" * 2

ROUTER = Router.from_ruleset(load_rules())


def test_preview_path_matches_its_rule_with_raw_params() -> None:
    match = ROUTER.match("POST", f"/marketplace/InstalledAddOns/{XE}/Extensions/{XF}")
    assert match.rule.name == "preview_installed_add_on_extension"
    assert dict(match.params) == {"InstalledAddOnSid": XE, "Sid": XF}
    assert match.query == ""


def test_2010_path_with_json_suffix() -> None:
    target = f"/2010-04-01/Accounts/{AC}/IncomingPhoneNumbers/{PN}/AssignedAddOns/{XE}.json"
    match = ROUTER.match("DELETE", target)
    assert match.rule.name == "assigned_add_on"
    assert dict(match.params) == {"AccountSid": AC, "ResourceSid": PN, "Sid": XE}


def test_query_is_kept_raw() -> None:
    query = "PageToken=PTa%2Bb%3D%3D==&Page=1&PageSize=5&Empty=&Flag"
    match = ROUTER.match("GET", f"/marketplace/InstalledAddOns?{query}")
    assert match.rule.name == "preview_installed_add_ons"
    assert match.query == query


def test_query_may_contain_slashes_question_marks_and_encoded_dots() -> None:
    match = ROUTER.match("GET", "/v1/AvailableAddOns?next=/a/../b%2e%2F?x")
    assert match.query == "next=/a/../b%2e%2F?x"


def test_percent_escapes_in_a_parameter_stay_encoded() -> None:
    # Patterns are checked on the decoded value ("%30" is "0"); the value stays as sent.
    escaped = f"XE%30{XE[3:]}"
    match = ROUTER.match("GET", f"/marketplace/InstalledAddOns/{escaped}")
    assert match.rule.name == "preview_installed_add_on"
    assert dict(match.params) == {"Sid": escaped}
    # A rule without patterns takes any segment, escapes included.
    ruleset = build_ruleset(
        [
            (
                "a.toml",
                '[[rule]]\nname = "any"\nmethods = ["GET"]\nfrom = "/a/{Id}"\n'
                'to = "/b/{Id}"\nupstream = "api"\n',
            )
        ],
        "test",
    )
    match = Router.from_ruleset(ruleset).match("GET", "/a/my%20add-on%C3%A9")
    assert dict(match.params) == {"Id": "my%20add-on%C3%A9"}


@pytest.mark.parametrize(
    "path",
    [
        # %2F is never decoded into a separator, and a parameter is exactly one segment
        f"/marketplace/InstalledAddOns/{XE}%2FExtensions",
        f"/marketplace/InstalledAddOns/{XE}%2fExtensions",
        f"/marketplace/InstalledAddOns/{XE}/Extensions/{XF}/More",
        "/marketplace/InstalledAddOns/",
        # dot segments, raw and encoded
        "/marketplace/InstalledAddOns/..",
        f"/marketplace/../v1/InstalledAddOns/{XE}",
        "/marketplace/InstalledAddOns/.",
        "/marketplace/InstalledAddOns/%2e%2e",
        "/marketplace/InstalledAddOns/%2E%2E",
        "/marketplace/InstalledAddOns/.%2e",
        # backslashes, raw and encoded; empty segments; NUL
        "/marketplace/InstalledAddOns/XE1%5C..",
        "/marketplace/InstalledAddOns/XE1%5c",
        "/marketplace\\InstalledAddOns",
        "/marketplace/InstalledAddOns/XE1\\",
        "//marketplace/InstalledAddOns",
        "/marketplace//InstalledAddOns",
        "/marketplace/InstalledAddOns/XE1%00",
        # characters no SID or name holds
        "/marketplace/InstalledAddOns/XE 1",
        "/marketplace/InstalledAddOns/XE1;x=1",
        # unknown routes, and legacy paths are case-sensitive like Twilio's
        "/marketplace/Nothing",
        "/marketplace/installedaddons",
        "/",
    ],
)
def test_refused_and_unknown_paths_are_404(path: str) -> None:
    with pytest.raises(RouteNotFound) as caught:
        ROUTER.match("GET", path)
    assert (caught.value.status, caught.value.code) == (404, 20404)


def test_refusal_happens_before_rule_matching_even_in_a_matching_shape() -> None:
    # "%2e%2e" alone would fit the {Sid} segment pattern; it is refused first.
    with pytest.raises(RouteNotFound):
        ROUTER.match("DELETE", "/v1/InstalledAddOns/%2e%2e")


def test_wrong_method_is_405_with_allow() -> None:
    with pytest.raises(MethodNotAllowed) as caught:
        ROUTER.match("PUT", f"/marketplace/InstalledAddOns/{XE}")
    error = caught.value
    assert (error.status, error.code) == (405, 20004)
    assert dict(error.headers) == {"Allow": "DELETE, GET, HEAD, POST"}
    assert error.message == (
        f"Method PUT is not allowed on /marketplace/InstalledAddOns/{XE}; "
        "allowed: DELETE, GET, HEAD, POST"
    )


def test_head_matches_the_rules_that_allow_get_and_is_forwarded_as_get() -> None:
    """No rule lists HEAD (the specs have none); it is answered as the GET would be."""
    match = ROUTER.match("HEAD", "/marketplace/AvailableAddOns")
    assert match.rule.name == "preview_available_add_ons" and "HEAD" not in match.rule.methods
    assert forwarded_method("HEAD") == "GET"
    assert [forwarded_method(m) for m in ("GET", "POST", "DELETE")] == ["GET", "POST", "DELETE"]
    with pytest.raises(MethodNotAllowed) as caught:  # a route without GET has no HEAD either
        ROUTER.match("HEAD", "/v1/ReferralConversion")
    assert dict(caught.value.headers) == {"Allow": "POST"}


@pytest.mark.parametrize(
    "target",
    [
        "http://gateway.test/marketplace/InstalledAddOns",
        "https://marketplace.twilio.com/v1/InstalledAddOns",
        "gateway.test:443",
        "*",
        "",
        "marketplace/InstalledAddOns",
    ],
)
def test_absolute_form_and_other_targets_are_bad_requests(target: str) -> None:
    with pytest.raises(BadRequest) as caught:
        ROUTER.match("GET", target)
    assert (caught.value.status, caught.value.code) == (400, 88007)


def test_messages_do_not_echo_control_characters_or_huge_paths() -> None:
    with pytest.raises(RouteNotFound) as caught:
        ROUTER.match("GET", "/x\r\nSet-Cookie:\x00" + "a" * 500)
    message = caught.value.message
    assert "\r" not in message and "\n" not in message and "\x00" not in message
    assert message == "The requested resource /x??Set-Cookie:?" + "a" * 184 + "... was not found"


RULES_WITH_PLACEHOLDER_FIRST = """
[[rule]]
name = "versioned"
methods = ["GET"]
from = "/{Version}/Things/{Sid}"
to = "/v1/Things/{Sid}"
upstream = "marketplace"

[[rule]]
name = "prefixed"
methods = ["GET"]
from = "/api{Version}/Things"
to = "/v1/Things"
upstream = "marketplace"

[[rule]]
name = "literal"
methods = ["POST"]
from = "/v2/Things/{Sid}"
to = "/v2/Things/{Sid}"
upstream = "marketplace"
"""


def test_a_placeholder_in_the_first_segment_still_matches() -> None:
    router = Router.from_ruleset(build_ruleset([("x.toml", RULES_WITH_PLACEHOLDER_FIRST)], "x"))
    match = router.match("GET", "/v9/Things/XE1")
    assert (match.rule.name, dict(match.params)) == ("versioned", {"Version": "v9", "Sid": "XE1"})
    assert router.match("GET", "/api2/Things").rule.name == "prefixed"
    # A literal first segment is tried first; the placeholder rule still serves its GET.
    assert router.match("POST", "/v2/Things/XE1").rule.name == "literal"
    assert router.match("GET", "/v2/Things/XE1").rule.name == "versioned"
    with pytest.raises(MethodNotAllowed) as caught:
        router.match("DELETE", "/v2/Things/XE1")
    assert dict(caught.value.headers) == {"Allow": "GET, HEAD, POST"}


# --- path parameters checked against the rule's patterns (the specs' patterns) ---------------

PATTERNED = [rule for rule in load_rules().rules if rule.patterns]


def _valid(pattern: str) -> str:
    """A value of the shape ``^XX[0-9a-fA-F]{32}$`` describes (every built-in pattern)."""
    prefix = pattern.removeprefix("^")[:2]
    assert pattern == f"^{prefix}[0-9a-fA-F]{{32}}$", pattern
    return prefix + "0123456789abcdefABCDEF0123456789"


def test_every_rule_with_path_parameters_carries_their_patterns() -> None:
    for rule in load_rules().rules:
        assert [name for name, _ in rule.patterns] == list(rule.source.params), rule.name
    assert len(PATTERNED) == 18  # 6 preview, 8 v1, 4 AssignedAddOns


@pytest.mark.parametrize("rule", PATTERNED, ids=lambda rule: rule.name)
def test_a_value_outside_the_pattern_is_not_found(rule: Rule) -> None:
    patterns = dict((name, p.pattern) for name, p in rule.patterns)
    good = {name: _valid(pattern) for name, pattern in patterns.items()}
    method = sorted(rule.methods)[0]
    assert ROUTER.match(method, rule.source.render(good)).rule.name == rule.name
    for name, pattern in patterns.items():
        prefix = pattern[1:3]
        for bad in (
            prefix + "0" * 5000,  # issue 10.9: 5,000 characters were forwarded
            prefix + "0" * 31,
            prefix + "0" * 33,
            prefix + "g" * 32,
            ("XA" if prefix != "XA" else "XB") + "0" * 32,
            prefix.lower() + "0" * 32,
            f"{prefix}%2500{'0' * 30}",  # decodes to "%00..."
        ):
            target = rule.source.render({**good, name: bad})
            with pytest.raises(RouteNotFound) as caught:
                ROUTER.match(method, target + "?PageSize=5")
            assert caught.value.code == 20404 and caught.value.status == 404
            assert len(caught.value.message) < 300


def test_usage_follows_the_v1_pattern_not_the_specs_example() -> None:
    # The v1 spec's example InstalledAddOnSid for Usage is "BIaaaa..."; its pattern is ^XE.
    with pytest.raises(RouteNotFound):
        ROUTER.match("POST", "/v1/InstalledAddOns/BI" + "a" * 32 + "/Usage")
    assert ROUTER.match("POST", f"/v1/InstalledAddOns/{XE}/Usage").rule.name == (
        "v1_installed_add_on_usage"
    )


# --- the first-segment buckets give what a scan of every rule in order gives ----------------

RULES_MIXING_SECOND_SEGMENTS = """
[[rule]]
name = "things"
methods = ["GET"]
from = "/v2/Things/{Sid}"
to = "/v1/Things/{Sid}"
upstream = "marketplace"

[[rule]]
name = "any_second"
methods = ["GET", "POST"]
from = "/v2/{Kind}/{Sid}"
to = "/v1/{Kind}/{Sid}"
upstream = "marketplace"

[[rule]]
name = "partly_literal"
methods = ["DELETE"]
from = "/v2/Th{Rest}/{Sid}"
to = "/v1/Things/{Sid}"
upstream = "marketplace"

[[rule]]
name = "root"
methods = ["GET"]
from = "/v2"
to = "/v1"
upstream = "marketplace"
"""


def _scan_every_rule(rules: list[Rule], method: str, target: str) -> str:
    """The first rule, in rule order, that takes ``method`` and ``target``; or the error."""
    path = target.partition("?")[0]
    allowed: set[str] = set()
    for rule in rules:
        found = rule.source.regex.fullmatch(path)
        if found is None or (rule.patterns and not rule.accepts(found.groupdict())):
            continue
        if ("GET" if method == "HEAD" else method) in rule.methods:
            return rule.name
        allowed |= rule.methods
    if "GET" in allowed:
        allowed.add("HEAD")
    return f"405 {sorted(allowed)}" if allowed else "404"


def _outcome(router: Router[Rule], method: str, target: str) -> str:
    try:
        return router.match(method, target).rule.name
    except MethodNotAllowed as exc:
        return f"405 {sorted(exc.headers['Allow'].split(', '))}"
    except RouteNotFound:
        return "404"


@pytest.mark.parametrize("rules_text", [None, RULES_MIXING_SECOND_SEGMENTS])
def test_the_buckets_answer_as_a_scan_of_every_rule(rules_text: str | None) -> None:
    ruleset = load_rules() if rules_text is None else build_ruleset([("x.toml", rules_text)], "x")
    router = Router.from_ruleset(ruleset)
    rules = list(ruleset.rules)
    targets = {"/v2", "/v2/", "/v2/Things", "/v2/Things/XE1", "/v2/Thongs/XE1", "/v2/Other/XE1"}
    for rule in rules:
        values = {name: _valid(p.pattern) for name, p in rule.patterns}
        values |= {name: "XE1" for name in rule.source.params if name not in values}
        good = rule.source.render(values)
        targets |= {good, good + "/Extra", good + "?PageSize=5", good.rsplit("/", 1)[0] + "/Nope"}
    for target in sorted(targets):
        for method in ("GET", "HEAD", "POST", "DELETE"):
            expected = _scan_every_rule(rules, method, target)
            assert _outcome(router, method, target) == expected, (method, target)
