"""gateway.tools.rule_specs: the rules' path parameter patterns against the OpenAPI specs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway.config.rules import RuleSet, build_ruleset, load_rules
from gateway.tools.rule_specs import (
    SpecError,
    check,
    default_specs,
    describe,
    load_spec_paths,
    shape,
)
from tests.paths import SPECS

XE = "^XE[0-9a-fA-F]{32}$"
XF = "^XF[0-9a-fA-F]{32}$"


def rules(*tables: str) -> RuleSet:
    text = "".join(
        f'[[rule]]\nmethods = ["GET"]\nupstream = "marketplace"\n{table}\n' for table in tables
    )
    return build_ruleset([("mine.toml", text)], "test rules")


def write_spec(directory: Path, name: str, paths: dict[str, Any], **extra: Any) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    document = {"openapi": "3.0.1", "paths": paths, **extra}
    (directory / name).write_text(json.dumps(document), "utf-8")
    return directory


def path_param(name: str, pattern: str | None) -> dict[str, Any]:
    schema = {"type": "string"} | ({"pattern": pattern} if pattern else {})
    return {"name": name, "in": "path", "required": True, "schema": schema}


def item(*parameters: dict[str, Any]) -> dict[str, Any]:
    return {"parameters": list(parameters), "get": {"responses": {"200": {}}}}


def test_the_builtin_rules_agree_with_the_shipped_specs() -> None:
    report = check(load_rules(), load_spec_paths(default_specs()))
    assert report.problems == ()
    # 6 preview, 8 v1 and 4 AssignedAddOns rules hold 30 placeholders in all
    assert report.checked == 30
    assert report.unspecified == ()
    assert report.specs == (
        "twilio_api_v2010_assigned_add_ons.json",
        "twilio_marketplace_v1.json",
        "twilio_preview_marketplace.json",
    )


def test_the_shipped_specs_are_the_repositorys() -> None:
    shipped = {entry.name: entry.read_bytes() for entry in default_specs().iterdir()}
    for path in SPECS.glob("*.json"):
        assert shipped[path.name] == path.read_bytes()
    assert describe(SPECS) == str(SPECS)


def test_a_missing_pattern_names_file_rule_field_and_spec() -> None:
    ruleset = rules('name = "one"\nfrom = "/marketplace/InstalledAddOns/{Sid}"\nto = "/v1/x"')
    [problem] = check(ruleset, load_spec_paths(SPECS)).problems
    assert problem == (
        "mine.toml: rule 'one': field 'patterns': {Sid}: twilio_preview_marketplace.json "
        f"/marketplace/InstalledAddOns/{{Sid}} states {XE!r}, the rule none"
    )


def test_a_different_pattern_is_a_problem_even_if_it_looks_equivalent() -> None:
    ruleset = rules(
        'name = "one"\nfrom = "/v1/InstalledAddOns/{Sid}"\nto = "/v1/InstalledAddOns/{Sid}"\n'
        'patterns = { Sid = "^XE[0-9a-f]{32}$" }'
    )
    [problem] = check(ruleset, load_spec_paths(SPECS)).problems
    assert "{Sid}: twilio_marketplace_v1.json /v1/InstalledAddOns/{Sid} states" in problem
    assert problem.endswith("the rule '^XE[0-9a-f]{32}$'")


def test_placeholders_are_compared_by_position_not_by_name() -> None:
    ruleset = rules(
        'name = "one"\nfrom = "/old/{A}/x/{B}"\n'
        'to = "/v1/InstalledAddOns/{A}/Extensions/{B}"\n'
        f'patterns = {{ A = "{XE}", B = "{XF}" }}'
    )
    report = check(ruleset, load_spec_paths(SPECS))
    assert (report.problems, report.checked) == ((), 2)
    swapped = rules(
        'name = "one"\nfrom = "/old/{A}/x/{B}"\n'
        'to = "/v1/InstalledAddOns/{B}/Extensions/{A}"\n'
        f'patterns = {{ A = "{XE}", B = "{XF}" }}'
    )
    assert len(check(swapped, load_spec_paths(SPECS)).problems) == 2


def test_a_pattern_the_spec_does_not_state_is_a_problem(tmp_path: Path) -> None:
    specs = write_spec(tmp_path, "a.json", {"/v1/Things/{Sid}": item(path_param("Sid", None))})
    ruleset = rules(
        f'name = "one"\nfrom = "/v1/Things/{{Sid}}"\nto = "/v1/Things/{{Sid}}"\n'
        f'patterns = {{ Sid = "{XE}" }}'
    )
    [problem] = check(ruleset, load_spec_paths(specs)).problems
    assert problem.endswith(
        f"{{Sid}}: a.json /v1/Things/{{Sid}} states no pattern, the rule {XE!r}"
    )


def test_specs_that_disagree_are_reported(tmp_path: Path) -> None:
    write_spec(tmp_path, "a.json", {"/old/{Sid}": item(path_param("Sid", XE))})
    write_spec(tmp_path, "b.json", {"/v1/{Sid}": item(path_param("Sid", XF))})
    ruleset = rules(
        f'name = "one"\nfrom = "/old/{{Sid}}"\nto = "/v1/{{Sid}}"\npatterns = {{ Sid = "{XE}" }}'
    )
    [problem] = check(ruleset, load_spec_paths(tmp_path)).problems
    assert f"the specs disagree (a.json /old/{{Sid}}: {XE}; b.json /v1/{{Sid}}: {XF})" in problem


def test_parameter_refs_and_operation_level_parameters_are_read(tmp_path: Path) -> None:
    components = {"parameters": {"Sid": path_param("Sid", XE)}}
    paths = {
        "/v1/A/{Sid}": {"get": {"parameters": [{"$ref": "#/components/parameters/Sid"}]}},
        "/v1/B/{Sid}": {"post": {"parameters": [path_param("Sid", XF)]}},
    }
    spec_paths = load_spec_paths(write_spec(tmp_path, "a.json", paths, components=components))
    assert spec_paths[shape("/v1/A/{X}")][0].patterns == (XE,)
    assert spec_paths[shape("/v1/B/{X}")][0].patterns == (XF,)


def test_rules_in_no_spec_are_listed_not_failed() -> None:
    report = check(
        rules('name = "mine"\nfrom = "/old/{Id}"\nto = "/new/{Id}"'), load_spec_paths(SPECS)
    )
    assert (report.problems, report.unspecified, report.checked) == ((), ("mine",), 0)


def test_rules_without_placeholders_in_a_spec_are_not_unspecified() -> None:
    report = check(
        rules('name = "list"\nfrom = "/marketplace/InstalledAddOns"\nto = "/v1/InstalledAddOns"'),
        load_spec_paths(SPECS),
    )
    assert (report.problems, report.unspecified, report.checked) == ((), (), 0)


def test_unreadable_spec_directories(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="not a directory"):
        load_spec_paths(tmp_path / "missing")
    with pytest.raises(SpecError, match=r"no OpenAPI specs \(\*\.json\)"):
        load_spec_paths(tmp_path)
    (tmp_path / "bad.json").write_text("{not json", "utf-8")
    with pytest.raises(SpecError, match="bad.json: not a readable OpenAPI spec"):
        load_spec_paths(tmp_path)
