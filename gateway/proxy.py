"""The request pipeline, top to bottom: match, (brownout), rewrite request, forward, rewrite
response, add headers, record metrics and the access line."""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from gateway import headers, metrics, request_rewrite, response_body, upstream
from gateway.access_log import AccessLog
from gateway.config import GatewayConfig
from gateway.consumers import ConsumerLabels
from gateway.deprecation import DeprecationHeaders, DeprecationPolicy, successor_url
from gateway.errors import Brownout, GatewayError, RequestTooLarge
from gateway.link_map import LinkRewriter
from gateway.models import RouteMatch
from gateway.public_url import public_base
from gateway.routing import Router
from gateway.rules import Rule, RuleSet


@dataclass(frozen=True, slots=True)
class Pipeline:
    """Everything a request needs that can be worked out once at start-up."""

    config: GatewayConfig
    ruleset: RuleSet
    router: Router
    rewriters: Mapping[str, LinkRewriter]  # by rule name
    deprecations: Mapping[str, DeprecationHeaders]  # by rule name, deprecated rules only
    sunsets: Mapping[str, float]  # by rule name, Unix seconds
    successor_origins: Mapping[str, str]  # by upstream name: the public v1 origin
    upstream_bases: Mapping[str, str]  # by upstream name
    limits: upstream.Limits
    fallback_host: str
    access_log: AccessLog
    consumers: ConsumerLabels
    metrics: metrics.BoundMetrics
    clock: Callable[[], float] = time.time
    chance: Callable[[], float] = field(default=random.random)

    @classmethod
    def build(
        cls,
        config: GatewayConfig,
        ruleset: RuleSet,
        *,
        clock: Callable[[], float] = time.time,
        chance: Callable[[], float] = random.random,
    ) -> Pipeline:
        rewriters: dict[str, LinkRewriter] = {}
        shared: dict[tuple[str, bool], LinkRewriter] = {}
        deprecations: dict[str, DeprecationHeaders] = {}
        sunsets: dict[str, float] = {}
        for rule in ruleset.rules:
            key = (rule.upstream, rule.deprecated)
            if key not in shared:
                family = [r for r in ruleset.rules if r.deprecated and r.upstream == rule.upstream]
                shared[key] = LinkRewriter.build(
                    config.upstreams[rule.upstream].url_prefixes,
                    family if rule.deprecated else [],
                )
            rewriters[rule.name] = shared[key]
            if rule.deprecated:
                policy = _policy_for(rule, config.deprecation)
                deprecations[rule.name] = DeprecationHeaders.for_policy(policy)
                sunsets[rule.name] = policy.sunset.timestamp()
        return cls(
            config=config,
            ruleset=ruleset,
            router=Router.from_ruleset(ruleset),
            rewriters=rewriters,
            deprecations=deprecations,
            sunsets=sunsets,
            successor_origins={
                name: (up.public_origins or (up.base,))[0] for name, up in config.upstreams.items()
            },
            upstream_bases={name: up.base for name, up in config.upstreams.items()},
            limits=upstream.Limits(
                connect=config.connect_timeout,
                read=config.read_timeout,
                total=config.total_timeout,
                max_response_size=config.max_response_size,
            ),
            fallback_host=f"{config.listen_host}:{config.listen_port}",
            access_log=AccessLog.create(config.access_log, config.access_log_level),
            consumers=ConsumerLabels(
                config.consumer_names, config.consumer_cap, config.consumer_labels
            ),
            metrics=metrics.BoundMetrics(
                {"unmatched": False} | {rule.name: rule.deprecated for rule in ruleset.rules}
            ),
            clock=clock,
            chance=chance,
        )

    def public_base(self, request: web.BaseRequest) -> str:
        """The base URL this request's client reaches the gateway at."""
        return public_base(
            configured=self.config.public_base_url,
            scheme=request.scheme,
            host_header=request.headers.get("Host"),
            headers=request.headers,
            trust_forwarded=self.config.trust_forwarded_headers,
            fallback_host=self.fallback_host,
        )


def _policy_for(rule: Rule, default: DeprecationPolicy) -> DeprecationPolicy:
    if rule.deprecation is None and rule.sunset is None:
        return default
    try:
        return DeprecationPolicy(
            rule.deprecation or default.deprecation,
            rule.sunset or default.sunset,
            default.deprecation_link,
            default.sunset_link,
        )
    except ValueError as exc:
        raise ValueError(f"{rule.file}: rule {rule.name!r}: {exc}") from exc


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


def _check_brownout(pipeline: Pipeline, match: RouteMatch) -> None:
    window = pipeline.config.brownouts.active(pipeline.clock())
    if window is None or pipeline.chance() * 100 >= window.percentage:
        return
    rule = match.rule
    successor = successor_url(rule, match.params, pipeline.successor_origins[rule.upstream])
    raise Brownout(
        f"The Preview Marketplace API is switched off during a scheduled brownout until "
        f"{window.end.isoformat()}; call the Marketplace v1 API instead: {successor}",
        headers={"Retry-After": str(window.retry_after(pipeline.clock()))},
    )


def _add_deprecation(pipeline: Pipeline, match: RouteMatch, headers: CIMultiDict[str]) -> None:
    """Add a deprecated rule's Deprecation, Sunset and Link headers to ``headers``."""
    rule = match.rule
    fixed = pipeline.deprecations.get(rule.name)
    if fixed is not None:
        origin = pipeline.successor_origins[rule.upstream]
        fixed.apply(headers, successor_url(rule, match.params, origin))


async def handle(
    request: web.Request, pipeline: Pipeline, session: aiohttp.ClientSession
) -> web.Response:
    """Forward one request along its rule and return the rewritten response."""
    started = time.perf_counter()
    route, deprecated, status = "unmatched", False, 500
    upstream_status: int | None = None
    upstream_seconds: float | None = None
    match: RouteMatch | None = None
    try:
        match = pipeline.router.match(request.method, request.raw_path)
        rule = match.rule
        route, deprecated = rule.name, rule.deprecated
        if deprecated:
            _check_brownout(pipeline, match)
        body = await read_body(request, pipeline.config.max_body_size)
        outgoing = request_rewrite.build(
            match, pipeline.upstream_bases[rule.upstream], request.method, request.headers, body
        )
        incoming = await upstream.forward(session, outgoing, pipeline.limits)
        upstream_status, upstream_seconds = incoming.status, incoming.seconds
        prepare = functools.partial(
            response_body.prepare,
            incoming,
            pipeline.rewriters[rule.name],
            pipeline.public_base(request),
            deprecated,
            pipeline.limits.max_response_size,
        )
        if response_body.off_loop(incoming, pipeline.rewriters[rule.name]):  # in a worker thread
            out = await asyncio.get_running_loop().run_in_executor(None, prepare)
        else:
            out = prepare()
        response_headers = headers.inbound(
            incoming.headers, body_rewritten=out.changed, encoded=out.encoded
        )
        _add_deprecation(pipeline, match, response_headers)
        status = incoming.status
        return web.Response(
            status=incoming.status,
            headers=response_headers,
            body=response_body.sendable(out.body),
        )
    except GatewayError as exc:
        status = exc.status
        if exc.kind:
            metrics.UPSTREAM_FAILURES.labels(exc.kind).inc()
        if isinstance(exc, Brownout):
            metrics.BROWNOUT_REJECTIONS.labels(route).inc()
        if match is not None and deprecated:
            error_headers = CIMultiDict(exc.headers)
            _add_deprecation(pipeline, match, error_headers)
            exc.headers = error_headers
        raise
    except asyncio.CancelledError:
        status = 499  # the client hung up; its upstream call was abandoned (nginx's 499)
        raise
    finally:
        _record(
            pipeline, request, route, deprecated, status, started, upstream_status, upstream_seconds
        )


def _record(
    pipeline: Pipeline,
    request: web.Request,
    route: str,
    deprecated: bool,
    status: int,
    started: float,
    upstream_status: int | None,
    upstream_seconds: float | None,
) -> None:
    seconds = time.perf_counter() - started
    authorization = request.headers.get("Authorization")
    pipeline.metrics.request(route, request.method, status, seconds, upstream_seconds)
    consumer = "-"
    if deprecated:
        consumer, overflowed = pipeline.consumers.label(authorization)
        pipeline.metrics.deprecated_call(route, consumer, overflowed, pipeline.clock())
    if pipeline.access_log.enabled:
        pipeline.access_log.write(
            route=route,
            method=request.method,
            path=request.raw_path.partition("?")[0],
            status=status,
            seconds=seconds,
            consumer=consumer if deprecated else pipeline.consumers.name_only(authorization),
            deprecated=deprecated,
            upstream_status=upstream_status,
        )
