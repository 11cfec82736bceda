"""Request parameter parsing: form fields, Twilio booleans, JSON text, path SIDs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson
from aiohttp import web

from .errors import invalid_parameter, not_found
from .sids import is_sid

Form = Mapping[str, Any]


async def read_form(request: web.Request) -> Form:
    """The ``application/x-www-form-urlencoded`` body (empty for other content types).

    A body aiohttp cannot parse as a form (e.g. multipart without a boundary) is a 400, as
    Twilio answers a malformed request, never a 500.
    """
    try:
        return await request.post()
    except ValueError as exc:
        raise invalid_parameter(f"The request body could not be read as a form: {exc}") from exc


def text_field(form: Form, name: str) -> str | None:
    """An optional plain-text form field; 400 if it is a file upload."""
    value = form.get(name)
    if value is not None and not isinstance(value, str):
        raise invalid_parameter(f"{name} must be a text field")
    return value


def required_text(form: Form, name: str) -> str:
    """A required plain-text form field; 400 when missing."""
    value = text_field(form, name)
    if value is None:
        raise invalid_parameter(f"Missing required parameter {name} in the post body")
    return value


def parse_bool(name: str, value: str) -> bool:
    """Twilio booleans, any letter case (twilio-python 9.x sends ``true``, 6-8.x ``True``)."""
    lowered = value.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    raise invalid_parameter(f"{name} must be true or false, got {value!r}")


def json_object_field(form: Form, name: str) -> dict[str, Any] | None:
    """A form field holding JSON text that must decode to an object."""
    raw = text_field(form, name)
    if raw is None:
        return None
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise invalid_parameter(f"{name} must be valid JSON text, got {raw[:80]!r}") from None
    if not isinstance(value, dict):
        raise invalid_parameter(f"{name} must be a JSON object, got {type(value).__name__}")
    return value


def required_sid(form: Form, name: str, prefix: str) -> str:
    """A required form field holding a SID with *prefix*; 400 if missing or malformed."""
    value = required_text(form, name)
    if not is_sid(value, prefix):
        raise invalid_parameter(f"{name} must be {prefix} followed by 32 hex digits, got {value!r}")
    return value


def path_sid(request: web.Request, name: str, prefix: str) -> str:
    """A SID from the URL path; a malformed one is 404 (no such resource), as Twilio answers."""
    value = request.match_info[name]
    if not is_sid(value, prefix):
        raise not_found(request.path)
    return value


async def read_json(request: web.Request) -> Any:
    """A JSON request body; 400 when it is missing or not JSON."""
    raw = await request.read()
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise invalid_parameter("The request body must be JSON (application/json)") from None
