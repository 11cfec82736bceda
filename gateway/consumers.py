"""Who is calling: a bounded, secret-free consumer label from the ``Authorization`` header."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping

_SID = re.compile(r"(?:AC|SK)[0-9a-fA-F]{32}")

ANONYMOUS = "anonymous"
UNRECOGNIZED = "unrecognized"
BEARER = "bearer"
OTHER = "other"
DISABLED = "disabled"


def consumer_sid(authorization: str | None) -> str:
    """The Account SID or API key SID of a Basic credential; never the secret.

    Anything that is not a well-formed ``AC``/``SK`` SID collapses to a fixed word, so a
    secret typed into the username field can never become a label or a log field.
    """
    if not authorization:
        return ANONYMOUS
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() == "bearer":
        return BEARER
    if scheme.lower() != "basic":
        return UNRECOGNIZED
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except ValueError:  # binascii.Error, UnicodeDecodeError, and non-ASCII text in the header
        return UNRECOGNIZED
    username = decoded.partition(":")[0]
    return username if _SID.fullmatch(username) else UNRECOGNIZED


class ConsumerLabels:
    """Maps SIDs to configured names and caps how many distinct labels one process emits.

    Lives on the application (one per process), not at module level.
    """

    def __init__(self, names: Mapping[str, str], cap: int, enabled: bool) -> None:
        self._names = dict(names)
        self._cap = cap
        self._enabled = enabled
        self._seen: set[str] = set()

    def label(self, authorization: str | None) -> tuple[str, bool]:
        """``(label, overflowed)`` for a request's ``Authorization`` header."""
        if not self._enabled:
            return DISABLED, False
        sid = consumer_sid(authorization)
        label = self._names.get(sid, sid)
        if label in self._seen:
            return label, False
        if len(self._seen) >= self._cap:
            return OTHER, True
        self._seen.add(label)
        return label, False

    def name_only(self, authorization: str | None) -> str:
        """The label without counting it against the cap (for logs)."""
        sid = consumer_sid(authorization)
        return self._names.get(sid, sid)


def parse_names(text: str) -> dict[str, str]:
    """``SID=name`` pairs separated by commas."""
    names: dict[str, str] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        sid, sep, name = item.partition("=")
        sid, name = sid.strip(), name.strip()
        if not sep or not _SID.fullmatch(sid) or not re.fullmatch(r"[A-Za-z0-9_.\-]{1,64}", name):
            raise ValueError(
                f"expected SID=name (an AC/SK SID, a name of [A-Za-z0-9_.-]), got {item!r}"
            )
        names[sid] = name
    return names
