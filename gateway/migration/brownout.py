"""Scheduled brownouts: during a window (:class:`gateway.config.policy.Window`), deprecated
routes answer 410 (pure; no I/O).

Which requests a partial window refuses is decided by :func:`refuses`: a caller with an Account
or API key SID gets one answer per minute, the same from every replica (see there).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from gateway.config.policy import Window
from gateway.migration.consumers import consumer_sid

CONSISTENT_SECONDS = 60  # a SID's answer holds for this slice of a partial window


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
    return refuses_sid(window, consumer_sid(authorization), now, chance)


def refuses_sid(window: Window, sid: str, now: float, chance: Callable[[], float]) -> bool:
    """:func:`refuses` for a caller whose SID (or fixed word) is already known."""
    if window.percentage >= 100:
        return True
    if not sid.startswith(("AC", "SK")):
        return chance() * 100 < window.percentage
    minute = int((now - window.start.timestamp()) // CONSISTENT_SECONDS)
    key = f"{sid}|{window.start.isoformat()}|{minute}".encode()
    digest = hashlib.blake2b(key, digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64 * 100 < window.percentage
