"""Compare the rules' path parameter patterns with the OpenAPI specs (``gateway rules check``).

The specs in the repository's ``specs/`` ship inside the package as ``gateway.specs``, so an
installed wheel checks its rules against the same documents the tests use; ``--specs DIR``
checks against another copy (a newer twilio-oai, say). A rule template is tied to a spec path
of the same shape (placeholders compared by position, whatever their names), both for ``from``
(the legacy path) and ``to`` (the upstream path). For each placeholder, every spec that states
a ``schema.pattern`` must agree with the rule's ``patterns`` entry, character for character.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

from gateway.config.rules import Rule, RuleSet, Template

_PLACEHOLDER = re.compile(r"\{[^{}/]+\}")
HTTP_METHODS = frozenset({"get", "post", "put", "patch", "delete", "head", "options"})


class SpecError(ValueError):
    """A spec directory or file that cannot be read."""


@dataclass(frozen=True, slots=True)
class SpecPath:
    """One path of one spec: where it comes from and each placeholder's pattern, in order."""

    spec: str  # file name
    path: str
    patterns: tuple[str | None, ...]


@dataclass(frozen=True, slots=True)
class Report:
    """What the check found: problems (empty when all agree) and what it looked at."""

    problems: tuple[str, ...]
    checked: int  # placeholders compared with at least one spec
    unspecified: tuple[str, ...]  # rules none of whose templates is a spec path
    specs: tuple[str, ...]


def default_specs() -> Traversable:
    """The specs shipped in the package, or, in a source checkout, ``specs/``."""
    try:
        return resources.files("gateway.specs")
    except ModuleNotFoundError:  # editable install: the mapped package is not importable
        return Path(__file__).resolve().parents[2] / "specs"


def describe(directory: Traversable) -> str:
    """Where ``directory`` is, for messages (a namespace package's own repr is unhelpful)."""
    for entry in directory.iterdir():
        return str(entry).removesuffix(entry.name).rstrip("/\\") or str(directory)
    return str(directory)


def load_spec_paths(directory: Traversable) -> dict[str, list[SpecPath]]:
    """Every path of every ``*.json`` spec in ``directory``, by shape (``/v1/X/{}``)."""
    if not directory.is_dir():
        raise SpecError(f"{directory}: not a directory")
    found: dict[str, list[SpecPath]] = {}
    files = sorted((e for e in directory.iterdir() if e.name.endswith(".json")), key=_name)
    if not files:
        raise SpecError(f"{directory}: no OpenAPI specs (*.json)")
    for entry in files:
        try:
            document = json.loads(entry.read_text("utf-8"))
            paths = document["paths"]
            for path, item in paths.items():
                spec_path = SpecPath(entry.name, path, _path_patterns(document, path, item))
                found.setdefault(shape(path), []).append(spec_path)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise SpecError(f"{entry}: not a readable OpenAPI spec: {exc!r}") from exc
    return found


def _name(entry: Traversable) -> str:
    return entry.name


def shape(path: str) -> str:
    """A path with every placeholder written ``{}``."""
    return _PLACEHOLDER.sub("{}", path)


def _path_patterns(document: Any, path: str, item: Mapping[str, Any]) -> tuple[str | None, ...]:
    """Each placeholder's ``schema.pattern`` (path-level or any operation's), in path order."""
    by_name: dict[str, str] = {}
    operations = [item] + [op for key, op in item.items() if key in HTTP_METHODS]
    for holder in operations:
        for parameter in holder.get("parameters", []):
            parameter = _resolve(document, parameter)
            if parameter.get("in") != "path":
                continue
            pattern = _resolve(document, parameter.get("schema", {})).get("pattern")
            if isinstance(pattern, str):
                by_name.setdefault(parameter["name"], pattern)
    names = [text[1:-1] for text in _PLACEHOLDER.findall(path)]
    return tuple(by_name.get(name) for name in names)


def _resolve(document: Any, node: Any) -> Any:
    """Follow a local ``$ref`` (``#/components/...``)."""
    while isinstance(node, dict) and isinstance(node.get("$ref"), str):
        target: Any = document
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def check(ruleset: RuleSet, spec_paths: Mapping[str, list[SpecPath]]) -> Report:
    """Compare every rule's ``patterns`` with the specs' path parameter patterns."""
    problems: list[str] = []
    checked = 0
    unspecified: list[str] = []
    for rule in ruleset.rules:
        expected = _expected(rule, spec_paths)
        if expected is None:
            unspecified.append(rule.name)
            continue
        rule_problems, compared = _compare(rule, expected)
        problems.extend(rule_problems)
        checked += compared
    names = sorted({p.spec for paths in spec_paths.values() for p in paths})
    return Report(tuple(problems), checked, tuple(unspecified), tuple(names))


# placeholder name -> [(pattern or None, "spec file path")], for the spec paths a rule serves
Expected = dict[str, list[tuple[str | None, str]]]


def _expected(rule: Rule, spec_paths: Mapping[str, list[SpecPath]]) -> Expected | None:
    """What the specs say of each placeholder; ``None`` when no template is a spec path."""
    expected: Expected | None = None
    for template in _templates(rule):
        for spec_path in spec_paths.get(shape(template.text), []):
            expected = {} if expected is None else expected
            where = f"{spec_path.spec} {spec_path.path}"
            for name, pattern in zip(template.params, spec_path.patterns, strict=True):
                expected.setdefault(name, []).append((pattern, where))
    return expected


def _templates(rule: Rule) -> Iterable[Template]:
    yield rule.source
    if rule.target.text != rule.source.text:
        yield rule.target


def _compare(rule: Rule, expected: Expected) -> tuple[list[str], int]:
    label = f"{rule.file}: rule {rule.name!r}: field 'patterns'"
    carried = {name: pattern.pattern for name, pattern in rule.patterns}
    problems: list[str] = []
    for name in rule.source.params:
        stated = [(p, where) for p, where in expected.get(name, []) if p is not None]
        have = carried.get(name)
        if not stated:
            if have is not None and name in expected:
                where = expected[name][0][1]
                problems.append(
                    f"{label}: {{{name}}}: {where} states no pattern, the rule {have!r}"
                )
            continue
        distinct = sorted({p for p, _ in stated})
        if len(distinct) > 1:
            detail = "; ".join(f"{where}: {p}" for p, where in stated)
            problems.append(f"{label}: {{{name}}}: the specs disagree ({detail})")
        elif have is None:
            problems.append(
                f"{label}: {{{name}}}: {stated[0][1]} states {distinct[0]!r}, the rule none"
            )
        elif have != distinct[0]:
            problems.append(
                f"{label}: {{{name}}}: {stated[0][1]} states {distinct[0]!r}, the rule {have!r}"
            )
    compared = sum(1 for name in rule.source.params if name in expected)
    return problems, compared


def summary(report: Report, origin: str) -> str:
    """One line for ``gateway rules check``."""
    text = (
        f"patterns: {report.checked} path parameters agree with the specs "
        f"({', '.join(report.specs)} in {origin})"
    )
    if report.unspecified:
        text += f"; {len(report.unspecified)} rules are in no spec: {', '.join(report.unspecified)}"
    return text
