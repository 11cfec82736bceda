"""HTTP Basic authentication the way Twilio does it.

The username is an Account SID (``AC`` + 32 hex; any non-empty password is accepted, the
simulator has no auth tokens) or an API key SID (``SK`` + 32 hex) listed in the seed's
``api_keys`` map, which names the key's account. Anything else is 401 / 20003 with
``WWW-Authenticate: Basic realm="Twilio API"``.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping

from .errors import SimulatorError
from .sids import is_sid

CHALLENGE = {"WWW-Authenticate": 'Basic realm="Twilio API"'}


def unauthenticated() -> SimulatorError:
    """401 / 20003 "Authenticate", with the Basic challenge header."""
    return SimulatorError(401, 20003, "Authenticate", headers=CHALLENGE)


def account_for(authorization: str | None, api_keys: Mapping[str, str]) -> str:
    """Return the Account SID an ``Authorization`` header authenticates, else raise 401."""
    if not authorization:
        raise unauthenticated()
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        raise unauthenticated()
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except ValueError:  # not base64 (binascii.Error), not ASCII, or bytes that are not UTF-8
        raise unauthenticated() from None
    username, sep, password = decoded.partition(":")
    if not sep or not password:
        raise unauthenticated()
    if is_sid(username, "AC"):
        return username
    if is_sid(username, "SK") and username in api_keys:
        return api_keys[username]
    raise unauthenticated()
