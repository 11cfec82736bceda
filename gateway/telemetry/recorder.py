"""The last step of every request: its metrics and its access-log line, from one small value.

The pipeline fills an :class:`Exchange` as it goes (route, status, timings, upstream outcome)
and hands it to :meth:`Recorder.record` exactly once: from a ``finally``, scheduled for the
event loop's next pass, so that recording does not delay the answer. Recording can never
raise: a failure there is logged as one line and the client's answer stands.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from gateway.migration.consumers import ConsumerLabels
from gateway.migration.tally import Tally
from gateway.telemetry.access_log import AccessLog
from gateway.telemetry.metrics import UNMATCHED, RouteMetrics

log = logging.getLogger("gateway")


class RecordedRoute(Protocol):
    """What recording needs of the route a request matched (:class:`gateway.routes.Route`)."""

    @property
    def metrics(self) -> RouteMetrics: ...

    @property
    def deprecated(self) -> bool: ...


@dataclass(slots=True)
class Exchange:
    """What one request did: filled in along the pipeline, recorded once at the end."""

    method: str
    target: str  # the raw request target (path and query)
    authorization: str | None
    started: float  # time.perf_counter() when the request arrived
    front_door: str  # direct, tls or proxy (gateway.frontdoor.door)
    route: RecordedRoute | None = None  # None until a rule matched
    status: int = 500  # stays 500 if an unexpected exception escapes
    upstream_status: int | None = None
    upstream_seconds: float | None = None
    failure: str = ""  # the upstream failure's kind, "" when there was none
    brownout: bool = False  # refused by a brownout window
    refusal: str = ""  # why the migration policy refused it (gateway.migration.policy), or ""
    policy_consumer: str = ""  # the consumer label a policy refusal counts under
    rehearsal: bool = False  # a Gateway-Rehearsal call: refused, and not a deprecated call
    finished: float | None = None  # time.perf_counter() when the answer was ready


@dataclass(frozen=True, slots=True)
class Recorder:
    """Writes an exchange's metrics and access line (one per process, on the app)."""

    access_log: AccessLog
    consumers: ConsumerLabels
    clock: Callable[[], float]  # wall clock, for the last-seen gauges and the tally
    unmatched: RouteMetrics
    tally: Tally  # deprecated calls per day and consumer (the migration page's own chart)

    @classmethod
    def create(
        cls,
        access_log: AccessLog,
        consumers: ConsumerLabels,
        clock: Callable[[], float],
        tally: Tally | None = None,
    ) -> Recorder:
        unmatched = RouteMetrics(UNMATCHED, False)
        return cls(access_log, consumers, clock, unmatched, tally or Tally())

    def record(self, exchange: Exchange) -> None:
        """Count ``exchange`` and write its access line; never raises."""
        try:
            self._record(exchange)
        except Exception as exc:  # a broken metric or log line must not turn into a 500
            log.error("could not record a request: %s", type(exc).__name__)

    def _record(self, exchange: Exchange) -> None:
        finished = exchange.finished
        seconds = (time.perf_counter() if finished is None else finished) - exchange.started
        route = exchange.route
        metrics = route.metrics if route is not None else self.unmatched
        deprecated = route is not None and route.deprecated
        metrics.request(
            exchange.method,
            exchange.status,
            seconds,
            exchange.upstream_seconds,
            exchange.front_door,
        )
        if exchange.failure:
            metrics.upstream_failure(exchange.failure)
        if exchange.brownout:
            metrics.brownout()
        elif exchange.refusal:
            metrics.policy_refusal(exchange.policy_consumer, exchange.refusal)
        if deprecated and not exchange.rehearsal:
            consumer, overflowed = self.consumers.label(
                exchange.authorization, exchange.upstream_status
            )
            now = self.clock()
            metrics.deprecated_call(consumer, overflowed, now)
            self.tally.count(consumer, now)
        else:
            consumer = self.consumers.log_label(exchange.authorization, exchange.upstream_status)
        if self.access_log.enabled:
            self.access_log.write(
                route=metrics.name,
                method=exchange.method,
                path=_logged_path(exchange.target),
                status=exchange.status,
                seconds=seconds,
                consumer=consumer,
                deprecated=deprecated,
                upstream_status=exchange.upstream_status,
                front_door=exchange.front_door,
                policy=exchange.refusal or ("rehearsal" if exchange.rehearsal else ""),
            )


def _logged_path(target: str) -> str:
    """The path of an origin-form target; ``-`` for any other form, which may carry userinfo
    (``http://TOKEN@host/...``) and was refused anyway."""
    if not target.startswith("/"):
        return "-"
    return target.partition("?")[0]
