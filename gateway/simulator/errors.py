"""Twilio error JSON and the middleware that renders every failure as one.

Body shape: ``{"code", "message", "more_info", "status"}`` (the v1 spec's
``TwilioServiceErrorResponse`` without ``params``). Never ``type``+``title`` as well:
twilio-python 9.10+ would raise ``TwilioServiceException`` instead of ``TwilioRestException``.

Codes used: 20001 invalid parameter, 20003 authenticate, 20004 method not allowed,
20404 not found, 20409 conflict (our pick; no Twilio document names the v1 409 code),
20500 internal error, 21481 invalid PageToken.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

if TYPE_CHECKING:
    from aiohttp.typedefs import Middleware

_log = logging.getLogger(__name__)

MORE_INFO = "https://www.twilio.com/docs/errors/{code}"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class SimulatorError(Exception):
    """An HTTP failure carrying a Twilio error code; rendered by :func:`error_middleware`."""

    def __init__(
        self, status: int, code: int, message: str, *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers: dict[str, str] = dict(headers or {})

    def body(self) -> dict[str, Any]:
        """The Twilio error JSON object."""
        return {
            "code": self.code,
            "message": self.message,
            "more_info": MORE_INFO.format(code=self.code),
            "status": self.status,
        }

    def response(self) -> web.Response:
        """This error as an ``application/json`` response."""
        resp = json_response(self.body(), status=self.status)
        resp.headers.update(self.headers)
        return resp


def not_found(path: str) -> SimulatorError:
    """404 / 20404 naming the requested path, as Twilio does."""
    return SimulatorError(404, 20404, f"The requested resource {path} was not found")


def invalid_parameter(message: str) -> SimulatorError:
    """400 / 20001 for a missing or malformed request parameter."""
    return SimulatorError(400, 20001, message)


def conflict(message: str) -> SimulatorError:
    """409 (documented for CreateInstalledAddOn in the v1 spec)."""
    return SimulatorError(409, 20409, message)


def invalid_page_token() -> SimulatorError:
    """400 / 21481, Twilio's "Invalid PageToken"."""
    return SimulatorError(
        400,
        21481,
        "Invalid PageToken: use the next_page_url / previous_page_url returned by the API",
    )


def json_response(payload: Any, *, status: int = 200) -> web.Response:
    """Encode *payload* with orjson as an ``application/json`` response."""
    return web.Response(body=orjson.dumps(payload), status=status, content_type="application/json")


def _from_http_exception(request: web.Request, exc: web.HTTPException) -> SimulatorError:
    if isinstance(exc, web.HTTPNotFound):
        return not_found(request.path)
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        return SimulatorError(
            405,
            20004,
            f"Method {request.method} not allowed on {request.path}; allowed: {allowed}",
            headers={"Allow": allowed},
        )
    return SimulatorError(exc.status, exc.status, exc.reason)


def error_middleware(authenticate: Callable[[web.Request], str]) -> Middleware:
    """Outermost middleware: every failure leaves as Twilio error JSON.

    *authenticate* runs before unknown-route and wrong-method answers, so that
    unauthenticated callers learn nothing about the route table (auth is required on everything).
    """

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except SimulatorError as err:
            return err.response()
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            try:
                authenticate(request)
            except SimulatorError as err:
                return err.response()
            return _from_http_exception(request, exc).response()
        except Exception:
            _log.exception("simulator: unhandled error on %s %s", request.method, request.path)
            return SimulatorError(500, 20500, "An internal server error has occurred").response()

    return middleware
