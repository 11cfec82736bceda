"""Where ``gateway report`` and ``gateway consumers`` read the gateway's series: a running
gateway's ``/metrics`` text or a Prometheus server's HTTP API, both reduced to the same
:class:`Samples`. The PromQL and the parsing of its answers are
:mod:`gateway.migration.series`, which the migration page shares."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from gateway.migration.series import (
    BROWNOUTS,
    BUILD_INFO,
    CONSUMER_LAST_SEEN,
    DEPRECATED,
    LAST_SEEN,
    OVERFLOW,
    SUNSET,
    SourceError,
    answer,
    by_label,
    calls_over,
    consumer_last_seen,
    vector,
)

ReportError = SourceError  # the source could not be read or was not the gateway's metrics


@dataclass(frozen=True, slots=True)
class Samples:
    """The gateway series a report needs, whatever the source."""

    requests: Mapping[tuple[str, str], float]  # (route, consumer) -> requests
    last_seen: Mapping[str, float]  # route -> unix seconds
    sunset: Mapping[str, float]  # route -> unix seconds
    brownouts: Mapping[str, float]  # route -> rejections
    overflow: float
    versions: tuple[str, ...] = ()
    consumer_last_seen: Mapping[str, float] = field(default_factory=dict)  # consumer -> unix s

    def consumer_calls(self) -> dict[str, float]:
        """Deprecated calls per consumer, over every route."""
        totals: dict[str, float] = {}
        for (_, consumer), value in self.requests.items():
            totals[consumer] = totals.get(consumer, 0.0) + value
        return totals


_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def _fetch(url: str, timeout: float, shown: str | None = None) -> bytes:
    """GET ``url``; a failure names ``shown`` (default: ``url`` itself) and the reason alone,
    not a Prometheus query URL hundreds of characters long."""
    where = shown or url
    try:
        request = urllib.request.Request(url, headers={"Accept": "text/plain, application/json"})
    except ValueError as exc:  # not a URL urllib can open
        raise ReportError(f"{where}: {exc}") from exc
    # HTTP(S)_PROXY from the environment applies, except to a gateway on this machine.
    host = urllib.parse.urlsplit(url).hostname or ""
    handlers = [urllib.request.ProxyHandler({})] if host in _LOOPBACK else []
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(request, timeout=timeout) as response:
            body: bytes = response.read()
            return body
    except urllib.error.HTTPError as exc:
        raise ReportError(f"{where}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise ReportError(f"cannot reach {where}: {_reason(exc)}") from exc


def _reason(exc: Exception) -> str:
    """Why a fetch failed, in words: ``connection refused``, not ``<urlopen error [Errno
    111] Connection refused>``."""
    reason: object = getattr(exc, "reason", exc)
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    if isinstance(reason, TimeoutError) or "timed out" in str(reason):
        return "timed out"
    return str(reason) or type(reason).__name__


def parse_metrics_text(text: str) -> Samples:
    """The gateway series from a Prometheus text exposition (``/metrics``)."""
    requests: dict[tuple[str, str], float] = {}
    last_seen: dict[str, float] = {}
    sunset: dict[str, float] = {}
    brownouts: dict[str, float] = {}
    overflow = 0.0
    versions: list[str] = []
    consumers_seen: dict[str, float] = {}
    found = False
    try:
        families = list(text_string_to_metric_families(text))
    except (ValueError, IndexError, KeyError) as exc:
        raise ReportError(f"not a Prometheus text exposition: {exc}") from exc
    for family in families:
        for sample in family.samples:
            labels = sample.labels
            if sample.name == DEPRECATED:
                key = (labels.get("route", ""), labels.get("consumer", ""))
                requests[key] = requests.get(key, 0.0) + sample.value
            elif sample.name == LAST_SEEN:
                route = labels.get("route", "")
                last_seen[route] = max(last_seen.get(route, 0.0), sample.value)
            elif sample.name == CONSUMER_LAST_SEEN:
                consumer = labels.get("consumer", "")
                consumers_seen[consumer] = max(consumers_seen.get(consumer, 0.0), sample.value)
            elif sample.name == SUNSET:
                sunset[labels.get("route", "")] = sample.value
            elif sample.name == BROWNOUTS:
                route = labels.get("route", "")
                brownouts[route] = brownouts.get(route, 0.0) + sample.value
            elif sample.name == OVERFLOW:
                overflow += sample.value
            elif sample.name == BUILD_INFO and "version" in labels:
                versions.append(labels["version"])
            else:
                continue
            found = True
    if not found:
        raise ReportError("no gateway_* metrics found: is this the gateway's /metrics?")
    return Samples(
        requests,
        last_seen,
        sunset,
        brownouts,
        overflow,
        tuple(sorted(set(versions))),
        consumers_seen,
    )


def read_metrics(url: str, timeout: float) -> Samples:
    """Scrape a gateway's ``/metrics`` once."""
    return parse_metrics_text(_fetch(url, timeout).decode("utf-8", errors="replace"))


def _query(base: str, expr: str, timeout: float) -> list[dict[str, Any]]:
    url = f"{base.rstrip('/')}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    try:
        body = json.loads(_fetch(url, timeout, shown=f"Prometheus at {base}"))
    except json.JSONDecodeError as exc:
        raise ReportError(f"{base}: not a Prometheus API answer ({exc})") from exc
    return answer(body, base, expr)


def read_prometheus(base: str, window: str, timeout: float) -> Samples:
    """The gateway series from a Prometheus server: calls over ``window``, summed over every
    scraped gateway; the latest call is the latest over them."""
    requests = vector(
        _query(base, f"sum by (route, consumer) ({calls_over(DEPRECATED, window)})", timeout),
        "route",
        "consumer",
    )
    last_seen = vector(
        _query(base, f"max by (route) (max_over_time({LAST_SEEN}[{window}]))", timeout), "route"
    )
    sunset = vector(_query(base, f"max by (route) ({SUNSET})", timeout), "route")
    brownouts = vector(
        _query(base, f"sum by (route) ({calls_over(BROWNOUTS, window)})", timeout), "route"
    )
    overflow = vector(_query(base, f"sum({calls_over(OVERFLOW, window)})", timeout))
    versions = vector(_query(base, f"count by (version) ({BUILD_INFO})", timeout), "version")
    consumers_seen = by_label(_query(base, consumer_last_seen(window), timeout), "consumer")
    if not (requests or last_seen or sunset or versions):
        raise ReportError(
            f"{base}: no gateway_* series: is Prometheus scraping the gateway's /metrics?"
        )
    return Samples(
        {(route, consumer): value for (route, consumer), value in requests.items()},
        {key[0]: value for key, value in last_seen.items()},
        {key[0]: value for key, value in sunset.items()},
        {key[0]: value for key, value in brownouts.items()},
        sum(overflow.values()),
        tuple(sorted(key[0] for key in versions)),
        consumers_seen,
    )
