"""Who is calling: a bounded, secret-free consumer label from the ``Authorization`` header."""

from __future__ import annotations

import base64
import fcntl
from collections.abc import Mapping
from pathlib import Path

from gateway.config.parsers import SID

ANONYMOUS = "anonymous"
UNRECOGNIZED = "unrecognized"
BEARER = "bearer"
OTHER = "other"
DISABLED = "disabled"
UNAUTHENTICATED = "unauthenticated"
# What consumer_sid answers for a caller without a well-formed SID.
FIXED_WORDS = frozenset({ANONYMOUS, UNRECOGNIZED, BEARER})
_REFUSED_CREDENTIALS = frozenset({401, 403})
# 4xx answers that do not show the credentials were accepted: refused (401, 403), a proxy's
# own authentication (407), or rate limiting, which may come before any check (429).
_UNPROVEN_4XX = frozenset({401, 403, 407, 429})

_SID_CACHE = 1024  # distinct Authorization headers a SidCache remembers

# The file in the multiprocess metrics directory where --workers share the admitted labels.
LEDGER_NAME = "consumer-labels.txt"


def proves_credentials(upstream_status: int | None) -> bool:
    """Whether an upstream's answer shows it accepted the caller's credentials: 2xx, 3xx and
    4xx other than 401, 403, 407 and 429 (Twilio checks credentials before it validates a
    request). 5xx (an outage), 429, 1xx and no answer at all prove nothing."""
    if upstream_status is None or not 200 <= upstream_status < 500:
        return False
    return upstream_status not in _UNPROVEN_4XX


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
    return username if SID.fullmatch(username) else UNRECOGNIZED


class SidCache:
    """:func:`consumer_sid` remembered per ``Authorization`` header, so that a kept-alive
    client's base64 is decoded once. Bounded: emptied when full (the header holds a secret:
    never logged, never kept long)."""

    __slots__ = ("_sids",)

    def __init__(self) -> None:
        self._sids: dict[str, str] = {}

    def sid(self, authorization: str | None) -> str:
        """The SID (or fixed word) of ``authorization``; :data:`ANONYMOUS` for no header."""
        if authorization is None:
            return ANONYMOUS
        sid = self._sids.get(authorization)
        if sid is None:
            if len(self._sids) >= _SID_CACHE:
                self._sids.clear()
            sid = self._sids[authorization] = consumer_sid(authorization)
        return sid


class ConsumerLabels:
    """Maps SIDs to configured names and caps how many distinct labels the gateway emits.

    A SID becomes a label only once an upstream has accepted its credentials (an answer for
    which :func:`proves_credentials` holds), so a caller cannot fill the cap with made-up SIDs
    (not even while the upstream is down or rate limiting) or have calls counted against
    someone else's; an admitted SID keeps its label on any answer but 401 and 403. Under
    ``--workers N`` the workers share one cap through ``ledger``, a file in the metrics
    directory that lists the admitted labels (appended under an exclusive lock); it outlives
    a worker's restart. A SID on the ``[[consumers]]`` list
    (``listed``) is always labelled with its name, past the cap and before any upstream has
    seen it, since the config file bounds their number. Lives on the application, not at module
    level. A config reload makes a new one with :meth:`reconfigured`, which shares the labels
    admitted so far and the ledger, so the cap holds across reloads.
    """

    def __init__(
        self,
        names: Mapping[str, str],
        cap: int,
        enabled: bool,
        ledger: Path | None = None,
        admitted: set[str] | None = None,
        listed: frozenset[str] = frozenset(),
    ) -> None:
        self._names = dict(names)
        self._listed = listed  # SIDs on the [[consumers]] list: labelled by name, uncapped
        self._cap = cap
        self._enabled = enabled
        self._ledger = ledger
        self._admitted: set[str] = set() if admitted is None else admitted
        self._refused: set[str] = set()  # over the cap for good (admissions are never undone)
        self._sids = SidCache()

    def reconfigured(
        self,
        names: Mapping[str, str],
        cap: int,
        enabled: bool,
        listed: frozenset[str] = frozenset(),
    ) -> ConsumerLabels:
        """Labels with new names, cap, switch and list, counting against this one's admitted
        labels and ledger; labels it refused are weighed again against the new cap."""
        return ConsumerLabels(names, cap, enabled, self._ledger, self._admitted, listed)

    def label(self, authorization: str | None, upstream_status: int | None) -> tuple[str, bool]:
        """``(label, overflowed)`` for a request's ``Authorization`` header, given what the
        upstream answered (``None`` when it was not called)."""
        if not self._enabled:
            return DISABLED, False
        if upstream_status in _REFUSED_CREDENTIALS:
            return UNAUTHENTICATED, False
        sid = self._sids.sid(authorization)
        if sid in FIXED_WORDS:
            return sid, False
        if sid in self._listed:  # bounded by the config file: always labelled, past the cap
            return self._names[sid], False
        label = self._names.get(sid, sid)
        if label in self._admitted:
            return label, False
        if not proves_credentials(upstream_status):  # not (yet) shown to be a consumer...
            if self._ledger is not None and label not in self._refused and self._in_ledger(label):
                self._admitted.add(label)  # ...unless another worker admitted it
                return label, False
            return UNAUTHENTICATED, False
        if label in self._refused or not self._admit(label):
            if len(self._refused) < 10 * self._cap + 1000:
                self._refused.add(label)
            return OTHER, True
        self._admitted.add(label)
        return label, False

    def log_label(self, authorization: str | None, upstream_status: int | None) -> str:
        """The caller as the access log names it (no cap; refused credentials named so)."""
        if upstream_status in _REFUSED_CREDENTIALS:
            return UNAUTHENTICATED
        sid = self._sids.sid(authorization)
        return self._names.get(sid, sid)

    def _in_ledger(self, label: str) -> bool:
        """Whether the workers' ledger lists ``label`` (admitted by any worker)."""
        assert self._ledger is not None
        try:
            with open(self._ledger, encoding="ascii") as ledger:
                fcntl.flock(ledger, fcntl.LOCK_SH)  # released when the file is closed
                return label in ledger.read().split()
        except FileNotFoundError:
            return False

    def _admit(self, label: str) -> bool:
        """Whether ``label`` may be admitted: under the cap, counted gateway-wide."""
        if self._ledger is None:
            return len(self._admitted) < self._cap
        with open(self._ledger, "a+", encoding="ascii") as ledger:
            fcntl.flock(ledger, fcntl.LOCK_EX)  # released when the file is closed
            ledger.seek(0)
            listed = set(ledger.read().split())
            if label in listed:
                return True
            if len(listed) >= self._cap:
                return False
            ledger.write(label + "\n")
            return True
