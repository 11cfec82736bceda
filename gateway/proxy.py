"""The request pipeline, top to bottom: match, decide the migration policy (forward, or refuse:
cut-off, brownout, rehearsal), rewrite the request, forward, rewrite the response, add headers,
record."""

from __future__ import annotations

import asyncio
import functools
import random
import time
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter
from aiohttp.payload import Payload

from gateway import request_rewrite, upstream
from gateway.config.rules import RuleSet
from gateway.config.settings import GatewayConfig
from gateway.errors import BadRequest, GatewayError
from gateway.frontdoor.door import front_door, intercepted_host
from gateway.migration.consumers import ConsumerLabels
from gateway.migration.deprecation import add_headers
from gateway.migration.policy import (
    BROWNOUT,
    REHEARSAL_HEADER,
    Caller,
    Policy,
    Refuse,
)
from gateway.migration.tally import Tally
from gateway.models import RouteMatch, UpstreamResponse
from gateway.routes import Route, compile_routes
from gateway.routing import Router, forwarded_method
from gateway.serving import response_body
from gateway.serving.error_response import CLOSE_AT_ONCE, render_error
from gateway.serving.headers import inbound, map_locations, refusal
from gateway.serving.public_url import TrustedProxies, local_host, public_base
from gateway.serving.request_body import BodyBudget, BodyLimits, expects_continue, read_body
from gateway.serving.response_budget import ResponseBudget, ResponseHold
from gateway.telemetry import metrics
from gateway.telemetry.access_log import AccessLog
from gateway.telemetry.recorder import Exchange, Recorder
from gateway.transport.seam import Transport


@dataclass(frozen=True, slots=True)
class Pipeline:
    """Everything a request needs that can be worked out once at start-up."""

    config: GatewayConfig
    router: Router[Route]
    policy: Policy  # the migration policy: decides each deprecated call's fate
    limits: upstream.Limits
    body_limits: BodyLimits
    bodies: BodyBudget  # request-body bytes this process holds, against its cap
    responses: ResponseBudget  # upstream response-body bytes this process holds, against its cap
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
        bodies: BodyBudget | None = None,
        responses: ResponseBudget | None = None,
        tally: Tally | None = None,
    ) -> Pipeline:
        """Compile the routes (raises :class:`~gateway.config.rules.RuleError` when invalid)."""
        if consumers is None:
            names, cap, enabled, listed = _label_settings(config)
            consumers = ConsumerLabels(
                names, cap, enabled, metrics.consumer_ledger(), listed=listed
            )
        bodies = bodies or BodyBudget(config.max_buffered_body_size)
        # One heap trim for what both budgets give back.
        responses = responses or ResponseBudget(config.max_buffered_response_size, bodies.trimmer)
        return cls(
            config=config,
            router=compile_routes(config, ruleset),
            policy=Policy.build(config, chance),
            limits=upstream.Limits(
                connect=config.connect_timeout,
                read=config.read_timeout,
                total=config.total_timeout,
                max_response_size=config.max_response_size,
            ),
            body_limits=BodyLimits(
                config.max_body_size, config.client_body_timeout, config.client_body_total_timeout
            ),
            bodies=bodies,
            responses=responses,
            recorder=Recorder.create(
                AccessLog.create(config.access_log, config.access_log_level),
                consumers,
                clock,
                tally or Tally(),
            ),
            trusted_proxies=TrustedProxies(config.forwarded_hops, config.forwarded_header)
            if config.trust_forwarded_headers
            else None,
            clock=clock,
            chance=chance,
        )

    def rebuilt(self, config: GatewayConfig, ruleset: RuleSet) -> Pipeline:
        """A pipeline for a reloaded config and rule set that keeps this one's clock, chance,
        consumer-label cap state, per-day tally and request- and response-body budgets (the
        bodies in flight hold them) (raises :class:`~gateway.config.rules.RuleError` when
        invalid)."""
        consumers = self.recorder.consumers.reconfigured(*_label_settings(config))
        return Pipeline.build(
            config,
            ruleset,
            clock=self.clock,
            chance=self.chance,
            consumers=consumers,
            bodies=self.bodies,
            responses=self.responses,
            tally=self.recorder.tally,
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


def _label_settings(config: GatewayConfig) -> tuple[dict[str, str], int, bool, frozenset[str]]:
    """What consumer labelling takes from ``config``: SID -> name (``consumer_names`` and the
    list), the cap, the switch, and the listed SIDs (always labelled)."""
    names = dict(config.consumer_names)
    listed = {sid: consumer.name for consumer in config.consumers for sid in consumer.sids}
    return {**names, **listed}, config.consumer_cap, config.consumer_labels, frozenset(listed)


class Live:
    """The pipeline in force: the one swappable part of the app, replaced whole by a reload
    (:mod:`gateway.reload`). A request reads it once, as it starts, so a request in flight
    finishes on the rules and config it began with while new requests get the new ones."""

    __slots__ = ("pipeline",)

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline


async def handle(request: web.Request, live: Live, transport: Transport) -> web.Response:
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
        response = await _answer(request, pipeline, transport, exchange)
        exchange.status = response.status
        return response
    except asyncio.CancelledError:
        exchange.status = 499  # the client hung up; its upstream call was abandoned (nginx)
        raise
    finally:
        # Timed now, recorded once the answer is on its way: the metrics and the access line
        # run in the loop's next pass, not between the upstream's answer and the client's.
        # (Before any later request is read: the loop runs what is ready before it polls.)
        exchange.finished = time.perf_counter()
        asyncio.get_running_loop().call_soon(pipeline.recorder.record, exchange)


async def _answer(
    request: web.Request, pipeline: Pipeline, transport: Transport, exchange: Exchange
) -> web.Response:
    deprecation: tuple[tuple[str, str], ...] = ()  # the headers of a deprecated route's answer
    hold = pipeline.bodies.hold()
    answer = pipeline.responses.hold(request.method)
    try:
        reason = refusal(request.headers)
        if reason is not None:
            raise BadRequest(f"{reason}; the request was not forwarded")
        match = pipeline.router.match(request.method, request.raw_path)
        exchange.route = route = match.route
        if route.deprecated:
            decision = pipeline.policy.decide(
                route,
                route.successor_url(match.params),
                Caller(exchange.authorization, request.headers.get(REHEARSAL_HEADER)),
                pipeline.clock(),
            )
            deprecation = decision.headers
            if isinstance(decision, Refuse):
                _refused(exchange, decision)
                raise decision.error
        body = await read_body(request, pipeline.body_limits, hold)
        outgoing = request_rewrite.build(
            match, route.upstream.base, forwarded_method(request.method), request.headers, body
        )
        incoming = await upstream.forward(transport, outgoing, pipeline.limits, answer)
        exchange.upstream_status, exchange.upstream_seconds = incoming.status, incoming.seconds
        base = pipeline.public_base(request)
        limits = pipeline.limits
        within = limits.total - incoming.seconds  # what is left of the upstream call's deadline
        return await _respond(
            match, incoming, base, limits.max_response_size, answer, within, deprecation
        )
    except GatewayError as error:
        exchange.failure = error.kind
        response = render_error(error, pipeline.public_base(request), deprecation)
        if expects_continue(request) and not request.content.is_eof():
            response.force_close()  # the client holds the body back: nothing else may follow
            response[CLOSE_AT_ONCE] = True
        return response
    finally:
        hold.release()
        answer.release()  # nothing, when a sliced body took it over


def _refused(exchange: Exchange, decision: Refuse) -> None:
    """Note on the exchange how the policy refused it, for the metrics and the access line."""
    exchange.refusal = decision.reason
    exchange.brownout = decision.reason == BROWNOUT
    exchange.policy_consumer = decision.consumer
    exchange.rehearsal = decision.rehearsal


async def _respond(
    match: RouteMatch[Route],
    incoming: UpstreamResponse,
    base: str,
    max_size: int,
    hold: ResponseHold,
    within: float,
    deprecation: tuple[tuple[str, str], ...],
) -> web.Response:
    """The client's response: the upstream's, with URLs, headers and deprecation rewritten.

    The body step (decode the content coding, rewrite) runs in a worker thread for a large
    body, so that one 15 MB answer does not hold every other request back.

    ``hold`` holds the upstream body's bytes; it is made to hold the client's body if that is
    larger. A coded body is claimed at its decoded size before it is decoded, which refuses a GET
    when there is no room within ``within`` seconds (see :mod:`gateway.serving.response_budget`);
    the rewrite's few bytes more are counted as they are. A body sent a slice at a time keeps its
    hold until its last slice is written; any other is released when the request is done."""
    route = match.route
    expected = min(response_body.expected_size(incoming), max_size)
    if expected > hold.held:
        await hold.claim(expected - hold.held, within)
    prepare = functools.partial(
        response_body.prepare, incoming, route.rewriter, base, route.deprecated, max_size
    )
    if response_body.off_loop(incoming, route.rewriter):
        out = await asyncio.get_running_loop().run_in_executor(None, prepare)
    else:
        out = prepare()
    headers = inbound(incoming.headers, body_rewritten=out.changed, encoded=out.encoded)
    map_locations(headers, lambda url: route.rewriter.url(url, base))
    if deprecation:
        add_headers(headers, deprecation)
    body = out.body
    if len(body) > hold.held:
        hold.take(len(body) - hold.held)
    return web.Response(
        status=incoming.status,
        headers=headers,
        body=body if len(body) <= _SLICED_ABOVE else _SlicedBody(body, hold),
    )


_SLICE = 256 * 1024
# aiohttp keeps a connection's last response until the next request on it: a body up to this
# size is kept with it while the connection idles (a body passed as bytes cannot be dropped).
_SLICED_ABOVE = 16 * 1024


class _SlicedBody(Payload):
    """A body of more than 16 KiB, written a slice at a time, each once the client took most of
    the one before: what the client has not read yet then waits in the socket buffer, not in a
    second copy of the body (asyncio's transport copies whatever it cannot send at once).

    Once written, the body is dropped: aiohttp keeps a connection's last response until the
    next request on it, so a body kept by its response would stay in memory for as long as the
    client keeps the connection idle (75 s by default), outside any budget (1,000 idle
    connections that had a 1 MB answer each held 1 GB). Until then it holds the response
    budget's bytes for the body (or, when it is never written, the client gone first, until it
    is dropped)."""

    def __init__(self, body: bytes, hold: ResponseHold) -> None:
        super().__init__(None, content_type=None)  # the body lives in _body alone
        self._body = body
        self._length = len(body)
        self._hold = hold.hand_over(self)

    @property
    def size(self) -> int:
        return self._length

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return self._body.decode(encoding, errors)

    async def write(self, writer: AbstractStreamWriter) -> None:
        view = memoryview(self._body)
        try:
            for start in range(0, len(view), _SLICE):
                await writer.write(view[start : start + _SLICE])  # drains past 64 KiB
        finally:
            self._body = b""
            self._hold.release()
