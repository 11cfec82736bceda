"""The migration policy as data: when the deprecated routes were deprecated and go away, and the
scheduled brownout windows (pure; no I/O).

A brownout schedule is written ``START/END[@PERCENT]``, several separated by ``;`` or ``,``;
times are ISO 8601 (UTC when no zone is given), ``PERCENT`` (default 100) is the share of
deprecated requests refused during the window. :mod:`gateway.migration` acts on these values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from gateway.config.instants import parse_instant


@dataclass(frozen=True, slots=True)
class DeprecationPolicy:
    """When the deprecated routes were deprecated and when they go away, and where to read."""

    deprecation: datetime
    sunset: datetime
    deprecation_link: str | None = None
    sunset_link: str | None = None

    def __post_init__(self) -> None:
        if self.sunset < self.deprecation:
            raise ValueError(
                f"sunset ({self.sunset.isoformat()}) is earlier than deprecation "
                f"({self.deprecation.isoformat()})"
            )

    def overridden(
        self, deprecation: datetime | None, sunset: datetime | None
    ) -> DeprecationPolicy:
        """This policy with one rule's own dates, where it sets them (the links stay)."""
        if deprecation is None and sunset is None:
            return self
        return DeprecationPolicy(
            deprecation or self.deprecation,
            sunset or self.sunset,
            self.deprecation_link,
            self.sunset_link,
        )


@dataclass(frozen=True, slots=True)
class Targets:
    """Whom a ``[[brownout]]`` window refuses: consumers by name or SID, and groups (neither:
    every caller), except the names, SIDs or groups in ``excepted``. Written as in the file;
    checked against the consumer list by :func:`gateway.config.consumers.check_references`."""

    consumers: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    excepted: tuple[str, ...] = ()

    @property
    def everyone(self) -> bool:
        return not self.consumers and not self.groups


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime
    percentage: float = 100.0
    targets: Targets | None = None  # None: the string form, every caller

    def contains(self, now: float) -> bool:
        return self.start.timestamp() <= now < self.end.timestamp()

    def retry_after(self, now: float) -> int:
        """Whole seconds until the window ends (at least 1)."""
        return max(1, math.ceil(self.end.timestamp() - now))


@dataclass(frozen=True, slots=True)
class Schedule:
    windows: tuple[Window, ...] = ()

    def active(self, now: float) -> Window | None:
        """The window in force at Unix time ``now``, if any."""
        for window in self.windows:
            if window.contains(now):
                return window
        return None

    def upcoming(self, now: float) -> tuple[Window, ...]:
        """Windows not yet over at ``now``, in start order."""
        return tuple(
            w for w in sorted(self.windows, key=lambda w: w.start) if w.end.timestamp() > now
        )


def parse_schedule(text: str) -> Schedule:
    """Parse ``START/END[@PERCENT]`` items; raises ``ValueError`` naming the bad item."""
    windows = []
    for item in text.replace(";", ",").split(","):
        item = item.strip()
        if not item:
            continue
        span, _, percent_text = item.partition("@")
        start_text, sep, end_text = span.partition("/")
        if not sep:
            raise ValueError(f"brownout {item!r}: expected START/END[@PERCENT]")
        try:
            start, end = parse_instant(start_text), parse_instant(end_text)
            percentage = float(percent_text) if percent_text else 100.0
        except ValueError as exc:
            raise ValueError(f"brownout {item!r}: {exc}") from exc
        if end <= start:
            raise ValueError(f"brownout {item!r}: end is not after start")
        if not 0 < percentage <= 100:
            raise ValueError(f"brownout {item!r}: percentage must be in (0, 100]")
        windows.append(Window(start, end, percentage))
    return Schedule(tuple(windows))
