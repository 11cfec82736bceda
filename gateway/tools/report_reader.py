"""Where ``gateway report`` reads the gateway's series: a running gateway's ``/metrics`` text or a
Prometheus server's HTTP API, both reduced to the same :class:`Samples`."""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

DEPRECATED = "gateway_deprecated_requests_total"
LAST_SEEN = "gateway_deprecated_route_last_seen_timestamp_seconds"
SUNSET = "gateway_sunset_timestamp_seconds"
BROWNOUTS = "gateway_brownout_rejections_total"
OVERFLOW = "gateway_consumer_overflow_total"
BUILD_INFO = "gateway_build_info"


class ReportError(Exception):
    """The source could not be read or did not look like the gateway's metrics."""


@dataclass(frozen=True, slots=True)
class Samples:
    """The gateway series a report needs, whatever the source."""

    requests: Mapping[tuple[str, str], float]  # (route, consumer) -> requests
    last_seen: Mapping[str, float]  # route -> unix seconds
    sunset: Mapping[str, float]  # route -> unix seconds
    brownouts: Mapping[str, float]  # route -> rejections
    overflow: float
    versions: tuple[str, ...] = ()


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
    return Samples(requests, last_seen, sunset, brownouts, overflow, tuple(sorted(set(versions))))


def read_metrics(url: str, timeout: float) -> Samples:
    """Scrape a gateway's ``/metrics`` once."""
    return parse_metrics_text(_fetch(url, timeout).decode("utf-8", errors="replace"))


def _query(base: str, expr: str, timeout: float) -> list[dict[str, Any]]:
    url = f"{base.rstrip('/')}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    try:
        body = json.loads(_fetch(url, timeout, shown=f"Prometheus at {base}"))
    except json.JSONDecodeError as exc:
        raise ReportError(f"{base}: not a Prometheus API answer ({exc})") from exc
    if not isinstance(body, dict) or body.get("status") != "success":
        error = body.get("error") if isinstance(body, dict) else body
        raise ReportError(f"{base}: query {expr!r} failed: {error}")
    result = body.get("data", {}).get("result", [])
    if not isinstance(result, list):
        raise ReportError(f"{base}: unexpected answer to {expr!r}")
    return result


def _vector(rows: Iterable[dict[str, Any]], *labels: str) -> dict[tuple[str, ...], float]:
    values: dict[tuple[str, ...], float] = {}
    for row in rows:
        value = float(row["value"][1])
        if math.isnan(value):
            continue
        values[tuple(row.get("metric", {}).get(label, "") for label in labels)] = value
    return values


LOOKBACK = "5m"  # Prometheus's default lookback: how far before a window its start value is


def calls_over(metric: str, window: str, selector: str = "") -> str:
    """PromQL for how much each series of the counter ``metric`` (with ``selector``, e.g.
    ``{route=~"x"}``) counted in the ``window`` before the evaluation time, exactly.

    ``increase()`` is an estimate: it extrapolates to the edges of the window, and it misses
    what a series had counted before its first scrape. Both matter in a fleet: a pod that a
    rollout or the autoscaler starts, and a consumer's first call on a pod, begin a new series,
    and a consumer who called once would count 0 (or 1.3). Instead: the series' last value in
    the window minus its value just before the window; a series born in the window (no value
    before it) counts whole. Only a series whose counter went back during the window (its
    process restarted under the same labels) falls back to ``increase()``.
    """
    series = f"{metric}{selector}"
    last = f"last_over_time({series}[{window}])"
    before = f"last_over_time({series}[{LOOKBACK}] offset {window})"
    return (
        f"((({last} - ({before} or {last} * 0)) >= 0) unless resets({series}[{window}]) > 0)"
        f" or increase({series}[{window}])"
    )


def read_prometheus(base: str, window: str, timeout: float) -> Samples:
    """The gateway series from a Prometheus server: calls over ``window``, summed over every
    scraped gateway; the latest call is the latest over them."""
    requests = _vector(
        _query(base, f"sum by (route, consumer) ({calls_over(DEPRECATED, window)})", timeout),
        "route",
        "consumer",
    )
    last_seen = _vector(
        _query(base, f"max by (route) (max_over_time({LAST_SEEN}[{window}]))", timeout), "route"
    )
    sunset = _vector(_query(base, f"max by (route) ({SUNSET})", timeout), "route")
    brownouts = _vector(
        _query(base, f"sum by (route) ({calls_over(BROWNOUTS, window)})", timeout), "route"
    )
    overflow = _vector(_query(base, f"sum({calls_over(OVERFLOW, window)})", timeout))
    versions = _vector(_query(base, f"count by (version) ({BUILD_INFO})", timeout), "version")
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
    )
