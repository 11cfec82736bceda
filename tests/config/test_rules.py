"""gateway.config.rules: the built-in rule table, its coverage of the specs, and rule-file
errors."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from gateway.config.rules import (
    Rule,
    RuleError,
    RuleSet,
    compile_template,
    load_rules,
    rule_files,
)
from gateway.config.settings import load_config
from gateway.models import RouteMatch
from gateway.request_rewrite import upstream_url
from gateway.routing import Router
from gateway.tools.rule_specs import load_spec_paths, shape
from tests.conftest import GatewayFactory
from tests.fake_upstream import FakeUpstream
from tests.paths import ROOT, SPECS

PROJECT = ROOT
PACKAGE_DIR = ROOT / "gateway"
RULES_DIR = PROJECT / "rewrite_rules"
SPEC_FILES = {
    "preview": "twilio_preview_marketplace.json",
    "v1": "twilio_marketplace_v1.json",
    "2010": "twilio_api_v2010_assigned_add_ons.json",
}
HTTP_METHODS = ("get", "post", "delete", "put", "patch")


def example_value(pattern: str | None) -> str:
    """A value the spec's pattern (every one is ``^XX[0-9a-fA-F]{32}$``) accepts."""
    assert pattern is not None and re.fullmatch(r"\^[A-Z]{2}\[0-9a-fA-F\]\{32\}\$", pattern)
    return pattern[1:3] + "0123456789abcdef" * 2


def concrete_path(path: str) -> str:
    """``path`` with each placeholder replaced by a value its spec pattern accepts."""
    spec_paths = load_spec_paths(SPECS)
    [spec_path] = [p for p in spec_paths[shape(path)] if p.path == path]
    values = iter(spec_path.patterns)
    return re.sub(r"\{\w+\}", lambda _: example_value(next(values)), path)


def rule_named(ruleset: RuleSet, name: str) -> Rule:
    return {rule.name: rule for rule in ruleset.rules}[name]


def spec_operations(kind: str) -> list[tuple[str, str]]:
    """(METHOD, path template) of every operation in one of the specs in specs/."""
    document = json.loads((SPECS / SPEC_FILES[kind]).read_text("utf-8"))
    return sorted(
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in HTTP_METHODS
    )


@pytest.fixture(scope="module")
def builtin() -> RuleSet:
    return load_rules()


def write_rules(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(text, "utf-8")
    return path


GOOD_RULE = """
[[rule]]
name = "things"
methods = ["GET"]
from = "/legacy/Things/{Sid}"
to = "/v1/Things/{Sid}"
upstream = "marketplace"
"""
UPSTREAM_LINE = 'upstream = "marketplace"'


# --- the built-in table ---------------------------------------------------------------------


def test_builtin_rules_load(builtin: RuleSet) -> None:
    assert builtin.origin == "built-in rules"
    assert len(builtin.rules) == 24
    # Each rule names the file really read: absolute, existing, a copy of rewrite_rules/.
    files = {Path(rule.file) for rule in builtin.rules}
    assert {file.name for file in files} == {
        "assigned_add_ons.toml",
        "marketplace_v1.toml",
        "preview_marketplace.toml",
    }
    for file in files:
        assert file.is_absolute() and file.read_bytes() == (RULES_DIR / file.name).read_bytes()
    rule = rule_named(builtin, "preview_installed_add_on_extension")
    assert rule.methods == frozenset({"GET", "POST"})
    assert rule.source.text == "/marketplace/InstalledAddOns/{InstalledAddOnSid}/Extensions/{Sid}"
    assert rule.target.text == "/v1/InstalledAddOns/{InstalledAddOnSid}/Extensions/{Sid}"
    assert rule.source.params == ("InstalledAddOnSid", "Sid")
    assert (rule.upstream, rule.deprecated) == ("marketplace", True)
    with pytest.raises(KeyError):
        rule_named(builtin, "no_such_rule")


def test_builtin_rules_equal_the_rule_directory(builtin: RuleSet) -> None:
    from_dir = load_rules(RULES_DIR)
    assert [(r.name, r.methods, r.source.text, r.target.text) for r in builtin.rules] == [
        (r.name, r.methods, r.source.text, r.target.text) for r in from_dir.rules
    ]


def test_every_preview_operation_has_a_deprecated_rule_to_its_v1_path(builtin: RuleSet) -> None:
    operations = spec_operations("preview")
    assert len(operations) == 12  # api-mapping section 1: 12 operations on 8 paths
    for method, path in operations:
        rule = _rule_for(builtin, method, path)
        # api-mapping section 1: v1 path = "/v1" + preview path without "/marketplace".
        assert rule.target.text == "/v1" + path.removeprefix("/marketplace"), (method, path)
        assert (rule.upstream, rule.deprecated) == ("marketplace", True), (method, path)


@pytest.mark.parametrize(("kind", "upstream"), [("v1", "marketplace"), ("2010", "api")])
def test_every_v1_and_2010_operation_has_a_pass_through_rule(
    builtin: RuleSet, kind: str, upstream: str
) -> None:
    operations = spec_operations(kind)
    assert len(operations) == {"v1": 18, "2010": 6}[kind]
    for method, path in operations:
        rule = _rule_for(builtin, method, path)
        assert rule.target.text == path, (method, path)
        assert (rule.upstream, rule.deprecated) == (upstream, False), (method, path)


def test_every_rule_serves_some_spec_operation(builtin: RuleSet) -> None:
    documented = {op for kind in SPEC_FILES for op in spec_operations(kind)}
    for rule in builtin.rules:
        for method in rule.methods:
            assert (method, rule.source.text) in documented, (rule.name, method)


def test_router_reaches_every_spec_operation_with_concrete_sids(builtin: RuleSet) -> None:
    router = Router.from_ruleset(builtin)
    for kind in SPEC_FILES:
        for method, path in spec_operations(kind):
            concrete = concrete_path(path)
            match = router.match(method, concrete + "?PageSize=5")
            assert match.rule.source.text == path
            expected_path = "/v1" + concrete.removeprefix("/marketplace")
            if kind != "preview":
                expected_path = concrete
            assert upstream_url(match, "https://up.example") == (
                f"https://up.example{expected_path}?PageSize=5"
            )


def _rule_for(ruleset: RuleSet, method: str, path: str) -> Rule:
    found = [r for r in ruleset.rules if r.source.text == path and method in r.methods]
    assert len(found) == 1, f"{method} {path}: {[r.name for r in found]}"
    return found[0]


# --- templates --------------------------------------------------------------------------------


def test_template_matches_one_segment_and_renders_raw_values() -> None:
    template = compile_template("/2010-04-01/Accounts/{AccountSid}/Things/{Sid}.json")
    assert template.params == ("AccountSid", "Sid")
    assert template.literal_prefix == "/2010-04-01/Accounts/"
    found = template.regex.fullmatch("/2010-04-01/Accounts/AC1/Things/XE%20a.json")
    assert found is not None
    assert found.groupdict() == {"AccountSid": "AC1", "Sid": "XE%20a"}
    assert template.regex.fullmatch("/2010-04-01/Accounts/AC1/x/Things/XE1.json") is None
    assert template.render({"AccountSid": "AC%2B", "Sid": "XE1"}) == (
        "/2010-04-01/Accounts/AC%2B/Things/XE1.json"
    )


@pytest.mark.parametrize(
    "text",
    ["v1/Things", "/v1//Things", "/v1/{Sid}/{Sid}", "/v1/Th ings", "/v1/{Sid", "/v1/../x", "/v1/."],
)
def test_malformed_templates_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        compile_template(text)


# --- invalid rule files -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "rule", "field"),
    [
        (GOOD_RULE.replace(UPSTREAM_LINE, 'upstrem = "marketplace"'), "things", "upstrem"),
        (GOOD_RULE.replace('["GET"]', '["GET", "FETCH"]'), "things", "methods"),
        (GOOD_RULE.replace('["GET"]', '["get"]'), "things", "methods"),
        (GOOD_RULE.replace('["GET"]', "[]"), "things", "methods"),
        (GOOD_RULE.replace('["GET"]', '"GET"'), "things", "methods"),
        (GOOD_RULE.replace('to = "/v1/Things/{Sid}"', 'to = "/v1/Things/{Id}"'), "things", "to"),
        (GOOD_RULE.replace(UPSTREAM_LINE, 'upstream = "preview"'), "things", "upstream"),
        (GOOD_RULE.replace('name = "things"', 'name = "Things-1"'), "Things-1", "name"),
        (GOOD_RULE.replace('from = "/legacy', 'from = "legacy'), "things", "from"),
        (GOOD_RULE.replace("\nupstream", "\ndeprecated = 1\nupstream"), "things", "deprecated"),
        (GOOD_RULE + 'patterns = { Id = "^XE$" }\n', "things", "patterns"),
        (GOOD_RULE + 'patterns = { Sid = "^XE[0-9$" }\n', "things", "patterns"),
        (GOOD_RULE + 'patterns = "^XE$"\n', "things", "patterns"),
        (GOOD_RULE + "patterns = { Sid = 34 }\n", "things", "patterns"),
        (GOOD_RULE + 'patterns = { Sid = "" }\n', "things", "patterns"),
    ],
    ids=[
        "unknown-field",
        "unknown-method",
        "lower-case-method",
        "no-methods",
        "methods-not-a-list",
        "undefined-placeholder",
        "unknown-upstream",
        "bad-name",
        "relative-from",
        "deprecated-not-bool",
        "pattern-for-unknown-placeholder",
        "pattern-not-a-regex",
        "patterns-not-a-table",
        "pattern-not-a-string",
        "pattern-empty",
    ],
)
def test_invalid_rule_names_file_rule_and_field(
    tmp_path: Path, text: str, rule: str, field: str
) -> None:
    path = write_rules(tmp_path, "broken.toml", text)
    with pytest.raises(RuleError) as caught:
        load_rules(tmp_path)
    message = str(caught.value)
    assert message.startswith(f"{path}: rule {rule!r}: ")
    assert repr(field) in message
    assert "\n" not in message


def test_undefined_placeholder_message_names_it(tmp_path: Path) -> None:
    write_rules(tmp_path, "a.toml", GOOD_RULE.replace('to = "/v1/Things/{Sid}"', 'to = "/v1/{Id}"'))
    with pytest.raises(RuleError, match=r"field 'to': uses \{Id\} which 'from' does not define"):
        load_rules(tmp_path)


def test_duplicate_name_across_files(tmp_path: Path) -> None:
    write_rules(tmp_path, "a.toml", GOOD_RULE)
    other = GOOD_RULE.replace("/legacy/Things/", "/legacy/Other/")
    write_rules(tmp_path, "b.toml", other)
    with pytest.raises(RuleError) as caught:
        load_rules(tmp_path)
    assert str(caught.value) == (
        f"{tmp_path / 'b.toml'}: rule 'things': field 'name': already used in {tmp_path / 'a.toml'}"
    )


def test_duplicate_route_even_with_other_placeholder_names(tmp_path: Path) -> None:
    second = (
        GOOD_RULE.replace('name = "things"', 'name = "things_again"')
        .replace("{Sid}", "{ThingSid}")
        .replace('["GET"]', '["POST", "GET"]')
    )
    write_rules(tmp_path, "a.toml", GOOD_RULE + second)
    with pytest.raises(RuleError) as caught:
        load_rules(tmp_path)
    assert str(caught.value) == (
        f"{tmp_path / 'a.toml'}: rule 'things_again': field 'from': "
        "GET /legacy/Things/{ThingSid} is already routed by rule 'things'"
    )


def test_same_path_with_other_methods_is_not_a_clash(tmp_path: Path) -> None:
    post = GOOD_RULE.replace('name = "things"', 'name = "things_post"').replace("GET", "POST")
    write_rules(tmp_path, "a.toml", GOOD_RULE + post)
    assert [rule.name for rule in load_rules(tmp_path).rules] == ["things", "things_post"]


def test_bad_toml_names_the_file(tmp_path: Path) -> None:
    path = write_rules(tmp_path, "bad.toml", GOOD_RULE + "\n[[rule]\nname = ")
    with pytest.raises(RuleError, match=rf"^{re.escape(str(path))}: invalid TOML: "):
        load_rules(tmp_path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "no [[rule]] tables"),
        ("rules = []\n" + GOOD_RULE, "unknown top-level key 'rules'"),
        ('[defaults]\nname = "x"\n' + GOOD_RULE, "[defaults] may set only"),
    ],
)
def test_file_level_errors_name_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = write_rules(tmp_path, "a.toml", text)
    with pytest.raises(RuleError) as caught:
        load_rules(tmp_path)
    assert str(caught.value).startswith(f"{path}: {message}")


def test_defaults_apply_and_rules_override_them(tmp_path: Path) -> None:
    text = (
        '[defaults]\nupstream = "api"\ndeprecated = true\n'
        + GOOD_RULE.replace('upstream = "marketplace"\n', "")
        + GOOD_RULE.replace('name = "things"', 'name = "mine"')
        .replace("/legacy/Things", "/legacy/Mine")
        .replace('upstream = "marketplace"', 'upstream = "marketplace"\ndeprecated = false')
    )
    write_rules(tmp_path, "a.toml", text)
    ruleset = load_rules(tmp_path)
    assert [(r.name, r.upstream, r.deprecated) for r in ruleset.rules] == [
        ("things", "api", True),
        ("mine", "marketplace", False),
    ]


def test_a_directory_without_rule_files_or_missing_is_refused(tmp_path: Path) -> None:
    (tmp_path / "README.txt").write_text("not a rule file", "utf-8")
    with pytest.raises(RuleError, match=r"no rule files \(\*\.toml\)"):
        load_rules(tmp_path)
    with pytest.raises(RuleError, match="not a directory"):
        load_rules(tmp_path / "missing")


def test_names_starting_with_a_dot_are_not_rule_files(tmp_path: Path) -> None:
    """An editor's lock (emacs: a dangling symlink ``.#name.toml``) or a hidden copy."""
    write_rules(tmp_path, "things.toml", GOOD_RULE)
    (tmp_path / ".#things.toml").symlink_to("root@host.4242:1700000000")
    write_rules(tmp_path, ".things.toml", GOOD_RULE)  # the same rule again: a clash if read
    write_rules(tmp_path, ".toml", "not TOML at all [")
    assert [rule.name for rule in load_rules(tmp_path).rules] == ["things"]
    assert rule_files(tmp_path) == [tmp_path / "things.toml"]


# --- --rules DIR replaces the built-in rules -------------------------------------------------


def test_rules_flag_replaces_the_builtin_rules(tmp_path: Path) -> None:
    write_rules(tmp_path, "only.toml", GOOD_RULE)
    config = load_config({"rules": str(tmp_path)}, {})
    assert config.rules == tmp_path
    ruleset = load_rules(config.rules)
    assert [rule.name for rule in ruleset.rules] == ["things"]
    assert ruleset.origin == str(tmp_path)


@pytest.mark.upstream
async def test_gateway_serves_only_the_replacement_rules(
    tmp_path: Path, fake_upstream: FakeUpstream, gateway_client: GatewayFactory
) -> None:
    write_rules(tmp_path, "things.toml", GOOD_RULE)
    client = await gateway_client(fake_upstream.url, rules=tmp_path)
    response = await client.get("/legacy/Things/XE1?a=%2B")
    assert response.status == 200
    assert fake_upstream.received[-1].raw_path == "/v1/Things/XE1?a=%2B"
    # Not deprecated: the upstream URL comes back as the same path on the gateway.
    assert (await response.json())["url"] == f"http://{client.host}:{client.port}/v1/Things/XE1"
    gone = await client.get("/marketplace/InstalledAddOns")
    assert gone.status == 404
    assert (await gone.json())["code"] == 20404
    assert len(fake_upstream.received) == 1


@pytest.mark.upstream
async def test_a_value_outside_its_pattern_is_a_404_never_forwarded(
    fake_upstream: FakeUpstream, gateway_client: GatewayFactory
) -> None:
    client = await gateway_client(fake_upstream.url)
    good = "XE" + "0123456789abcdef" * 2
    for bad in ("XE" + "0" * 5000, good[:-1], good + "0", "XB" + good[2:], "XE%2F" + "0" * 30):
        for method, target in (
            ("GET", f"/marketplace/InstalledAddOns/{bad}"),
            ("DELETE", f"/v1/InstalledAddOns/{bad}"),
            ("POST", f"/v1/InstalledAddOns/{bad}/Usage"),
            ("GET", f"/marketplace/InstalledAddOns/{good}/Extensions/{bad}"),
            (
                "GET",
                f"/2010-04-01/Accounts/{'AC' + good[2:]}/IncomingPhoneNumbers/"
                f"{'PN' + good[2:]}/AssignedAddOns/{bad}.json",
            ),
        ):
            async with client.request(method, target) as response:
                body = await response.json()
            assert (response.status, body.get("code")) == (404, 20404), (target, body)
            assert body["more_info"] == "https://www.twilio.com/docs/errors/20404"
    assert fake_upstream.received == []
    async with client.get(f"/marketplace/InstalledAddOns/{good}") as response:
        assert response.status == 200
    assert [r.raw_path for r in fake_upstream.received] == [f"/v1/InstalledAddOns/{good}"]


def test_route_match_carries_raw_params(builtin: RuleSet) -> None:
    sid = "XB%41" + "a" * 31  # the pattern is checked on the decoded "XBA..."
    match = Router.from_ruleset(builtin).match("GET", f"/v1/Listing/{sid}?x=1")
    listing = rule_named(builtin, "v1_listing")
    assert match == RouteMatch(listing, {"Sid": sid}, "x=1", listing)


# --- the rules ship inside the wheel ----------------------------------------------------------


@pytest.mark.slow
def test_wheel_ships_the_rule_files_and_the_specs(tmp_path: Path) -> None:
    source = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("gateway", "rewrite_rules", "specs"):
        shutil.copytree(PROJECT / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (PROJECT / name).exists():
            shutil.copy2(PROJECT / name, source / name)
    out = tmp_path / "dist"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-q", "-w", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    (wheel,) = out.glob("marketplace_gateway-*.whl")
    expected = {path.name: path.read_bytes() for path in RULES_DIR.glob("*.toml")}
    assert len(expected) == 3
    with zipfile.ZipFile(wheel) as archive:
        shipped = {
            name.removeprefix("gateway/default_rules/"): archive.read(name)
            for name in archive.namelist()
            if name.startswith("gateway/default_rules/") and name.endswith(".toml")
        }
    assert shipped == expected
    specs = {path.name: path.read_bytes() for path in SPECS.glob("*.json")}
    assert len(specs) == 3
    with zipfile.ZipFile(wheel) as archive:
        for name, data in specs.items():
            assert archive.read(f"gateway/specs/{name}") == data


@pytest.mark.upstream
@pytest.mark.slow
def test_the_wheel_runs_with_no_checkout_present(tmp_path: Path) -> None:
    """Built rules, simulator seed and the whole demo come from the wheel alone."""
    out = tmp_path / "dist"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(PROJECT), "--no-deps", "-q", "-w", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    (wheel,) = out.glob("marketplace_gateway-*.whl")
    target = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), wheel],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    env = {**os.environ, "PYTHONPATH": str(target)}
    where = subprocess.run(
        [sys.executable, "-c", "import gateway; print(gateway.__file__)"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert where.stdout.strip().startswith(str(target))  # not the checkout
    # Every subpackage imports from the wheel, and the accelerator sits in gateway/rewrite/.
    parts = [f"gateway.{p.name}" for p in PACKAGE_DIR.iterdir() if (p / "__init__.py").is_file()]
    assert len(parts) >= 8
    code = f"import {', '.join(parts)}, gateway.rewrite.link_map as m; print(m.ACCELERATOR)"
    imported = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    accelerators = sorted(str(p.relative_to(target)) for p in target.rglob("_rewrite_accel*.so"))
    if os.environ.get("CI"):  # CI's build has a C compiler
        assert [a.rpartition("/")[0] for a in accelerators] == ["gateway/rewrite"]
        assert "gateway.rewrite._rewrite_accel" in imported.stdout

    def gateway(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """``python -m gateway ARGS`` from the installed wheel, outside the checkout."""
        command = [sys.executable, "-m", "gateway", *args]
        return subprocess.run(
            command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout
        )

    demo = gateway("demo", "--walkthrough", timeout=120)
    assert demo.returncode == 0, demo.stdout[-2000:] + demo.stderr[-2000:]
    assert "walkthrough OK" in demo.stdout
    # The specs ship too: `rules check` compares the patterns with the wheel's own copy.
    check = gateway("rules", "check")
    assert check.returncode == 0, check.stdout[-2000:] + check.stderr[-2000:]
    summary = check.stdout.splitlines()[-1]
    assert summary.startswith("patterns: 30 path parameters agree with the specs"), summary
    assert f"in {target / 'gateway' / 'specs'}" in summary
    # `rules explain` names the file it really read: the installed copy.
    explain = gateway("rules", "explain", "GET", "/marketplace/InstalledAddOns")
    assert explain.returncode == 0, explain.stderr
    installed = target / "gateway" / "default_rules" / "preview_marketplace.toml"
    assert explain.stdout.splitlines()[0] == f"rule:       preview_installed_add_ons ({installed})"
