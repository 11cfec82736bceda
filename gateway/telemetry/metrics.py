"""Prometheus metrics: declared once at import (the only module-level state), recorded per request.

With ``PROMETHEUS_MULTIPROC_DIR`` set before start-up (``gateway serve --workers N`` does it),
prometheus-client's multiprocess mode sums every worker's samples at scrape time.
"""

from __future__ import annotations

import contextlib
import os
import platform
from collections.abc import Iterable
from pathlib import Path

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

from gateway.errors import FAILURE_KINDS
from gateway.migration.consumers import LEDGER_NAME
from gateway.version import __version__

# No `<counter>_created` / `<histogram>_created` series: a start time per series that nothing
# here reads (Prometheus has process_start_time_seconds for that), a tenth of the exposition.
disable_created_metrics()  # type: ignore[no-untyped-call]

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter(
    "gateway_requests",
    "Requests answered, by route template (rule name), method, status class, deprecation and "
    "front door (direct, tls, proxy).",
    ["route", "method", "status_class", "deprecated", "front_door"],
)
REQUEST_SECONDS = Histogram(
    "gateway_request_duration_seconds",
    "Time from request received to response ready, by route.",
    ["route"],
    buckets=LATENCY_BUCKETS,
)
UPSTREAM_SECONDS = Histogram(
    "gateway_upstream_duration_seconds",
    "Time spent on the upstream call, by route.",
    ["route"],
    buckets=LATENCY_BUCKETS,
)
UPSTREAM_FAILURES = Counter(
    "gateway_upstream_failures",
    "Upstream calls that failed, by kind (" + ", ".join(FAILURE_KINDS) + ").",
    ["kind"],
)
DEPRECATED_REQUESTS = Counter(
    "gateway_deprecated_requests",
    "Requests to deprecated routes, by route and consumer (configured name or SID).",
    ["route", "consumer"],
)
CONSUMER_OVERFLOW = Counter(
    "gateway_consumer_overflow",
    "Deprecated-route requests whose consumer was counted as 'other' (over the cap).",
)
LAST_SEEN = Gauge(
    "gateway_deprecated_route_last_seen_timestamp_seconds",
    "Unix time of the latest request to each deprecated route (no series until its first).",
    ["route"],
    multiprocess_mode="max",
)
SUNSET = Gauge(
    "gateway_sunset_timestamp_seconds",
    "Unix time of the announced Sunset of each deprecated route.",
    ["route"],
    multiprocess_mode="max",
)
BROWNOUT_REJECTIONS = Counter(
    "gateway_brownout_rejections",
    "Deprecated-route requests refused with 410 during a brownout window.",
    ["route"],
)
POLICY_REFUSALS = Counter(
    "gateway_policy_refusals",
    "Deprecated-route requests the migration policy answered 410 without forwarding, by "
    "route, consumer (a listed name or a fixed word) and reason (cutoff, unknown_consumer, "
    "rehearsal).",
    ["route", "consumer", "reason"],
)
CONSUMER_LAST_SEEN = Gauge(
    "gateway_consumer_last_seen_timestamp_seconds",
    "Unix time of each consumer's latest deprecated-route request (refused ones included).",
    ["consumer"],
    multiprocess_mode="max",
)
PROXY_CONNECTS = Counter(
    "gateway_proxy_connects",
    "Connections to the proxy front door, by outcome (intercepted, tunnelled, refused).",
    ["outcome"],
)
CONFIG_RELOADS = Counter(
    "gateway_config_reloads",
    "Configuration reloads (SIGHUP or --watch-config), by result: success; restart_required "
    "(applied, except settings that need a restart); invalid (refused, the previous "
    "configuration keeps serving).",
    ["result"],
)
RELOAD_RESULTS = ("success", "restart_required", "invalid")
CLIENT_CONNECTIONS = Gauge(
    "gateway_client_connections",
    "Client connections open now on every listener, counted from accept (summed over workers).",
    multiprocess_mode="livesum",
)
CLIENT_LIMIT_HITS = Counter(
    "gateway_client_limit_hits",
    "Client connections or requests cut off by a bound, by limit (header_timeout, body_timeout, "
    "send_timeout, max_client_connections, max_metrics_connections, proxy_max_tunnels, "
    "max_buffered_body_size, max_buffered_response_size).",
    ["limit"],
)
BUILD_INFO = Gauge(
    "gateway_build_info",
    "Always 1; labels carry the gateway and Python versions.",
    ["version", "python"],
    multiprocess_mode="max",
)


# Methods labelled by name; any other token a parser lets through (the pure-Python parser of
# AIOHTTP_NO_EXTENSIONS=1 accepts every token) is labelled "other", so the label set is bounded.
KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"}
)


def status_class(status: int) -> str:
    return f"{status // 100}xx"


UNMATCHED = "unmatched"  # the route label of requests no rule matched


def method_label(method: str) -> str:
    """``method`` itself when it is a standard one, else ``other``."""
    return method if method in KNOWN_METHODS else "other"


class RouteMetrics:
    """One route's label children, bound once at start-up, so that a request costs dictionary
    lookups instead of prometheus-client's ``labels()`` (argument checks, a lock, a tuple)
    per metric. Every metric a request touches is recorded through here.

    The caches are bounded: known methods and ``other`` x status classes, consumers (capped by
    :class:`gateway.migration.consumers.ConsumerLabels`), and policy refusals (listed names and
    fixed words x reasons).
    """

    __slots__ = (
        "name",
        "deprecated",
        "_latency",
        "_upstream",
        "_last_seen",
        "_brownouts",
        "_requests",
        "_by_consumer",
        "_refusals",
    )

    def __init__(self, name: str, deprecated: bool) -> None:
        self.name = name
        self.deprecated = deprecated
        self._latency = REQUEST_SECONDS.labels(name)
        self._upstream = UPSTREAM_SECONDS.labels(name)
        # Bound at the route's first call: a route never called has no series at all, rather
        # than a "last call" at 1970-01-01 (0) for dashboards and alerts to mistake.
        self._last_seen: Gauge | None = None
        self._brownouts = BROWNOUT_REJECTIONS.labels(name) if deprecated else None
        self._requests: dict[tuple[str, int, str], Counter] = {}
        self._by_consumer: dict[str, tuple[Counter, Gauge]] = {}
        self._refusals: dict[tuple[str, str], Counter] = {}

    def request(
        self,
        method: str,
        status: int,
        seconds: float,
        upstream: float | None,
        front_door: str = "direct",
    ) -> None:
        """Count one answered request and its latencies."""
        child = self._requests.get((method, status // 100, front_door))
        if child is None:
            label = method_label(method)
            key = (label, status // 100, front_door)  # every unknown method shares "other"
            child = self._requests.get(key)
            if child is None:
                deprecated = "true" if self.deprecated else "false"
                child = REQUESTS.labels(
                    self.name, label, status_class(status), deprecated, front_door
                )
                self._requests[key] = child
        child.inc()
        self._latency.observe(seconds)
        if upstream is not None:
            self._upstream.observe(upstream)

    def deprecated_call(self, consumer: str, overflowed: bool, now: float) -> None:
        """Count one deprecated-route request by consumer and stamp the route's and the
        consumer's last call."""
        children = self._by_consumer.get(consumer)
        if children is None:
            children = self._by_consumer[consumer] = (
                DEPRECATED_REQUESTS.labels(self.name, consumer),
                CONSUMER_LAST_SEEN.labels(consumer),
            )
        children[0].inc()
        children[1].set(now)
        if overflowed:
            CONSUMER_OVERFLOW.inc()
        if self._last_seen is None:
            self._last_seen = LAST_SEEN.labels(self.name)
        self._last_seen.set(now)

    def policy_refusal(self, consumer: str, reason: str) -> None:
        """Count one request the migration policy refused (bounded: listed names and fixed
        words x three reasons)."""
        child = self._refusals.get((consumer, reason))
        if child is None:
            child = POLICY_REFUSALS.labels(self.name, consumer, reason)
            self._refusals[(consumer, reason)] = child
        child.inc()

    def brownout(self) -> None:
        """Count one request refused by a brownout window."""
        if self._brownouts is not None:
            self._brownouts.inc()

    @staticmethod
    def upstream_failure(kind: str) -> None:
        """Count one failed upstream call by kind (refused, timeout, reset, ...)."""
        UPSTREAM_FAILURES.labels(kind).inc()


def publish_static(sunsets: dict[str, float]) -> None:
    """Set the build info and the per-route sunset gauges (once per process)."""
    BUILD_INFO.labels(__version__, platform.python_version()).set(1)
    for route, moment in sunsets.items():
        SUNSET.labels(route).set(moment)


def publish_sunsets(sunsets: dict[str, float], retired: Iterable[str] = ()) -> None:
    """After a reload: set each deprecated route's sunset gauge, drop those of ``retired``
    routes (in multiprocess mode a worker's file keeps the last value until it restarts)."""
    for route in retired:
        with contextlib.suppress(KeyError):
            SUNSET.remove(route)
    for route, moment in sunsets.items():
        SUNSET.labels(route).set(moment)


def count_reload(result: str) -> None:
    """Count one reload attempt by result (one of :data:`RELOAD_RESULTS`)."""
    CONFIG_RELOADS.labels(result).inc()


def declare_reloads() -> None:
    """Show every reload result at 0 from the start, so a rate over it has a first sample."""
    for result in RELOAD_RESULTS:
        CONFIG_RELOADS.labels(result)


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def consumer_ledger() -> Path | None:
    """Where ``--workers`` share their admitted consumer labels (``None`` in one process)."""
    directory = multiprocess_dir()
    return Path(directory) / LEDGER_NAME if directory else None


def exposition() -> bytes:
    """The text exposition of this process, or of all workers in multiprocess mode."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


async def metrics_handler(request: web.Request) -> web.Response:
    """``GET /metrics``."""
    response = web.Response(body=exposition())
    response.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return response
