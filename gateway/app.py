"""``create_app(config)``: the aiohttp application, its shared state and its routes."""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import orjson
from aiohttp import web

from gateway import errors, proxy
from gateway.config.rules import RuleSet, load_rules
from gateway.config.settings import GatewayConfig
from gateway.migration.endpoint import MigrationPage
from gateway.migration.tally import Tally
from gateway.routes import routes_of
from gateway.serving import http_checks
from gateway.serving.client_limits import CLIENT_LIMITS, ClientLimits
from gateway.serving.error_response import ErrorBase, render_error
from gateway.serving.server import ERROR_BASE
from gateway.telemetry import metrics
from gateway.transport.factory import make_transport
from gateway.transport.seam import Transport

log = logging.getLogger("gateway")

CONFIG = web.AppKey("config", GatewayConfig)
# The pipeline in force, inside the holder a reload swaps it in (the app itself is frozen).
LIVE = web.AppKey("live", proxy.Live)
TRANSPORT = web.AppKey("transport", Transport)
# /migration and /migration.json, served wherever /metrics is (one per process, shared by the
# main app and the --metrics-listen app).
MIGRATION_PAGE = web.AppKey("migration_page", MigrationPage)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
OWN_ENDPOINTS = web.AppKey("own_endpoints", dict[str, Handler])
_ERROR_DOC = re.compile(r"/errors/[0-9]{5}")

_expect = http_checks.expect_nothing  # no route sends 100 Continue before its checks passed


async def _upstream_transport(app: web.Application) -> AsyncIterator[None]:
    """One upstream transport per process, open for the app's lifetime (``cleanup_ctx``)."""
    transport = make_transport(app[CONFIG])
    app[TRANSPORT] = transport
    try:
        yield
    finally:
        await transport.close()


def _json(body: object, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render every error as Twilio's error JSON, never as an HTML page; refuse what
    :mod:`gateway.serving.http_checks` refuses, and close the connection after an upgrade
    request."""
    response = await _handle_or_render(request, handler)
    if http_checks.closes_after(request):
        response.force_close()
    return response


def _public_base(request: web.Request) -> str:
    """Where an error body's ``more_info`` link points (worked out only for an error)."""
    live = request.app.get(LIVE)
    if live is not None:
        return live.pipeline.public_base(request)
    error_base = request.app.get(ERROR_BASE)
    return error_base.for_request(request) if error_base is not None else "/"


async def _handle_or_render(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        refusal = http_checks.refusal(request)
        if refusal is not None:
            raise refusal
        return await handler(request)
    except errors.GatewayError as exc:
        return render_error(exc, _public_base(request))
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.status == 404:
            return render_error(errors.RouteNotFound(exc.reason), _public_base(request))
        error = errors.BadRequest(exc.reason, status=exc.status)
        return render_error(error, _public_base(request))
    except Exception as exc:
        # The type only: the path and the message may carry what a client sent.
        log.error("unexpected error on %s: %s", request.method, type(exc).__name__, exc_info=exc)
        return render_error(errors.InternalError("Internal gateway error"), _public_base(request))


async def _dispatch(request: web.Request) -> web.StreamResponse:
    """The gateway's own endpoints by their exact raw path; everything else goes through the
    pipeline. Matching the raw path means ``/%6detrics`` is an unknown path like any other, so
    a deny rule in a proxy in front holds."""
    path = request.raw_path.partition("?")[0]
    own = request.app[OWN_ENDPOINTS].get(path)
    if own is None and _ERROR_DOC.fullmatch(path):
        own = _error_doc
    if own is None:
        return await proxy.handle(request, request.app[LIVE], request.app[TRANSPORT])
    if request.method not in ("GET", "HEAD"):  # HEAD: the GET's answer, its body left out
        raise errors.MethodNotAllowed(
            f"Method {request.method} is not allowed on {path}; allowed: GET, HEAD",
            headers={"Allow": "GET, HEAD"},
        )
    return await own(request)


async def _healthz(request: web.Request) -> web.Response:
    return _json({"status": "ok"})


async def _readyz(request: web.Request) -> web.Response:
    return _readiness(request.app)


def _readiness(app: web.Application) -> web.Response:
    """Ready once the gateway app ``app`` has its upstream transport open."""
    transport = app.get(TRANSPORT)
    ready = transport is not None and not transport.closed
    routes = len(routes_of(app[LIVE].pipeline.router))
    body = {"status": "ready" if ready else "starting", "rules": routes}
    return _json(body, 200 if ready else 503)


async def _error_doc(request: web.Request) -> web.Response:
    code = int(request.raw_path.partition("?")[0].rpartition("/")[2])
    found = errors.GATEWAY_CODES.get(code)
    if found is None:
        raise errors.RouteNotFound("No such gateway error code")
    title, text = found
    return _json({"code": code, "title": title, "description": text})


def _harden(
    app: web.Application, config: GatewayConfig | None, *, metrics_listener: bool = False
) -> None:
    """What every listener's app shares: the client limits and error base its runner applies,
    the ``Server`` header."""
    if config is not None:
        limits = ClientLimits.of_metrics if metrics_listener else ClientLimits.of
        app[CLIENT_LIMITS] = limits(config)
        app[ERROR_BASE] = ErrorBase(config.public_base_url, config.listen)
    app.on_response_prepare.append(http_checks.server_header)


def _handler_args(config: GatewayConfig | None) -> dict[str, object]:
    # A client that hangs up cancels its handler, which closes the upstream connection at once
    # instead of holding a pool slot until the upstream answers. aiohttp's own idle timer only
    # backs up gateway.serving.server's (its default keeps an idle connection for an hour). The
    # rest of a body that was refused unread is read and dropped for at most 10 s (aiohttp's
    # default), and never for longer than a body may pause. A compressed request body is
    # forwarded as it came, with its Content-Encoding: decoded, it would reach the upstream under
    # a header that no longer describes it (and the size cap would apply to the decoded bytes).
    args: dict[str, object] = {"handler_cancellation": True, "auto_decompress": False}
    if config is not None:
        args["keepalive_timeout"] = config.client_keepalive_timeout + config.client_header_timeout
        args["lingering_time"] = min(10.0, config.client_body_timeout)
    return args


def create_metrics_app(
    config: GatewayConfig | None = None,
    page: MigrationPage | None = None,
    probes_of: web.Application | None = None,
) -> web.Application:
    """A bare app serving ``/metrics`` and, given ``page``, the migration page (for
    ``--metrics-listen``); with ``probes_of`` (the gateway app) that app's ``/healthz`` and
    ``/readyz`` too. The listener has a cap of its own, so a flood on the main address blinds
    neither the metrics nor the probes."""
    app = web.Application(middlewares=[error_middleware], handler_args=_handler_args(config))
    _harden(app, config, metrics_listener=True)
    app.router.add_get("/metrics", metrics.metrics_handler, expect_handler=_expect)
    if page is not None:  # HEAD answered as the GET would be, without the body
        app.router.add_get("/migration", page.html, expect_handler=_expect)
        app.router.add_get("/migration.json", page.json, expect_handler=_expect)
    if probes_of is not None:
        gateway = probes_of

        async def readyz(request: web.Request) -> web.Response:
            return _readiness(gateway)

        app.router.add_get("/healthz", _healthz, expect_handler=_expect)
        app.router.add_get("/readyz", readyz, expect_handler=_expect)
    return app


def _migration_page(live: proxy.Live) -> MigrationPage:
    """The migration page of the pipeline in force (a reload shows at the next view)."""

    def state() -> tuple[GatewayConfig, Tally, Callable[[], float]]:
        pipeline = live.pipeline
        return pipeline.config, pipeline.recorder.tally, pipeline.clock

    return MigrationPage(state)


async def _close_page(app: web.Application) -> None:
    await app[MIGRATION_PAGE].close()


def create_app(
    config: GatewayConfig,
    ruleset: RuleSet | None = None,
    *,
    clock: Callable[[], float] = time.time,
    chance: Callable[[], float] = random.random,
) -> web.Application:
    """The gateway application for ``config`` (rules loaded from ``config.rules``).

    Raises :class:`~gateway.config.rules.RuleError` for rules that do not validate against
    ``config``. ``clock`` and ``chance`` are injectable for tests of brownout windows.
    """
    rules = ruleset if ruleset is not None else load_rules(config.rules)
    app = web.Application(
        middlewares=[error_middleware],
        client_max_size=config.max_body_size,
        handler_args=_handler_args(config),
    )
    app[CONFIG] = config
    pipeline = proxy.Pipeline.build(config, rules, clock=clock, chance=chance)
    app[LIVE] = proxy.Live(pipeline)
    app[MIGRATION_PAGE] = page = _migration_page(app[LIVE])
    _harden(app, config)
    app.cleanup_ctx.append(_upstream_transport)
    app.on_cleanup.append(_close_page)
    metrics.publish_static(
        {route.name: route.sunset for route in routes_of(pipeline.router) if route.sunset}
    )
    own: dict[str, Handler] = {"/healthz": _healthz, "/readyz": _readyz}
    if config.metrics_public:  # the page shows SIDs and names as /metrics does
        own["/metrics"] = metrics.metrics_handler
        own["/migration"] = page.html
        own["/migration.json"] = page.json
    app[OWN_ENDPOINTS] = own
    app.router.add_route("*", "/{tail:.*}", _dispatch, expect_handler=_expect)
    return app
