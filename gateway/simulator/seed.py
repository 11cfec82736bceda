"""Seed data: the catalogue, API keys, listings and optional pre-installed add-ons.

A seed file is JSON::

    {
      "api_keys": {"SK...": "AC..."},
      "available_add_ons": [{"sid": "XB...", "friendly_name": ..., "description": ...,
                             "pricing_type": ..., "configuration_schema": {...},
                             "extensions": [{"sid": "XF...", "friendly_name": ...,
                                             "product_name": ..., "unique_name": ...}]}],
      "installed_add_ons": [{"sid": "XE...", "account_sid": "AC...",
                             "available_add_on_sid": "XB...", "unique_name": ...,
                             "configuration": {...}, "enabled_extensions": ["lookup-api"],
                             "date_created": "2016-04-07T23:52:28Z", "assigned_to": ["PN..."]}],
      "listings": [{"sid": "XB...", "account_sid": "AC..." | null, "module_info": {...}, ...}]
    }

Only ``available_add_ons`` is required. A listing with ``account_sid`` null is visible to
every account.
"""

from __future__ import annotations

import importlib.resources
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from .config_schema import check_schema, validate, with_defaults
from .models import LISTING_FIELDS, AvailableAddOn, AvailableExtension
from .sids import is_sid

DEFAULT_SEED = "default_seed.json"
_TOP_LEVEL = {"description", "api_keys", "available_add_ons", "installed_add_ons", "listings"}


@dataclass(frozen=True, slots=True)
class InstalledSeed:
    """An add-on installed before the simulator starts."""

    sid: str
    account_sid: str
    available_add_on_sid: str
    unique_name: str
    configuration: dict[str, Any]
    enabled_extensions: tuple[str, ...]
    date_created: datetime
    assigned_to: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ListingSeed:
    """A Listing present at start (``data`` holds the seven object fields)."""

    sid: str
    account_sid: str | None
    data: dict[str, dict[str, Any]]


@dataclass(frozen=True, slots=True)
class Seed:
    """Everything a simulator starts from. Build with :func:`load_seed` or :func:`parse_seed`."""

    available_add_ons: tuple[AvailableAddOn, ...]
    api_keys: Mapping[str, str] = field(default_factory=dict)
    installed_add_ons: tuple[InstalledSeed, ...] = ()
    listings: tuple[ListingSeed, ...] = ()


class _Bad(Exception):
    pass


def _get(obj: Mapping[str, Any], key: str, kind: type, where: str, *, required: bool = True) -> Any:
    if key not in obj or obj[key] is None:
        if required:
            raise _Bad(f"{where}.{key} is required")
        return None
    value = obj[key]
    if not isinstance(value, kind) or (kind is str and not value):
        raise _Bad(f"{where}.{key} must be a non-empty {kind.__name__}")
    return value


def _sid(obj: Mapping[str, Any], key: str, prefix: str, where: str) -> str:
    value: str = _get(obj, key, str, where)
    if not is_sid(value, prefix):
        raise _Bad(f"{where}.{key} must be {prefix} followed by 32 hex digits, got {value!r}")
    return value


def _items(data: Mapping[str, Any], key: str, required: bool = False) -> list[Mapping[str, Any]]:
    items = _get(data, key, list, "seed", required=required) or []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise _Bad(f"{key}[{i}] must be an object")
    return list(items)


def _available(obj: Mapping[str, Any], where: str) -> AvailableAddOn:
    schema = _get(obj, "configuration_schema", dict, where)
    problems = check_schema(schema, f"{where}.configuration_schema")
    if problems:
        raise _Bad("; ".join(problems))
    extensions = []
    for j, ext in enumerate(_get(obj, "extensions", list, where)):
        ew = f"{where}.extensions[{j}]"
        if not isinstance(ext, dict):
            raise _Bad(f"{ew} must be an object")
        extensions.append(
            AvailableExtension(
                sid=_sid(ext, "sid", "XF", ew),
                friendly_name=_get(ext, "friendly_name", str, ew),
                product_name=_get(ext, "product_name", str, ew),
                unique_name=_get(ext, "unique_name", str, ew),
            )
        )
    return AvailableAddOn(
        sid=_sid(obj, "sid", "XB", where),
        friendly_name=_get(obj, "friendly_name", str, where),
        description=_get(obj, "description", str, where),
        pricing_type=_get(obj, "pricing_type", str, where),
        configuration_schema=schema,
        extensions=tuple(extensions),
    )


def _installed(
    obj: Mapping[str, Any], where: str, catalogue: Mapping[str, AvailableAddOn]
) -> InstalledSeed:
    available_sid = _sid(obj, "available_add_on_sid", "XB", where)
    if available_sid not in catalogue:
        raise _Bad(f"{where}.available_add_on_sid {available_sid} is not in available_add_ons")
    available = catalogue[available_sid]
    config = with_defaults(
        _get(obj, "configuration", dict, where, required=False) or {},
        available.configuration_schema,
    )
    problems = validate(config, available.configuration_schema, f"{where}.configuration")
    enabled = tuple(_get(obj, "enabled_extensions", list, where, required=False) or ())
    known = {e.unique_name for e in available.extensions}
    problems += [f"{where}.enabled_extensions: unknown {n!r}" for n in enabled if n not in known]
    assigned = tuple(_get(obj, "assigned_to", list, where, required=False) or ())
    problems += [
        f"{where}.assigned_to: {pn!r} is not a PN sid"
        for pn in assigned
        if not isinstance(pn, str) or not is_sid(pn, "PN")
    ]
    if problems:
        raise _Bad("; ".join(problems))
    created = _get(obj, "date_created", str, where, required=False)
    try:
        date = (
            datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            if created
            else datetime.now(UTC).replace(microsecond=0)
        )
    except ValueError:
        raise _Bad(f"{where}.date_created must look like 2016-04-07T23:52:28Z") from None
    return InstalledSeed(
        sid=_sid(obj, "sid", "XE", where),
        account_sid=_sid(obj, "account_sid", "AC", where),
        available_add_on_sid=available_sid,
        unique_name=_get(obj, "unique_name", str, where),
        configuration=config,
        enabled_extensions=enabled,
        date_created=date,
        assigned_to=assigned,
    )


def _listing(obj: Mapping[str, Any], where: str) -> ListingSeed:
    owner = obj.get("account_sid")
    if owner is not None:
        owner = _sid(obj, "account_sid", "AC", where)
    data = {name: _get(obj, name, dict, where, required=False) or {} for name in LISTING_FIELDS}
    return ListingSeed(sid=_sid(obj, "sid", "XB", where), account_sid=owner, data=data)


def _parse(data: Any) -> Seed:
    if not isinstance(data, dict):
        raise _Bad("the top level must be a JSON object")
    unknown = sorted(set(data) - _TOP_LEVEL)
    if unknown:
        raise _Bad(f"unknown top-level keys {unknown} (allowed: {sorted(_TOP_LEVEL)})")
    available = [
        _available(obj, f"available_add_ons[{i}]")
        for i, obj in enumerate(_items(data, "available_add_ons", required=True))
    ]
    catalogue = {a.sid: a for a in available}
    installed = [
        _installed(obj, f"installed_add_ons[{i}]", catalogue)
        for i, obj in enumerate(_items(data, "installed_add_ons"))
    ]
    listings = [_listing(obj, f"listings[{i}]") for i, obj in enumerate(_items(data, "listings"))]
    api_keys = _get(data, "api_keys", dict, "seed", required=False) or {}
    for key, account in api_keys.items():
        if not is_sid(key, "SK") or not isinstance(account, str) or not is_sid(account, "AC"):
            raise _Bad(f"api_keys must map SK sids to AC sids, got {key!r}: {account!r}")
    sids = [a.sid for a in available] + [x.sid for x in installed] + [x.sid for x in listings]
    sids += [e.sid for a in available for e in a.extensions]
    duplicates = sorted({s for s in sids if sids.count(s) > 1})
    if duplicates:
        raise _Bad(f"duplicate sids {duplicates}")
    names = [(x.account_sid, x.unique_name) for x in installed]
    if len(set(names)) != len(names):
        raise _Bad("installed_add_ons: unique_name must be unique per account")
    return Seed(
        available_add_ons=tuple(available),
        api_keys=dict(api_keys),
        installed_add_ons=tuple(installed),
        listings=tuple(listings),
    )


def parse_seed(data: Any, source: str = "<seed>") -> Seed:
    """Build a :class:`Seed` from decoded JSON; ``ValueError`` naming *source* if invalid."""
    try:
        return _parse(data)
    except _Bad as bad:
        raise ValueError(f"invalid simulator seed {source}: {bad}") from None


def load_seed(path: str | os.PathLike[str] | None = None) -> Seed:
    """Read a seed JSON file; ``None`` reads the default seed shipped in this package."""
    if path is None:
        source = f"gateway/simulator/{DEFAULT_SEED} (package data)"
        raw = importlib.resources.files(__package__).joinpath(DEFAULT_SEED).read_bytes()
    else:
        source = os.fspath(path)
        try:
            with open(path, "rb") as handle:
                raw = handle.read()
        except OSError as exc:
            raise ValueError(f"cannot read simulator seed {source}: {exc.strerror}") from exc
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"invalid simulator seed {source}: not valid JSON ({exc})") from None
    return parse_seed(data, source)
