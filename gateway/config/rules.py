"""Rewrite rules: TOML data read once at start-up into frozen, compiled objects.

A rule file holds an optional ``[defaults]`` table and any number of ``[[rule]]`` tables:

    [[rule]]
    name = "preview_installed_add_on"          # unique across all files; the metrics label
    methods = ["GET", "POST", "DELETE"]
    from = "/marketplace/InstalledAddOns/{Sid}" # legacy path template the client calls
    to = "/v1/InstalledAddOns/{Sid}"            # upstream path template
    upstream = "marketplace"                    # a name in gateway.config.upstreams.TABLE
    deprecated = true                           # Deprecation/Sunset headers, legacy metrics
    sunset = 2025-06-30T00:00:00Z               # optional: overrides the configured dates
    deprecation = 2024-06-18T00:00:00Z          #   (TOML date-times or ISO 8601 strings)
    patterns = { Sid = "^XE[0-9a-fA-F]{32}$" }  # optional: what each placeholder must match

A ``{Name}`` placeholder matches exactly one path segment (or part of one, as in
``{Sid}.json``; how several in one segment split, and why matching is linear in the path, is
in :mod:`gateway.config.template_regex`); ``to`` may use only placeholders that ``from``
defines. ``patterns`` gives a
placeholder the regular expression its (%-decoded) value must match as a whole, copied from
the OpenAPI spec's ``schema.pattern`` of that path parameter (``gateway rules check`` compares
them); a request whose value does not match is answered 404 and never forwarded. Any mistake
raises :class:`RuleError` naming the file, the rule and the field.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from gateway.config.instants import parse_instant
from gateway.config.template_regex import template_regex
from gateway.config.upstreams import NAMES as UPSTREAM_NAMES

KNOWN_METHODS = frozenset({"GET", "POST", "DELETE", "PUT", "PATCH"})
RULE_KEYS = frozenset(
    {"name", "methods", "from", "to", "upstream", "deprecated", "deprecation", "sunset", "patterns"}
)
DEFAULT_KEYS = frozenset({"upstream", "deprecated", "deprecation", "sunset"})

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_LITERAL = re.compile(r"[A-Za-z0-9_~.\-/]*")
_NAME = re.compile(r"[a-z][a-z0-9_]*")


class RuleError(ValueError):
    """A rule file is invalid; the message names the file, the rule and the field."""


@dataclass(frozen=True, slots=True)
class Template:
    """A compiled path template such as ``/v1/InstalledAddOns/{Sid}``."""

    text: str
    params: tuple[str, ...]
    regex: re.Pattern[str]
    literal_prefix: str  # text before the first placeholder
    pieces: tuple[tuple[bool, str], ...]  # (is_placeholder, literal text or parameter name)

    def render(self, values: Mapping[str, str]) -> str:
        """The template with each placeholder replaced by its (raw) value."""
        return "".join(values[text] if is_param else text for is_param, text in self.pieces)


@dataclass(frozen=True, slots=True)
class Rule:
    """One route: legacy (or pass-through) path and methods, and where it goes upstream."""

    name: str
    methods: frozenset[str]
    source: Template
    target: Template
    upstream: str
    deprecated: bool
    file: str
    deprecation: datetime | None = None  # overrides the configured Deprecation date
    sunset: datetime | None = None  # overrides the configured Sunset date
    patterns: tuple[tuple[str, re.Pattern[str]], ...] = ()  # (placeholder, its value's regex)

    def accepts(self, params: Mapping[str, str]) -> bool:
        """Whether every patterned parameter's value, %-decoded, matches its pattern."""
        for name, pattern in self.patterns:
            value = params[name]
            if "%" in value:
                value = unquote(value, errors="replace")
            if pattern.fullmatch(value) is None:
                return False
        return True


@dataclass(frozen=True, slots=True)
class RuleSet:
    """All rules, in file order (files sorted by name)."""

    rules: tuple[Rule, ...]
    origin: str  # the directory they came from, for messages


def compile_template(text: str) -> Template:
    """Compile a path template; raises ``ValueError`` on a malformed one."""
    if not text.startswith("/"):
        raise ValueError(f"must start with '/': {text!r}")
    if any(segment in (".", "..") for segment in text.split("/")):
        raise ValueError(f"'.' and '..' segments are not allowed: {text!r}")
    params: list[str] = []
    pieces: list[tuple[bool, str]] = []
    position = 0
    for placeholder in _PLACEHOLDER.finditer(text):
        literal = text[position : placeholder.start()]
        _check_literal(literal, text)
        pieces.append((False, literal))
        name = placeholder.group(1)
        if name in params:
            raise ValueError(f"placeholder {{{name}}} appears twice in {text!r}")
        params.append(name)
        pieces.append((True, name))
        position = placeholder.end()
    _check_literal(text[position:], text)
    pieces.append((False, text[position:]))
    first = _PLACEHOLDER.search(text)
    prefix = text[: first.start()] if first else text
    kept = tuple(piece for piece in pieces if piece[0] or piece[1])
    regex = re.compile(template_regex(text, names=True))  # linear in the path's length
    return Template(text, tuple(params), regex, prefix, kept)


def _check_literal(literal: str, text: str) -> None:
    if not _LITERAL.fullmatch(literal) or "//" in literal or "{" in literal or "}" in literal:
        raise ValueError(f"bad characters or empty segment in {text!r}")


def _rule_from_table(table: Any, defaults: Mapping[str, Any], file: str, index: int) -> Rule:
    if not isinstance(table, dict):
        raise RuleError(f"{file}: rule #{index}: must be a table")
    label = f"{file}: rule {table.get('name', f'#{index}')!r}"
    unknown = set(table) - RULE_KEYS
    if unknown:
        raise RuleError(f"{label}: unknown field {sorted(unknown)[0]!r}")
    merged = {**defaults, **table}

    def field_error(name: str, problem: str) -> RuleError:
        return RuleError(f"{label}: field {name!r}: {problem}")

    name = merged.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise field_error("name", "required, lower-case letters, digits and '_'")
    methods = merged.get("methods")
    if (
        not isinstance(methods, list)
        or not methods
        or not all(isinstance(m, str) and m in KNOWN_METHODS for m in methods)
    ):
        raise field_error("methods", f"required, a list drawn from {sorted(KNOWN_METHODS)}")
    templates: dict[str, Template] = {}
    for key in ("from", "to"):
        value = merged.get(key)
        if not isinstance(value, str):
            raise field_error(key, "required, a path template string")
        try:
            templates[key] = compile_template(value)
        except ValueError as exc:
            raise field_error(key, str(exc)) from exc
    missing = set(templates["to"].params) - set(templates["from"].params)
    if missing:
        raise field_error("to", f"uses {{{sorted(missing)[0]}}} which 'from' does not define")
    upstream = merged.get("upstream")
    if upstream not in UPSTREAM_NAMES:
        raise field_error("upstream", f"required, one of {list(UPSTREAM_NAMES)}")
    deprecated = merged.get("deprecated", False)
    if not isinstance(deprecated, bool):
        raise field_error("deprecated", "must be true or false")
    moments: dict[str, datetime | None] = {}
    for key in ("deprecation", "sunset"):
        value = merged.get(key)
        if isinstance(value, datetime | date):
            value = value.isoformat()
        try:
            moments[key] = None if value is None else parse_instant(str(value))
        except ValueError as exc:
            raise field_error(key, f"not an ISO 8601 date-time: {exc}") from exc
    return Rule(
        name=name,
        methods=frozenset(methods),
        source=templates["from"],
        target=templates["to"],
        upstream=str(upstream),
        deprecated=deprecated,
        file=file,
        deprecation=moments["deprecation"],
        sunset=moments["sunset"],
        patterns=_patterns(merged.get("patterns"), templates["from"], field_error),
    )


def _patterns(
    value: Any, source: Template, field_error: Callable[[str, str], RuleError]
) -> tuple[tuple[str, re.Pattern[str]], ...]:
    if value is None:
        return ()
    if not isinstance(value, dict):
        raise field_error("patterns", "a table of placeholder = regular expression")
    compiled: list[tuple[str, re.Pattern[str]]] = []
    for name, text in value.items():
        if name not in source.params:
            raise field_error("patterns", f"{{{name}}} is not a placeholder of 'from'")
        if not isinstance(text, str) or not text:
            raise field_error("patterns", f"{{{name}}}: a regular expression string")
        try:
            compiled.append((name, re.compile(text)))
        except re.error as exc:
            raise field_error("patterns", f"{{{name}}}: not a regular expression: {exc}") from exc
    return tuple(compiled)


def parse_rule_file(text: str, file: str) -> list[Rule]:
    """Parse one rule file's text; ``file`` is used in error messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RuleError(f"{file}: invalid TOML: {exc}") from exc
    unknown = set(data) - {"defaults", "rule"}
    if unknown:
        raise RuleError(f"{file}: unknown top-level key {sorted(unknown)[0]!r}")
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict) or set(defaults) - DEFAULT_KEYS:
        raise RuleError(f"{file}: [defaults] may set only {sorted(DEFAULT_KEYS)}")
    tables = data.get("rule", [])
    if not isinstance(tables, list) or not tables:
        raise RuleError(f"{file}: no [[rule]] tables")
    return [_rule_from_table(t, defaults, file, i + 1) for i, t in enumerate(tables)]


def build_ruleset(files: Iterable[tuple[str, str]], origin: str) -> RuleSet:
    """Rules from ``(file name, text)`` pairs; names must be unique and routes must not clash."""
    rules: list[Rule] = []
    for file, text in files:
        rules.extend(parse_rule_file(text, file))
    if not rules:
        raise RuleError(f"{origin}: no rule files (*.toml)")
    seen: dict[str, Rule] = {}
    routes: dict[tuple[str, str], Rule] = {}
    for rule in rules:
        if rule.name in seen:
            raise RuleError(
                f"{rule.file}: rule {rule.name!r}: field 'name': "
                f"already used in {seen[rule.name].file}"
            )
        seen[rule.name] = rule
        shape = _PLACEHOLDER.sub("{}", rule.source.text)
        for method in rule.methods:
            other = routes.setdefault((method, shape), rule)
            if other is not rule:
                raise RuleError(
                    f"{rule.file}: rule {rule.name!r}: field 'from': {method} {rule.source.text} "
                    f"is already routed by rule {other.name!r}"
                )
    return RuleSet(tuple(rules), origin)


def _builtin_rules() -> RuleSet:
    """The rules shipped in the package, or, in a source checkout, ``rewrite_rules/``."""
    try:
        package: Traversable = resources.files("gateway.default_rules")
    except ModuleNotFoundError:  # editable install: the mapped package is not importable
        package = Path(__file__).resolve().parents[2] / "rewrite_rules"
    entries = sorted(
        (e for e in package.iterdir() if e.name.endswith(".toml") and not e.name.startswith(".")),
        key=lambda entry: entry.name,
    )
    # Each rule names the file really read (the installed package's copy, or the checkout's).
    return build_ruleset(((str(e), e.read_text("utf-8")) for e in entries), "built-in rules")


def load_rules(directory: Path | None = None) -> RuleSet:
    """Load ``*.toml`` from ``directory``, or the rules shipped inside the package."""
    if directory is None:
        return _builtin_rules()
    if not directory.is_dir():
        raise RuleError(f"{directory}: not a directory")
    paths = rule_files(directory)
    return build_ruleset(((str(p), p.read_text("utf-8")) for p in paths), str(directory))


def rule_files(directory: Path) -> list[Path]:
    """The rule files of ``directory`` in the order they are read: ``*.toml`` by name, except
    names starting with a dot (``pathlib`` matches those too: an editor's lock or backup file
    such as ``.#preview_marketplace.toml``, often a dangling symlink, is no rule file)."""
    return sorted(p for p in directory.glob("*.toml") if not p.name.startswith("."))
