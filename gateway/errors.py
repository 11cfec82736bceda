"""Errors the gateway answers itself, each rendered as Twilio's error JSON.

    GatewayError                      (status, Twilio-shaped body)
    ├── RouteNotFound           404   20404  no rule matches, or a path parameter was rejected
    ├── MethodNotAllowed        405   20004  a rule matches the path but not the method
    ├── BadRequest              400   88007  a request the gateway refuses to forward
    ├── RequestTooLarge         413   88004  request body over ``max_body_size``
    ├── RequestTimeout          408   88008  the client sent its request too slowly
    ├── GatewayBusy             503   88006  connections or bodies in memory at their cap
    ├── UpstreamUnavailable     502   88001  connection refused or reset
    ├── UpstreamBadResponse     502   88003  the upstream answered something unusable
    ├── UpstreamResponseTooLarge 502  88005  upstream body over ``max_response_size``
    ├── UpstreamTimeout         504   88002  connect, read or total deadline passed
    ├── Brownout                410   88010  a scheduled brownout window is active
    ├── CutOff                  410   88013  the consumer's cut-off (or the closed list's) passed
    ├── ProxyRefused            403   88011  the proxy front door refuses a request or target
    ├── ProxyBusy               503   88012  the proxy front door has its maximum connections
    └── InternalError           500   88099  an unexpected exception inside the gateway

Every field is set where the error is raised: ``status`` (a class default, or given, as for a
400-family refusal answered 431), ``headers`` sent with the error and ``kind``, the upstream
failure's metric label. Nothing fills them in later. An error whose ``closes_connection`` is true
(a class default, or given) is answered with ``Connection: close``: what follows it on the
connection cannot be trusted. :mod:`gateway.serving.error_response` renders
them, for the middleware, the pipeline and unparseable requests alike.

Codes below 60000 are Twilio's own; the 88xxx codes are the gateway's. docs/errors.md lists
them all in a table that scripts/gen_docs.py writes from these classes. ``more_info`` for Twilio
codes points at Twilio's error pages and for gateway codes at ``/errors/<code>`` on the gateway.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

TWILIO_ERROR_DOCS = "https://www.twilio.com/docs/errors/"

# code -> (title, explanation); served at /errors/<code> and listed in docs/errors.md.
GATEWAY_CODES: Mapping[int, tuple[str, str]] = {
    88001: (
        "Upstream unavailable",
        "The gateway could not connect to the upstream, or the connection was reset.",
    ),
    88002: ("Upstream timeout", "The upstream did not answer within the configured deadline."),
    88003: ("Bad upstream response", "The upstream sent a response the gateway cannot use."),
    88004: ("Request body too large", "The request body is over the configured limit."),
    88006: (
        "Gateway busy",
        "The gateway is at its limit of client connections, or of request or upstream response "
        "bodies held in memory; retry shortly.",
    ),
    88005: ("Upstream response too large", "The upstream body is over the configured limit."),
    88007: ("Bad request", "The gateway refused to forward a malformed request."),
    88008: (
        "Request timeout",
        "The client took too long to send its request line and headers or its body.",
    ),
    88010: ("Brownout", "The deprecated route is switched off during a scheduled brownout."),
    88013: (
        "Cut off",
        "The deprecated route no longer answers this consumer: its cut-off date has passed, or "
        "the list of consumers that may still call it is closed. Call the Marketplace v1 API.",
    ),
    88011: (
        "Proxy request refused",
        "The proxy front door accepts only CONNECT to the intercepted hosts and to the hosts "
        "allowed for tunnelling, on their allowed ports.",
    ),
    88012: ("Proxy busy", "The proxy front door has its maximum number of connections open."),
    88099: ("Internal gateway error", "An unexpected error inside the gateway."),
}


# Every ``kind`` an upstream failure is raised with: the label values of the
# gateway_upstream_failures_total metric, listed in its help and on the dashboard.
FAILURE_KINDS = (
    "dns",  # the upstream's host name did not resolve
    "refused",  # the connection was refused
    "tls",  # the upstream's certificate did not verify
    "reset",  # the upstream closed or reset the connection
    "timeout",  # a connect, read or total deadline passed
    "truncated",  # the body ended before its announced length
    "bad_response",  # a malformed response or content coding
    "invalid_json",  # a JSON body with URLs to rewrite that did not parse
    "too_large",  # a body over max_response_size
)


class GatewayError(Exception):
    """An error the gateway answers itself with a Twilio-shaped JSON body."""

    status: int = 500
    code: int = 88099
    closes_connection: bool = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
        kind: str = "",
        closes_connection: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status
        if closes_connection is not None:
            self.closes_connection = closes_connection
        self.headers: Mapping[str, str] = headers or {}
        self.kind = kind  # for upstream failures, one of FAILURE_KINDS (the metric's label)


class RouteNotFound(GatewayError):
    """Twilio's own code: no rule matches the path, or a path parameter was refused (a ``..``
    or encoded separator, or a value outside its spec pattern)."""

    status = 404
    code = 20404


class MethodNotAllowed(GatewayError):
    """Twilio's own code: a rule matches the path but not the method; ``Allow`` lists the
    methods."""

    status = 405
    code = 20004


class BadRequest(GatewayError):
    status = 400
    code = 88007


class RequestTooLarge(GatewayError):
    status = 413
    code = 88004


class RequestTimeout(GatewayError):
    status = 408
    code = 88008
    closes_connection = True  # the body was not read to its end


class GatewayBusy(GatewayError):
    status = 503
    code = 88006


class UpstreamUnavailable(GatewayError):
    status = 502
    code = 88001


class UpstreamBadResponse(GatewayError):
    status = 502
    code = 88003


class UpstreamResponseTooLarge(GatewayError):
    status = 502
    code = 88005


class UpstreamTimeout(GatewayError):
    status = 504
    code = 88002


class Brownout(GatewayError):
    status = 410
    code = 88010


class CutOff(GatewayError):
    status = 410
    code = 88013


class ProxyRefused(GatewayError):
    status = 403
    code = 88011


class ProxyBusy(GatewayError):
    status = 503
    code = 88012


class InternalError(GatewayError):
    status = 500
    code = 88099


def more_info_url(code: int, public_base: str) -> str:
    """Where a client reads about ``code``: Twilio's page, or the gateway's own for 88xxx."""
    if code in GATEWAY_CODES:
        return f"{public_base.rstrip('/')}/errors/{code}"
    return f"{TWILIO_ERROR_DOCS}{code}"


def error_body(status: int, code: int, message: str, public_base: str) -> bytes:
    """Twilio's error JSON: ``code``, ``message``, ``more_info``, ``status``."""
    return orjson.dumps(
        {
            "code": code,
            "message": message,
            "more_info": more_info_url(code, public_base),
            "status": status,
        }
    )
