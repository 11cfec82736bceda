"""Scheduled brownouts: windows during which deprecated routes answer 410 (pure; no I/O).

A schedule is written ``START/END[@PERCENT]``, several separated by ``;`` or ``,``; times are
ISO 8601 (UTC when no zone is given), ``PERCENT`` (default 100) is the share of deprecated
requests refused during the window.

Which requests a partial window refuses is decided by :func:`refuses`: a caller with an Account
or API key SID gets one answer per minute, the same from every replica (see there).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from gateway.consumers import consumer_sid
from gateway.instants import parse_instant

CONSISTENT_SECONDS = 60  # a SID's answer holds for this slice of a partial window


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime
    percentage: float = 100.0

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


def refuses(
    window: Window, authorization: str | None, now: float, chance: Callable[[], float]
) -> bool:
    """Whether ``window`` refuses a deprecated request made at ``now`` with ``authorization``.

    A full window (100 %) refuses everything. In a partial one, a caller identified by an
    Account or API key SID gets the same answer for a whole minute of the window (the minutes
    counted from its start), on every replica alike: the answer is a hash of the SID, the
    window's start and the minute, so the replicas share no state, a retry within the minute
    does not get through, and a sequence of calls within the minute either works or fails as a
    whole. From minute to minute the answers are independent, so every caller meets the
    brownout during about ``percentage`` % of the window, and over many callers and minutes
    about ``percentage`` % of calls are refused. A caller without a SID (anonymous, a bearer
    token, an unrecognised credential) cannot be told apart from others like it, so its
    requests are refused at random, each with probability ``percentage`` % (``chance()`` is a
    uniform draw from [0, 1)).
    """
    if window.percentage >= 100:
        return True
    sid = consumer_sid(authorization)
    if not sid.startswith(("AC", "SK")):
        return chance() * 100 < window.percentage
    minute = int((now - window.start.timestamp()) // CONSISTENT_SECONDS)
    key = f"{sid}|{window.start.isoformat()}|{minute}".encode()
    digest = hashlib.blake2b(key, digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 * 100 < window.percentage
