"""A small JSON Schema checker for add-on ``configuration_schema`` objects.

Supported keywords: ``type`` (string or list), ``properties``, ``required``,
``additionalProperties`` (bool or schema), ``items``, ``enum``, ``minimum``, ``maximum``,
``minLength``, ``maxLength``. Annotations (``default``, ``title``, ``description``,
``format``, ``$schema``, ``examples``) are accepted and ignored. Any other keyword makes
:func:`check_schema` fail, so a seed can never rely on validation we silently skip.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping
from typing import Any

SUPPORTED = frozenset(
    {
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "enum",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
    }
)
ANNOTATIONS = frozenset({"default", "title", "description", "format", "$schema", "examples"})
_TYPES = frozenset({"object", "array", "string", "boolean", "integer", "number", "null"})


def check_schema(schema: Any, where: str = "schema") -> list[str]:
    """Problems that make *schema* unusable by :func:`validate` (empty list when fine)."""
    if not isinstance(schema, Mapping):
        return [f"{where}: must be a JSON object"]
    problems = [
        f"{where}: unsupported keyword {key!r}"
        for key in schema
        if key not in SUPPORTED and key not in ANNOTATIONS
    ]
    types = schema.get("type")
    for name in [types] if isinstance(types, str) else (types or []):
        if name not in _TYPES:
            problems.append(f"{where}: unknown type {name!r}")
    for name, sub in (schema.get("properties") or {}).items():
        problems += check_schema(sub, f"{where}.properties.{name}")
    for key in ("items", "additionalProperties"):
        sub = schema.get(key)
        if isinstance(sub, Mapping):
            problems += check_schema(sub, f"{where}.{key}")
    return problems


def _type_ok(value: Any, name: str) -> bool:
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "string":
        return isinstance(value, str)
    if name == "boolean":
        return isinstance(value, bool)
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return value is None


def _errors(value: Any, schema: Mapping[str, Any], path: str) -> Iterator[str]:
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else list(types)
        if not any(_type_ok(value, n) for n in names):
            yield f"{path}: expected {' or '.join(names)}"
            return
    if "enum" in schema and value not in schema["enum"]:
        yield f"{path}: must be one of {schema['enum']!r}"
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            yield f"{path}: must be >= {schema['minimum']}"
        if "maximum" in schema and value > schema["maximum"]:
            yield f"{path}: must be <= {schema['maximum']}"
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            yield f"{path}: must be at least {schema['minLength']} characters"
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            yield f"{path}: must be at most {schema['maxLength']} characters"
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for i, item in enumerate(value):
            yield from _errors(item, schema["items"], f"{path}[{i}]")
    if isinstance(value, dict):
        yield from _object_errors(value, schema, path)


def _object_errors(value: dict[str, Any], schema: Mapping[str, Any], path: str) -> Iterator[str]:
    props: Mapping[str, Any] = schema.get("properties") or {}
    for name in schema.get("required") or []:
        if name not in value:
            yield f"{path}.{name}: is required"
    extra = schema.get("additionalProperties", True)
    for name, item in value.items():
        if name in props:
            yield from _errors(item, props[name], f"{path}.{name}")
        elif extra is False:
            yield f"{path}.{name}: is not an allowed property"
        elif isinstance(extra, Mapping):
            yield from _errors(item, extra, f"{path}.{name}")


def validate(value: Any, schema: Mapping[str, Any], path: str = "Configuration") -> list[str]:
    """Every way *value* breaks *schema*, as ``"<path>: <problem>"`` strings."""
    return list(_errors(value, schema, path))


def with_defaults(value: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of *value* with each missing top-level property set to its schema ``default``."""
    result = dict(value)
    for name, sub in (schema.get("properties") or {}).items():
        if name not in result and isinstance(sub, Mapping) and "default" in sub:
            result[name] = copy.deepcopy(sub["default"])
    return result
