"""Moments in time as the config and the rule files write them, and as the tools and the
migration page show them (pure; no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import overload


def parse_instant(text: str) -> datetime:
    """An ISO 8601 date or date-time; a missing zone means UTC; ``Z`` is accepted."""
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"expected an ISO 8601 date or date-time like 2024-12-01T00:00:00Z, got {text!r}"
        ) from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _utc(moment: datetime | float) -> datetime:
    if isinstance(moment, datetime):
        return moment.astimezone(UTC)
    return datetime.fromtimestamp(moment, UTC)


@overload
def iso(moment: datetime | float) -> str: ...
@overload
def iso(moment: datetime | float | None) -> str | None: ...
def iso(moment: datetime | float | None) -> str | None:
    """An aware datetime or Unix seconds as ISO 8601 in UTC with a ``Z``, to the second
    (``2026-12-15T00:00:00Z``, which :func:`parse_instant` reads back); None for None."""
    return None if moment is None else _utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def day(moment: datetime | float) -> str:
    """The UTC day of ``moment``: ``2026-12-15``."""
    return _utc(moment).strftime("%Y-%m-%d")


def days_until(moment: datetime | float | None, now: float) -> float | None:
    """Days from Unix time ``now`` to ``moment`` (negative once it has passed), to 0.1 day;
    None for None."""
    if moment is None:
        return None
    seconds = moment.timestamp() if isinstance(moment, datetime) else moment
    return round((seconds - now) / 86400, 1)
