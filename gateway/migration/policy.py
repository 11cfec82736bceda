"""The decision on a deprecated call: forward it with its headers, or refuse it (pure; no I/O).

The request path calls one function, :meth:`Policy.decide`, with the shape
``decide(route, consumer, now) -> Forward(headers) | Refuse(error)``. Its answer depends on
nothing but the config, the time and the SID the caller claims, so every replica of a fleet
decides alike without sharing anything. In order:

1. a route that is not deprecated: forwarded, no headers (``Gateway-Rehearsal`` is ignored);
2. ``Gateway-Rehearsal: cutoff`` or ``brownout``: the answer of a cut-off or of a brownout, now,
   whatever the dates (any other value: 400); never forwarded, never a deprecated call;
3. a listed consumer past its ``cutoff``, or an unlisted one past ``unknown_consumers_cutoff``:
   410 with code 88013, no ``Retry-After`` (a cut-off is permanent);
4. a brownout window in force that covers the consumer (and the consumer is not exempt, and the
   window's share picks this call): 410 with code 88010 and ``Retry-After``;
5. otherwise forwarded, with ``Deprecation``, ``Sunset`` (a listed consumer's own cut-off when
   it has one) and the ``Link`` headers.

Everything that can be worked out from the config is worked out once, in :meth:`Policy.build`,
so a decision is a few dictionary lookups.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from gateway.config.consumers import Consumer
from gateway.config.policy import Window
from gateway.config.settings import GatewayConfig
from gateway.errors import BadRequest, Brownout, CutOff, GatewayError
from gateway.migration.brownout import refuses_sid
from gateway.migration.consumers import FIXED_WORDS, SidCache
from gateway.migration.deprecation import DeprecationHeaders, sunset_value

REHEARSAL_HEADER = "Gateway-Rehearsal"
# Why a call was refused: the `reason` label of gateway_policy_refusals_total (a brownout's
# refusals count in gateway_brownout_rejections_total instead).
CUTOFF = "cutoff"
UNKNOWN_CONSUMER = "unknown_consumer"
REHEARSAL = "rehearsal"
BROWNOUT = "brownout"
REASONS = (CUTOFF, UNKNOWN_CONSUMER, REHEARSAL)
# The refusal metric's consumer label of a well-formed SID that is not on the list.
UNLISTED = "unlisted"
NO_WINDOW_RETRY_AFTER = 3600  # a brownout rehearsal's Retry-After when no window is in force

Headers = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class Forward:
    """Forward the call; add ``headers`` to its answer (``Link`` added, the others set)."""

    headers: Headers


@dataclass(frozen=True, slots=True)
class Refuse:
    """Answer ``error`` without forwarding; its answer carries ``headers`` as well.

    ``reason`` is one of :data:`REASONS`, :data:`BROWNOUT`, or ``""`` for a malformed
    rehearsal header; ``consumer`` is the bounded label it is counted under."""

    error: GatewayError
    headers: Headers
    reason: str
    consumer: str

    @property
    def rehearsal(self) -> bool:
        """Answering a ``Gateway-Rehearsal`` header (a malformed one too): not a deprecated
        call, so it is not counted as one."""
        return self.reason in (REHEARSAL, "")


NOT_DEPRECATED = Forward(())


class PolicyRoute(Protocol):
    """What the decision needs of a route (:class:`gateway.routes.Route`)."""

    @property
    def deprecation(self) -> DeprecationHeaders | None: ...


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling, as the request says: its ``Authorization`` and ``Gateway-Rehearsal``."""

    authorization: str | None
    rehearsal: str | None = None


@dataclass(frozen=True, slots=True)
class Listed:
    """A listed consumer as the decision needs it: dates as Unix seconds."""

    name: str
    group: str | None
    cutoff: float | None
    exempt_until: float | None
    sunset: str | None  # the Sunset header value of its own cut-off


@dataclass(frozen=True, slots=True)
class CompiledWindow:
    """A brownout window with its selectors resolved to listed names."""

    window: Window
    start: float
    end: float
    everyone: bool
    names: frozenset[str]  # listed consumers it covers (by name, SID or group)
    excepted: frozenset[str]  # listed consumers it never refuses

    def covers(self, listed: Listed | None) -> bool:
        if listed is None:
            return self.everyone
        name = listed.name
        return (self.everyone or name in self.names) and name not in self.excepted


def resolve(window: Window, consumers: Sequence[Consumer]) -> CompiledWindow:
    """``window`` with its names, SIDs and groups resolved to the listed consumers' names."""
    targets = window.targets

    def named(selectors: Sequence[str]) -> frozenset[str]:
        chosen = set(selectors)
        return frozenset(
            c.name
            for c in consumers
            if c.name in chosen or (c.group and c.group in chosen) or chosen & set(c.sids)
        )

    everyone = targets is None or targets.everyone
    names = frozenset() if targets is None else named((*targets.consumers, *targets.groups))
    excepted = frozenset() if targets is None else named(targets.excepted)
    return CompiledWindow(
        window, window.start.timestamp(), window.end.timestamp(), everyone, names, excepted
    )


def _listed(consumer: Consumer) -> Listed:
    cutoff = consumer.cutoff
    return Listed(
        consumer.name,
        consumer.group,
        cutoff.timestamp() if cutoff else None,
        consumer.exempt_until.timestamp() if consumer.exempt_until else None,
        sunset_value(cutoff) if cutoff else None,
    )


class Policy:
    """The migration policy of one config, compiled; :meth:`decide` answers each call."""

    __slots__ = ("by_sid", "windows", "unknown_cutoff", "chance", "_simple", "_sids")

    def __init__(
        self,
        by_sid: dict[str, Listed],
        windows: tuple[CompiledWindow, ...],
        unknown_cutoff: float | None,
        chance: Callable[[], float] = random.random,
    ) -> None:
        self.by_sid = by_sid
        self.windows = windows
        self.unknown_cutoff = unknown_cutoff
        self.chance = chance
        # Nothing to decide but the headers: no list, no window, no closing date.
        self._simple = not by_sid and not windows and unknown_cutoff is None
        self._sids = SidCache()

    @classmethod
    def build(cls, config: GatewayConfig, chance: Callable[[], float] = random.random) -> Policy:
        consumers = config.consumers
        by_sid = {sid: _listed(c) for c in consumers for sid in c.sids}
        windows = tuple(resolve(window, consumers) for window in config.schedule.windows)
        cutoff = config.unknown_consumers_cutoff
        return cls(by_sid, windows, cutoff.timestamp() if cutoff else None, chance)

    def decide(
        self, route: PolicyRoute, successor: str, caller: Caller, now: float
    ) -> Forward | Refuse:
        """Forward or refuse a call on ``route`` (``successor``: the v1 URL of what it
        addressed) by ``caller`` at Unix time ``now``."""
        deprecation = route.deprecation
        if deprecation is None:
            return NOT_DEPRECATED
        if self._simple and caller.rehearsal is None:
            return Forward(deprecation.pairs(successor))
        sid = self._sids.sid(caller.authorization)
        listed = self.by_sid.get(sid)
        headers = deprecation.pairs(successor, listed.sunset if listed else None)
        label = listed.name if listed else sid if sid in FIXED_WORDS else UNLISTED
        if caller.rehearsal is not None:
            return self._rehearse(caller.rehearsal, listed, sid, headers, successor, label, now)
        if listed is not None:
            if listed.cutoff is not None and now >= listed.cutoff:
                return Refuse(cut_off(successor, listed), headers, CUTOFF, label)
        elif self.unknown_cutoff is not None and now >= self.unknown_cutoff:
            return Refuse(cut_off(successor, None), headers, UNKNOWN_CONSUMER, label)
        if self.windows and (listed is None or not self.exempt(listed, now)):
            for compiled in self.windows:
                if (
                    compiled.start <= now < compiled.end
                    and compiled.covers(listed)
                    and refuses_sid(compiled.window, sid, now, self.chance)
                ):
                    return Refuse(browned_out(successor, compiled, now), headers, BROWNOUT, label)
        return Forward(headers)

    @staticmethod
    def exempt(listed: Listed, now: float) -> bool:
        return listed.exempt_until is not None and now < listed.exempt_until

    def active_window(self, listed: Listed | None, now: float) -> CompiledWindow | None:
        """The first window in force at ``now`` that covers ``listed`` (None: unlisted)."""
        for compiled in self.windows:
            if compiled.start <= now < compiled.end and compiled.covers(listed):
                return compiled
        return None

    def _rehearse(
        self,
        value: str,
        listed: Listed | None,
        sid: str,
        headers: Headers,
        successor: str,
        label: str,
        now: float,
    ) -> Refuse:
        kind = value.strip().lower()
        if kind == "cutoff":
            return Refuse(cut_off(successor, listed), headers, REHEARSAL, label)
        if kind == "brownout":
            brownout = browned_out(successor, self.active_window(listed, now), now)
            return Refuse(brownout, headers, REHEARSAL, label)
        error = BadRequest(
            f"The {REHEARSAL_HEADER} header must be 'cutoff' or 'brownout'; "
            "the request was not forwarded"
        )
        return Refuse(error, headers, "", label)


def cut_off(successor: str, listed: Listed | None) -> CutOff:
    """The 410 of a cut-off: a listed consumer's own, or the closed list's."""
    if listed is not None:
        why = "This app's cut-off date has passed: the Preview Marketplace API no longer answers it"
    else:
        why = (
            "The Preview Marketplace API no longer answers apps that are not on the gateway's "
            "migration list"
        )
    return CutOff(f"{why}; call the Marketplace v1 API instead: {successor}")


def browned_out(successor: str, compiled: CompiledWindow | None, now: float) -> Brownout:
    """The 410 of a brownout window (or of a rehearsal with no window in force)."""
    if compiled is None:
        until, retry_after = "", NO_WINDOW_RETRY_AFTER
    else:
        until = f" until {compiled.window.end.isoformat()}"
        retry_after = compiled.window.retry_after(now)
    return Brownout(
        f"The Preview Marketplace API is switched off during a scheduled brownout{until}; "
        f"call the Marketplace v1 API instead: {successor}",
        headers={"Retry-After": str(retry_after)},
    )
