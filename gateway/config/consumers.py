"""The consumer list and the targeted brownout windows as data: the file-only keys
``[[consumers]]`` and ``[[brownout]]`` (pure; no I/O).

Each parser takes the value ``tomllib`` read (a list of tables) and returns frozen values, or
raises :class:`EntryError` naming the entry (its index, from 1, and its ``name``) and the key.
:func:`check_references` then checks what one key says about another: every name, SID or group a
window selects is on the list, no SID is both in ``consumer_names`` and on the list.
:mod:`gateway.migration.policy` acts on these values.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import partial
from typing import Any

from gateway.config.instants import iso, parse_instant
from gateway.config.parsers import CONSUMER_NAME, SID
from gateway.config.policy import Targets, Window

OWNER_MAX = 200  # characters of an entry's free-text owner

# Consumer labels the gateway writes itself (gateway.migration.consumers and .policy): a listed
# name may not be one of them, or its calls could not be told from theirs.
RESERVED_NAMES = frozenset(
    {"anonymous", "unrecognized", "bearer", "other", "disabled", "unauthenticated", "unlisted"}
)


class EntryError(ValueError):
    """One entry of an array of tables is invalid; the message names the entry and the key."""


@dataclass(frozen=True, slots=True)
class Consumer:
    """One app on the migration list: its SIDs (an account SID and its API keys), its label,
    and its own dates."""

    name: str
    sids: tuple[str, ...]
    group: str | None = None
    owner: str | None = None
    cutoff: datetime | None = None
    exempt_until: datetime | None = None


def _where(table: str, index: int, name: object = None) -> str:
    """How an error names an entry: ``[[consumers]] entry 2 (name 'web')``."""
    named = f" (name {name!r})" if isinstance(name, str) and table == "consumers" else ""
    return f"[[{table}]] entry {index}{named}"


def _parsed(
    entry: Mapping[str, Any], parsers: Mapping[str, Callable[[Any], Any]], required: Sequence[str]
) -> dict[str, Any]:
    """Each key of ``entry`` parsed by its parser (the keys of ``parsers`` are the known
    ones, in the order an error lists them); a ``ValueError`` prefixed with the key at fault:
    an unknown key, a missing required one, or a bad value."""
    for key in entry:
        if key not in parsers:
            raise ValueError(f"key {key!r}: unknown key (known: {', '.join(parsers)})")
    for key in required:
        if key not in entry:
            raise ValueError(f"key {key!r}: missing")
    values: dict[str, Any] = {}
    for key, parse in parsers.items():
        if key in entry:
            try:
                values[key] = parse(entry[key])
            except ValueError as exc:
                raise ValueError(f"key {key!r}: {exc}") from None
    return values


def as_instant(raw: Any) -> datetime:
    """A TOML date-time or date, or an ISO 8601 string, as an aware UTC datetime."""
    if isinstance(raw, datetime):
        return (raw if raw.tzinfo is not None else raw.replace(tzinfo=UTC)).astimezone(UTC)
    if isinstance(raw, date):
        return datetime(raw.year, raw.month, raw.day, tzinfo=UTC)
    if isinstance(raw, str):
        return parse_instant(raw)
    raise ValueError(f"expected a date-time like 2026-12-15T00:00:00Z, got {raw!r}")


def _label(raw: Any, what: str) -> str:
    if not isinstance(raw, str) or not CONSUMER_NAME.fullmatch(raw):
        raise ValueError(f"expected a {what} of 1 to 64 of [A-Za-z0-9_.-], got {raw!r}")
    if raw.lower() in RESERVED_NAMES:
        raise ValueError(f"{raw!r} is a word the gateway uses itself; choose another {what}")
    return raw


def _sids(raw: Any) -> tuple[str, ...]:
    items = raw if isinstance(raw, list) else [raw]
    if not items:
        raise ValueError("expected at least one SID")
    for item in items:
        if not isinstance(item, str) or not SID.fullmatch(item):
            raise ValueError(
                f"expected an Account or API key SID (AC or SK and 32 hex digits), got {item!r}"
            )
    return tuple(items)


def _owner(raw: Any) -> str:
    if not isinstance(raw, str) or not raw.strip() or len(raw) > OWNER_MAX:
        raise ValueError(f"expected text of 1 to {OWNER_MAX} characters")
    if not raw.isprintable():
        raise ValueError("expected text without control characters or line breaks")
    return raw


_CONSUMER_PARSERS: dict[str, Callable[[Any], Any]] = {
    "sid": _sids,
    "name": partial(_label, what="name"),
    "group": partial(_label, what="group"),
    "owner": _owner,
    "cutoff": as_instant,
    "exempt_until": as_instant,
}


def _consumer(entry: Mapping[str, Any]) -> Consumer:
    """The entry as a Consumer, or a ``ValueError`` prefixed with the key at fault."""
    values = _parsed(entry, _CONSUMER_PARSERS, required=("sid", "name"))
    consumer = Consumer(
        name=values["name"],
        sids=values["sid"],
        group=values.get("group"),
        owner=values.get("owner"),
        cutoff=values.get("cutoff"),
        exempt_until=values.get("exempt_until"),
    )
    if consumer.cutoff and consumer.exempt_until and consumer.exempt_until > consumer.cutoff:
        raise ValueError(
            f"key 'exempt_until': {iso(consumer.exempt_until)} is later than the "
            f"consumer's cutoff {iso(consumer.cutoff)} (an exemption never "
            "outlives a cut-off)"
        )
    return consumer


def _entries(raw: Any, table: str) -> list[Mapping[str, Any]]:
    if not isinstance(raw, list):
        raise EntryError(f"[[{table}]]: expected an array of tables")
    for index, entry in enumerate(raw, 1):
        if not isinstance(entry, dict):
            raise EntryError(f"[[{table}]] entry {index}: expected a table")
    return raw


def parse_consumers(raw: Any) -> tuple[Consumer, ...]:
    """The ``[[consumers]]`` array; :class:`EntryError` for the first bad entry."""
    consumers: list[Consumer] = []
    owner_of_sid: dict[str, str] = {}
    names: set[str] = set()
    for index, entry in enumerate(_entries(raw, "consumers"), 1):
        where = _where("consumers", index, entry.get("name"))
        try:
            consumer = _consumer(entry)
        except ValueError as exc:
            raise EntryError(f"{where}, {exc}") from None
        if consumer.name in names:
            raise EntryError(f"{where}, key 'name': {consumer.name!r} is listed twice")
        for sid in consumer.sids:
            if sid in owner_of_sid:
                raise EntryError(
                    f"{where}, key 'sid': {sid} is listed twice (also under {owner_of_sid[sid]!r})"
                )
            owner_of_sid[sid] = consumer.name
        names.add(consumer.name)
        consumers.append(consumer)
    return tuple(consumers)


def _selectors(raw: Any) -> tuple[str, ...]:
    items = raw if isinstance(raw, list) else [raw]
    for item in items:
        if not isinstance(item, str) or not item:
            raise ValueError(f"expected a list of names, SIDs or groups, got {raw!r}")
    return tuple(items)


def _percent(raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float) or not 0 < raw <= 100:
        raise ValueError(f"expected a percentage in (0, 100], got {raw!r}")
    return float(raw)


_BROWNOUT_PARSERS: dict[str, Callable[[Any], Any]] = {
    "start": as_instant,
    "end": as_instant,
    "percent": _percent,
    "consumers": _selectors,
    "groups": _selectors,
    "except": _selectors,
}


def _window(entry: Mapping[str, Any]) -> Window:
    """The entry as a Window, or a ``ValueError`` prefixed with the key at fault."""
    values = _parsed(entry, _BROWNOUT_PARSERS, required=("start", "end"))
    if values["end"] <= values["start"]:
        raise ValueError("key 'end': not after start")
    targets = Targets(
        values.get("consumers", ()), values.get("groups", ()), values.get("except", ())
    )
    return Window(values["start"], values["end"], values.get("percent", 100.0), targets)


def parse_brownout_tables(raw: Any) -> tuple[Window, ...]:
    """The ``[[brownout]]`` array; :class:`EntryError` for the first bad entry."""
    windows = []
    for index, entry in enumerate(_entries(raw, "brownout"), 1):
        try:
            windows.append(_window(entry))
        except ValueError as exc:
            raise EntryError(f"{_where('brownout', index)}, {exc}") from None
    return tuple(windows)


def check_references(
    consumers: Sequence[Consumer], windows: Sequence[Window], names: Mapping[str, str]
) -> None:
    """What the keys say about each other; :class:`EntryError` naming the entry and key.

    Every name, SID or group a ``[[brownout]]`` window selects must be on the list (so that a
    typo cannot silently target nobody); a SID may not be named both in ``consumer_names`` and
    on the list.
    """
    known = {c.name for c in consumers} | {sid for c in consumers for sid in c.sids}
    groups = {c.group for c in consumers if c.group}
    for index, consumer in enumerate(consumers, 1):
        for sid in consumer.sids:
            if sid in names:
                raise EntryError(
                    f"{_where('consumers', index, consumer.name)}, key 'sid': {sid} is also in "
                    "consumer_names; name it in one place ([[consumers]] supersedes "
                    "consumer_names)"
                )
    for index, window in enumerate(windows, 1):
        targets = window.targets
        if targets is None:
            continue
        for key, selected, allowed in (
            ("consumers", targets.consumers, known),
            ("groups", targets.groups, groups),
            ("except", targets.excepted, known | groups),
        ):
            for item in selected:
                if item not in allowed:
                    what = "group" if key == "groups" else "name, SID or group"
                    raise EntryError(
                        f"{_where('brownout', index)}, key {key!r}: {item!r} is not a {what} "
                        "of [[consumers]]"
                    )
