"""Twilio SIDs: two upper-case letters followed by 32 hex digits."""

from __future__ import annotations

import re
import uuid

_HEX32 = re.compile(r"[0-9a-fA-F]{32}")


def new_sid(prefix: str) -> str:
    """Return a fresh random SID such as ``XE`` + 32 lower-case hex digits."""
    return prefix + uuid.uuid4().hex


def is_sid(value: str, prefix: str) -> bool:
    """True when *value* is *prefix* + 32 hex digits (the specs' ``^XX[0-9a-fA-F]{32}$``)."""
    return len(value) == 34 and value.startswith(prefix) and _HEX32.fullmatch(value[2:]) is not None
