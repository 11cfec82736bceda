"""Where each consumer stands, and what is coming (pure; no I/O).

One row per consumer, listed or observed, with its stage; and the coming policy events in date
order: brownout windows with the consumers they cover, and cut-offs. ``gateway consumers``, the
migration page (``/migration``, ``/migration.json``) and ``gateway brownout plan`` all build
their tables here, from the config and from counts read elsewhere (metrics, Prometheus, or the
process's own tally).

Stages, first match wins: ``cut_off`` (a listed consumer past its ``cutoff``), ``exempt``
(before its ``exempt_until``), ``quiet`` (no deprecated call for ``quiet_days``: ready to cut
off), ``calling``; and ``unknown`` for a consumer observed calling but not on the list.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from gateway.config.consumers import Consumer
from gateway.config.instants import day, days_until, iso
from gateway.config.parsers import SID
from gateway.config.policy import Window
from gateway.migration.policy import Listed, resolve

QUIET_DAYS = 14
CALLING, QUIET, EXEMPT, CUT_OFF, UNKNOWN = "calling", "quiet", "exempt", "cut_off", "unknown"
STAGES = (CALLING, QUIET, EXEMPT, CUT_OFF, UNKNOWN)


@dataclass(frozen=True, slots=True)
class Standing:
    """One consumer's row."""

    name: str
    sids: tuple[str, ...]
    group: str | None
    owner: str | None
    stage: str  # one of STAGES
    deprecated_calls: int
    last_call: float | None  # Unix seconds of its latest deprecated call
    cutoff: datetime | None
    exempt_until: datetime | None

    @property
    def listed(self) -> bool:
        return self.stage != UNKNOWN

    @property
    def stage_text(self) -> str:
        """The stage as people read it: ``exempt until DATE``, ``cut off since DATE``."""
        if self.stage == EXEMPT and self.exempt_until is not None:
            return f"exempt until {day(self.exempt_until)}"
        if self.stage == CUT_OFF and self.cutoff is not None:
            return f"cut off since {day(self.cutoff)}"
        return self.stage

    def days_left(self, now: float) -> float | None:
        """Days until its cut-off (negative once passed), to 0.1 day."""
        return days_until(self.cutoff, now)

    @property
    def called_after_cutoff(self) -> bool:
        """Still making deprecated calls (being refused) after its cut-off: the app is broken."""
        return (
            self.stage == CUT_OFF
            and self.cutoff is not None
            and self.last_call is not None
            and self.last_call >= self.cutoff.timestamp()
        )

    def to_json(self, now: float) -> dict[str, Any]:
        return {
            "sid": self.sids[0] if self.sids else None,
            "sids": list(self.sids),
            "name": self.name,
            "group": self.group,
            "owner": self.owner,
            "stage": self.stage,
            "stage_text": self.stage_text,
            "deprecated_calls": self.deprecated_calls,
            "last_deprecated_call": iso(self.last_call),
            "cutoff": iso(self.cutoff),
            "days_left": self.days_left(now),
            "exempt_until": iso(self.exempt_until),
        }


def _stage(consumer: Consumer, last_call: float | None, now: float, quiet_days: float) -> str:
    if consumer.cutoff is not None and now >= consumer.cutoff.timestamp():
        return CUT_OFF
    if consumer.exempt_until is not None and now < consumer.exempt_until.timestamp():
        return EXEMPT
    if last_call is None or now - last_call >= quiet_days * 86400:
        return QUIET
    return CALLING


def standings(
    consumers: Sequence[Consumer],
    calls: Mapping[str, float],
    last_seen: Mapping[str, float],
    now: float,
    quiet_days: float = QUIET_DAYS,
) -> list[Standing]:
    """The listed consumers in list order, then every other label observed calling (most calls
    first). ``calls`` and ``last_seen`` are keyed by consumer label (a listed name, a SID, a
    ``consumer_names`` name or a fixed word such as ``anonymous``)."""
    rows = []
    for consumer in consumers:
        last = last_seen.get(consumer.name)
        rows.append(
            Standing(
                consumer.name,
                consumer.sids,
                consumer.group,
                consumer.owner,
                _stage(consumer, last, now, quiet_days),
                round(calls.get(consumer.name, 0)),
                last,
                consumer.cutoff,
                consumer.exempt_until,
            )
        )
    listed = {consumer.name for consumer in consumers}
    observed = {label for label, count in calls.items() if round(count) > 0} - listed
    for label in sorted(observed, key=lambda label: (-calls[label], label)):
        sids = (label,) if SID.fullmatch(label) else ()
        last = last_seen.get(label)
        rows.append(
            Standing(label, sids, None, None, UNKNOWN, round(calls[label]), last, None, None)
        )
    return rows


@dataclass(frozen=True, slots=True)
class Event:
    """A coming policy event: a brownout window, a consumer's cut-off, or the list closing."""

    at: datetime
    kind: str  # brownout, cutoff, unknown_cutoff
    title: str
    covers: tuple[str, ...]  # the listed consumers it affects
    everyone_else: bool  # it also affects callers not on the list
    end: datetime | None = None
    percent: float | None = None
    exempt: tuple[str, ...] = ()  # covered by a window's selectors, but exempt at its start

    def to_json(self) -> dict[str, Any]:
        return {
            "at": iso(self.at),
            "kind": self.kind,
            "title": self.title,
            "end": iso(self.end),
            "percent": self.percent,
            "consumers": list(self.covers),
            "unlisted_callers": self.everyone_else,
            "exempt": list(self.exempt),
        }


def selectors_text(window: Window) -> str:
    """A window's selectors as written: ``every caller`` or ``consumers a, b; groups g``."""
    targets = window.targets
    if targets is None or targets.everyone:
        parts = ["every caller"]
    else:
        parts = []
        if targets.consumers:
            parts.append("consumers " + ", ".join(targets.consumers))
        if targets.groups:
            parts.append("groups " + ", ".join(targets.groups))
    if targets is not None and targets.excepted:
        parts.append("except " + ", ".join(targets.excepted))
    return "; ".join(parts)


def coverage(
    window: Window, consumers: Sequence[Consumer]
) -> tuple[tuple[str, ...], tuple[str, ...], bool]:
    """Whom ``window`` refuses, at its start: (listed names, listed names exempt then, whether
    unlisted callers too). A consumer already cut off by then is left out: it is refused
    anyway."""
    compiled = resolve(window, consumers)
    start = window.start.timestamp()
    covered, exempt = [], []
    for consumer in consumers:
        listed = Listed(consumer.name, consumer.group, None, None, None)
        if not compiled.covers(listed):
            continue
        if consumer.cutoff is not None and consumer.cutoff.timestamp() <= start:
            continue
        if consumer.exempt_until is not None and consumer.exempt_until.timestamp() > start:
            exempt.append(consumer.name)
        else:
            covered.append(consumer.name)
    return tuple(covered), tuple(exempt), compiled.everyone


def upcoming(
    consumers: Sequence[Consumer],
    windows: Sequence[Window],
    unknown_cutoff: datetime | None,
    now: float,
) -> list[Event]:
    """Brownout windows not yet over and cut-offs still to come, in date order."""
    events = []
    for window in windows:
        if window.end.timestamp() <= now:
            continue
        covers, exempt, everyone = coverage(window, consumers)
        title = f"brownout ({window.percentage:g} %): {selectors_text(window)}"
        events.append(
            Event(
                window.start,
                "brownout",
                title,
                covers,
                everyone,
                window.end,
                window.percentage,
                exempt,
            )
        )
    for consumer in consumers:
        if consumer.cutoff is not None and consumer.cutoff.timestamp() > now:
            title = f"cut-off of {consumer.name}"
            events.append(Event(consumer.cutoff, "cutoff", title, (consumer.name,), False))
    if unknown_cutoff is not None and unknown_cutoff.timestamp() > now:
        title = "the list closes: callers not on it are cut off"
        events.append(Event(unknown_cutoff, "unknown_cutoff", title, (), True))
    return sorted(events, key=lambda event: (event.at, event.kind, event.title))
