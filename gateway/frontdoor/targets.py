"""What the proxy front door does with a request target (pure; no I/O).

A CONNECT target is authority-form, ``host:port``. It is *intercepted* when the host is one the
CA may vouch for and the port is 443, *tunnelled* when it matches a ``--proxy-tunnel-hosts``
pattern, and *refused* otherwise (as is every target that is not a clean ``host:port``).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from gateway.config.hosts import HostPattern, Target


class Outcome(enum.Enum):
    """The three answers to a CONNECT (also the values of the metric's ``outcome`` label)."""

    INTERCEPTED = "intercepted"
    TUNNELLED = "tunnelled"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class Policy:
    """The front door's rules: which hosts to intercept and which to tunnel."""

    intercepted: frozenset[str]
    tunnelled: tuple[HostPattern, ...]

    @classmethod
    def of(cls, intercepted: Iterable[str], tunnelled: Iterable[HostPattern]) -> Policy:
        return cls(frozenset(h.lower() for h in intercepted), tuple(tunnelled))

    def decide(self, target: Target) -> Outcome:
        if target.host in self.intercepted:
            return Outcome.INTERCEPTED if target.port == 443 else Outcome.REFUSED
        if any(pattern.matches(target) for pattern in self.tunnelled):
            return Outcome.TUNNELLED
        return Outcome.REFUSED
