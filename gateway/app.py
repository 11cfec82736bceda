"""``create_app(config)``: the aiohttp application, its shared state and its routes."""

from __future__ import annotations

import logging
import random
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import orjson
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, LineTooLong
from aiohttp.web_protocol import RequestHandler

from gateway import errors, metrics, proxy
from gateway.config import GatewayConfig
from gateway.public_url import local_host
from gateway.rules import RuleError, RuleSet, load_rules

log = logging.getLogger("gateway")

CONFIG = web.AppKey("config", GatewayConfig)
PIPELINE = web.AppKey("pipeline", proxy.Pipeline)
SESSION = web.AppKey("session", aiohttp.ClientSession)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _ssl_context(config: GatewayConfig) -> ssl.SSLContext | bool:
    if not config.tls_verify:
        log.warning(
            "TLS verification of upstreams is OFF: credentials can be intercepted; "
            "use this only against a test upstream"
        )
        return False
    if config.ca_bundle is not None:
        return ssl.create_default_context(cafile=str(config.ca_bundle))
    return True


async def _client_session(app: web.Application) -> AsyncIterator[None]:
    """One ``ClientSession`` per process, open for the app's lifetime (``cleanup_ctx``)."""
    config = app[CONFIG]
    connector = aiohttp.TCPConnector(
        limit=config.pool_size,
        limit_per_host=config.pool_size_per_host,
        keepalive_timeout=config.keepalive_timeout,
        ssl=_ssl_context(config),
    )
    async with aiohttp.ClientSession(
        connector=connector,
        cookie_jar=aiohttp.DummyCookieJar(),  # never carry one consumer's cookies to another
        auto_decompress=True,
        skip_auto_headers=("User-Agent",),
    ) as session:
        # aiohttp silently resends an idempotent request (DELETE too) once when the connection
        # drops; upstream.forward decides retries itself (GET only), so switch that off.
        session._retry_connection = False
        app[SESSION] = session
        yield


def _error_response(request: web.Request, error: errors.GatewayError) -> web.Response:
    base = request.app[PIPELINE].public_base(request)
    response = web.Response(
        status=error.status,
        body=errors.error_body(error.status, error.code, error.message, base),
        content_type="application/json",
    )
    response.headers.extend(error.headers)
    return response


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render every error as Twilio's error JSON, never as an HTML page."""
    try:
        return await handler(request)
    except errors.GatewayError as exc:
        return _error_response(request, exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        error_class = errors.RouteNotFound if exc.status == 404 else errors.BadRequest
        error = error_class(exc.reason)
        error.status = exc.status
        return _error_response(request, error)
    except Exception:
        log.exception("unexpected error on %s %s", request.method, request.path[:200])
        return _error_response(request, errors.InternalError("Internal gateway error"))


async def _forward(request: web.Request) -> web.StreamResponse:
    return await proxy.handle(request, request.app[PIPELINE], request.app[SESSION])


async def _healthz(request: web.Request) -> web.Response:
    return _json({"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    app = request.app
    session = app.get(SESSION)
    ready = session is not None and not session.closed
    body = {"status": "ready" if ready else "starting", "rules": len(app[PIPELINE].ruleset.rules)}
    return _json(body, 200 if ready else 503)


async def _error_doc(request: web.Request) -> web.Response:
    try:
        code = int(request.match_info["code"])
        title, text = errors.GATEWAY_CODES[code]
    except (ValueError, KeyError) as exc:
        raise errors.RouteNotFound("No such gateway error code") from exc
    return _json({"code": code, "title": title, "description": text})


def create_metrics_app() -> web.Application:
    """A bare app serving only ``/metrics`` (for ``--metrics-listen``)."""
    app = web.Application()
    app.router.add_get("/metrics", metrics.metrics_handler, allow_head=False)
    return app


def create_app(
    config: GatewayConfig,
    ruleset: RuleSet | None = None,
    *,
    clock: Callable[[], float] = time.time,
    chance: Callable[[], float] = random.random,
) -> web.Application:
    """The gateway application for ``config`` (rules loaded from ``config.rules_dir``).

    ``clock`` and ``chance`` are injectable for tests of brownout windows.
    """
    rules = ruleset if ruleset is not None else load_rules(config.rules_dir)
    app = web.Application(
        middlewares=[error_middleware],
        client_max_size=config.max_body_size,
        # A client that hangs up cancels its handler, which closes the upstream connection
        # at once instead of holding a pool slot until the upstream answers.
        handler_args={"handler_cancellation": True},
    )
    app[CONFIG] = config
    try:
        app[PIPELINE] = proxy.Pipeline.build(config, rules, clock=clock, chance=chance)
    except ValueError as exc:
        raise RuleError(str(exc)) from exc
    app.cleanup_ctx.append(_client_session)
    metrics.publish_static(dict(app[PIPELINE].sunsets))
    app.router.add_get("/metrics", metrics.metrics_handler, allow_head=False)
    app.router.add_get("/healthz", _healthz, allow_head=False)
    app.router.add_get("/readyz", _readyz, allow_head=False)
    app.router.add_get("/errors/{code}", _error_doc, allow_head=False)
    app.router.add_route("*", "/{tail:.*}", _forward)
    return app


class _TwilioErrorProtocol(RequestHandler):
    """aiohttp's connection handler, answering requests that fail to parse in Twilio's shape.

    aiohttp answers those itself (before any middleware) with a plain-text 400 that quotes the
    offending bytes, and logs them with a traceback: a header line holding ``Authorization``
    would land in the log. Here they get Twilio's error JSON, 431 for a line or header block
    over the parser's limits, and one log line naming only the error class.
    """

    __slots__ = ()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # as aiohttp: the response is under way already
            raise ConnectionError("Response is sent already, cannot send an error response")
        manager = self._manager
        base = "/"
        if isinstance(manager, _TwilioErrorServer):  # no headers to trust: the socket's address
            sockname = request.transport.get_extra_info("sockname") if request.transport else None
            base = (
                manager.error_base or f"{request.scheme}://{local_host(sockname, *manager.listen)}"
            )
        if status >= 500:
            log.error("unexpected error on %s", request.remote, exc_info=exc)
            code, text = errors.InternalError.code, "Internal gateway error"
        else:
            quiet = isinstance(exc, BadHttpMethod) and self._request_count == 1
            (log.debug if quiet else log.warning)(
                "refused a malformed request from %s: %s", request.remote, type(exc).__name__
            )
            code, text = (
                errors.BadRequest.code,
                "The request is not valid HTTP; it was not forwarded",
            )
            if isinstance(exc, LineTooLong) or "Too many headers" in str(exc):
                status = 431
                text = "The request line or headers are larger than the gateway accepts"
        response = web.Response(
            status=status,
            body=errors.error_body(status, code, text, base),
            content_type="application/json",
        )
        response.force_close()
        return response


class _TwilioErrorServer(web.Server):
    error_base: str | None = None  # the configured public base URL
    listen: tuple[str, int] = ("127.0.0.1", 8080)

    def __call__(self) -> RequestHandler:
        return _TwilioErrorProtocol(self, loop=self._loop, **self._kwargs)


class GatewayRunner(web.AppRunner):
    """``web.AppRunner`` whose connections answer unparseable requests in Twilio's shape."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _TwilioErrorServer
        assert isinstance(server, _TwilioErrorServer)
        config = self.app[CONFIG]
        server.error_base = config.public_base_url
        server.listen = (config.listen_host, config.listen_port)
        return server
