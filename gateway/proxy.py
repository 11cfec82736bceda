"""The request pipeline, top to bottom: match, (brownout), rewrite the request, forward,
rewrite the response, add headers, record."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from gateway import metrics, request_rewrite, response_rewrite, upstream
from gateway.access_log import AccessLog
from gateway.brownout import refuses
from gateway.config import GatewayConfig
from gateway.consumers import ConsumerLabels
from gateway.error_response import render_error
from gateway.errors import BadRequest, Brownout, GatewayError, RequestTooLarge
from gateway.frontdoor.door import front_door, intercepted_host
from gateway.headers import inbound, refusal
from gateway.models import RouteMatch, UpstreamResponse
from gateway.public_url import TrustedProxies, local_host, public_base
from gateway.recorder import Exchange, Recorder
from gateway.routes import Route, compile_routes
from gateway.routing import Router
from gateway.rules import RuleSet


@dataclass(frozen=True, slots=True)
class Pipeline:
    """Everything a request needs that can be worked out once at start-up."""

    config: GatewayConfig
    router: Router[Route]
    limits: upstream.Limits
    recorder: Recorder
    trusted_proxies: TrustedProxies | None
    clock: Callable[[], float] = time.time
    chance: Callable[[], float] = random.random

    @classmethod
    def build(
        cls,
        config: GatewayConfig,
        ruleset: RuleSet,
        *,
        clock: Callable[[], float] = time.time,
        chance: Callable[[], float] = random.random,
        consumers: ConsumerLabels | None = None,
    ) -> Pipeline:
        """Compile the routes (raises :class:`~gateway.rules.RuleError` when invalid)."""
        if consumers is None:
            consumers = ConsumerLabels(
                config.consumer_names,
                config.consumer_cap,
                config.consumer_labels,
                metrics.consumer_ledger(),
            )
        return cls(
            config=config,
            router=compile_routes(config, ruleset),
            limits=upstream.Limits(
                connect=config.connect_timeout,
                read=config.read_timeout,
                total=config.total_timeout,
                max_response_size=config.max_response_size,
            ),
            recorder=Recorder.create(
                AccessLog.create(config.access_log, config.access_log_level),
                consumers,
                clock,
            ),
            trusted_proxies=TrustedProxies(config.forwarded_hops, config.forwarded_header)
            if config.trust_forwarded_headers
            else None,
            clock=clock,
            chance=chance,
        )

    def rebuilt(self, config: GatewayConfig, ruleset: RuleSet) -> Pipeline:
        """A pipeline for a reloaded config and rule set that keeps this one's clock, chance and
        consumer-label cap state (raises :class:`~gateway.rules.RuleError` when invalid)."""
        consumers = self.recorder.consumers.reconfigured(
            config.consumer_names, config.consumer_cap, config.consumer_labels
        )
        return Pipeline.build(
            config, ruleset, clock=self.clock, chance=self.chance, consumers=consumers
        )

    def public_base(self, request: web.BaseRequest) -> str:
        """The base URL this request's client reaches the gateway at."""
        intercepted = intercepted_host()
        if intercepted is not None:  # through the proxy front door: the host the client dialled
            return f"https://{intercepted}"
        config = self.config
        return public_base(
            configured=config.public_base_url,
            scheme=request.scheme,
            host_header=request.headers.get("Host"),
            headers=request.headers,
            trusted=self.trusted_proxies,
            fallback_host=lambda: local_host(
                request.transport.get_extra_info("sockname") if request.transport else None,
                self.config.listen_host,
                self.config.listen_port,
            ),
        )


class Live:
    """The pipeline in force: the one swappable part of the app, replaced whole by a reload
    (:mod:`gateway.reload`). A request reads it once, as it starts, so a request in flight
    finishes on the rules and config it began with while new requests get the new ones."""

    __slots__ = ("pipeline",)

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline


async def handle(request: web.Request, live: Live, session: aiohttp.ClientSession) -> web.Response:
    """Forward one request along its route and return the answer; record it either way."""
    pipeline = live.pipeline  # read once: a reload mid-request does not affect this request
    exchange = Exchange(
        request.method,
        request.raw_path,
        request.headers.get("Authorization"),
        time.perf_counter(),
        front_door(request),
    )
    try:
        response = await _answer(request, pipeline, session, exchange)
        exchange.status = response.status
        return response
    except asyncio.CancelledError:
        exchange.status = 499  # the client hung up; its upstream call was abandoned (nginx)
        raise
    finally:
        pipeline.recorder.record(exchange)


async def _answer(
    request: web.Request, pipeline: Pipeline, session: aiohttp.ClientSession, exchange: Exchange
) -> web.Response:
    match: RouteMatch[Route] | None = None
    try:
        reason = refusal(request.headers)
        if reason is not None:
            raise BadRequest(f"{reason}; the request was not forwarded")
        match = pipeline.router.match(request.method, request.raw_path)
        exchange.route = route = match.route
        if route.deprecated:
            _check_brownout(pipeline, match, exchange.authorization)
        body = await read_body(request, pipeline.config.max_body_size)
        outgoing = request_rewrite.build(
            match, route.upstream.base, request.method, request.headers, body
        )
        incoming = await upstream.forward(session, outgoing, pipeline.limits)
        exchange.upstream_status, exchange.upstream_seconds = incoming.status, incoming.seconds
        return _respond(match, incoming, pipeline.public_base(request))
    except GatewayError as error:
        exchange.failure, exchange.brownout = error.kind, isinstance(error, Brownout)
        headers: CIMultiDict[str] = CIMultiDict()
        if match is not None:
            match.route.add_deprecation(headers, match.params)
        return render_error(error, pipeline.public_base(request), headers.items())


def _respond(match: RouteMatch[Route], incoming: UpstreamResponse, base: str) -> web.Response:
    """The client's response: the upstream's, with URLs, headers and deprecation rewritten."""
    route = match.route
    content_type = incoming.headers.get("Content-Type", "")
    body = response_rewrite.rewrite_body(incoming.body, content_type, route.rewriter, base)
    if body is None and route.deprecated and incoming.status >= 400:
        body = response_rewrite.rewrite_error_message(incoming.body, content_type, route.rewriter)
    headers = inbound(incoming.headers, body_rewritten=body is not None)
    route.add_deprecation(headers, match.params)
    return web.Response(
        status=incoming.status, headers=headers, body=incoming.body if body is None else body
    )


async def read_body(request: web.Request, limit: int) -> bytes:
    """The request body byte for byte, refusing one over ``limit`` before reading it."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise RequestTooLarge(f"The request body is larger than {limit} bytes")
    if not request.body_exists:
        return b""
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge as exc:
        raise RequestTooLarge(f"The request body is larger than {limit} bytes") from exc


def _check_brownout(
    pipeline: Pipeline, match: RouteMatch[Route], authorization: str | None
) -> None:
    now = pipeline.clock()
    window = pipeline.config.brownouts.active(now)
    if window is None or not refuses(window, authorization, now, pipeline.chance):
        return
    raise Brownout(
        f"The Preview Marketplace API is switched off during a scheduled brownout until "
        f"{window.end.isoformat()}; call the Marketplace v1 API instead: "
        f"{match.route.successor_url(match.params)}",
        headers={"Retry-After": str(window.retry_after(now))},
    )
