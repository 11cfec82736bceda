"""The request pipeline, top to bottom: match, rewrite request, forward, rewrite response."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import aiohttp
from aiohttp import web

from gateway import headers as header_rules
from gateway import request_rewrite, response_rewrite, upstream
from gateway.config import GatewayConfig
from gateway.errors import RequestTooLarge
from gateway.public_url import public_base
from gateway.response_rewrite import LinkRewriter
from gateway.routing import Router
from gateway.rules import RuleSet


@dataclass(frozen=True, slots=True)
class Pipeline:
    """Everything a request needs that can be worked out once at start-up."""

    config: GatewayConfig
    ruleset: RuleSet
    router: Router
    rewriters: Mapping[str, LinkRewriter]  # by rule name
    upstream_bases: Mapping[str, str]  # by upstream name
    limits: upstream.Limits
    fallback_host: str

    @classmethod
    def build(cls, config: GatewayConfig, ruleset: RuleSet) -> Pipeline:
        rewriters: dict[str, LinkRewriter] = {}
        shared: dict[tuple[str, bool], LinkRewriter] = {}
        for rule in ruleset.rules:
            key = (rule.upstream, rule.deprecated)
            if key not in shared:
                family = [r for r in ruleset.rules if r.deprecated and r.upstream == rule.upstream]
                shared[key] = LinkRewriter.build(
                    config.upstreams[rule.upstream].url_prefixes,
                    family if rule.deprecated else [],
                )
            rewriters[rule.name] = shared[key]
        return cls(
            config=config,
            ruleset=ruleset,
            router=Router.from_ruleset(ruleset),
            rewriters=rewriters,
            upstream_bases={name: up.base for name, up in config.upstreams.items()},
            limits=upstream.Limits(
                connect=config.connect_timeout,
                read=config.read_timeout,
                total=config.total_timeout,
                max_response_size=config.max_response_size,
            ),
            fallback_host=f"{config.listen_host}:{config.listen_port}",
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


async def handle(
    request: web.Request, pipeline: Pipeline, session: aiohttp.ClientSession
) -> web.Response:
    """Forward one request along its rule and return the rewritten response."""
    match = pipeline.router.match(request.method, request.raw_path)
    rule = match.rule
    body = await read_body(request, pipeline.config.max_body_size)
    outgoing = request_rewrite.build(
        match, pipeline.upstream_bases[rule.upstream], request.method, request.headers, body
    )
    incoming = await upstream.forward(session, outgoing, pipeline.limits)
    new_body = response_rewrite.rewrite_body(
        incoming.body,
        incoming.headers.get("Content-Type", ""),
        pipeline.rewriters[rule.name],
        pipeline.public_base(request),
    )
    response_headers = header_rules.inbound(incoming.headers, body_rewritten=new_body is not None)
    return web.Response(
        status=incoming.status,
        headers=response_headers,
        body=incoming.body if new_body is None else new_body,
    )
