"""``gateway report``: who still calls the deprecated Preview Marketplace routes.

Reads a running gateway's ``/metrics`` (default) or a Prometheus server that scrapes it, and
prints, for every deprecated route: requests and consumers still calling, when it was last
called, days until its Sunset and the Marketplace v1 path to move to (from the gateway's rules).

From ``/metrics`` the counts are totals since the gateway process started; from Prometheus they
are the increase over ``--window`` (default 7d), summed over every scraped gateway.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from gateway.rules import RuleError, RuleSet, load_rules

EXIT_OK = 0
EXIT_STILL_CALLED = 1
EXIT_USAGE = 2

DEFAULT_METRICS_URL = "http://127.0.0.1:8080/metrics"
V1_ORIGINS = {"marketplace": "https://marketplace.twilio.com", "api": "https://api.twilio.com"}

DEPRECATED = "gateway_deprecated_requests_total"
LAST_SEEN = "gateway_deprecated_route_last_seen_timestamp_seconds"
SUNSET = "gateway_sunset_timestamp_seconds"
BROWNOUTS = "gateway_brownout_rejections_total"
OVERFLOW = "gateway_consumer_overflow_total"
BUILD_INFO = "gateway_build_info"

_WINDOW = re.compile(r"[1-9][0-9]*[smhdwy]")


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


@dataclass(frozen=True, slots=True)
class RouteStatus:
    """Migration status of one deprecated route."""

    route: str
    methods: tuple[str, ...]
    preview_path: str | None
    v1_path: str | None
    v1_url: str | None
    requests: int
    consumers: tuple[tuple[str, int], ...]  # most requests first
    last_seen: float | None
    sunset: float | None
    brownout_rejections: int


@dataclass(frozen=True, slots=True)
class Report:
    """The whole migration status."""

    source: str
    generated_at: float
    window: str | None
    routes: tuple[RouteStatus, ...]
    consumer_overflow: int
    versions: tuple[str, ...] = field(default=())

    @property
    def still_called(self) -> tuple[RouteStatus, ...]:
        """Routes with at least one request."""
        return tuple(route for route in self.routes if route.requests > 0)

    def consumers(self) -> list[tuple[str, int, tuple[str, ...]]]:
        """``(consumer, requests, routes)`` over all routes, most requests first."""
        totals: dict[str, int] = {}
        routes: dict[str, list[str]] = {}
        for status in self.routes:
            for consumer, count in status.consumers:
                totals[consumer] = totals.get(consumer, 0) + count
                routes.setdefault(consumer, []).append(status.route)
        return sorted(
            ((c, n, tuple(routes[c])) for c, n in totals.items()), key=lambda t: (-t[1], t[0])
        )


# --- reading the sources -------------------------------------------------------------------------


_LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1", "[::1]"})


def _fetch(url: str, timeout: float) -> bytes:
    request = urllib.request.Request(url, headers={"Accept": "text/plain, application/json"})
    # HTTP(S)_PROXY from the environment applies, except to a gateway on this machine.
    host = urllib.parse.urlsplit(url).hostname or ""
    handlers = [urllib.request.ProxyHandler({})] if host in _LOOPBACK else []
    opener = urllib.request.build_opener(*handlers)
    try:
        with opener.open(request, timeout=timeout) as response:
            body: bytes = response.read()
            return body
    except urllib.error.HTTPError as exc:
        raise ReportError(f"{url}: HTTP {exc.code} {exc.reason}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ReportError(f"cannot reach {url}: {reason}") from exc


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
        body = json.loads(_fetch(url, timeout))
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


def read_prometheus(base: str, window: str, timeout: float) -> Samples:
    """The gateway series from a Prometheus server: increases over ``window``."""
    requests = _vector(
        _query(
            base,
            f"sum by (route, consumer) (increase({DEPRECATED}[{window}]))",
            timeout,
        ),
        "route",
        "consumer",
    )
    last_seen = _vector(
        _query(base, f"max by (route) (max_over_time({LAST_SEEN}[{window}]))", timeout), "route"
    )
    sunset = _vector(_query(base, f"max by (route) ({SUNSET})", timeout), "route")
    brownouts = _vector(
        _query(base, f"sum by (route) (increase({BROWNOUTS}[{window}]))", timeout), "route"
    )
    overflow = _vector(_query(base, f"sum(increase({OVERFLOW}[{window}]))", timeout))
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


# --- building and printing the report ------------------------------------------------------------


def build_report(
    samples: Samples, rules: RuleSet, source: str, now: float, window: str | None = None
) -> Report:
    """Combine the samples with the rules (deprecated routes, v1 replacements)."""
    by_route: dict[str, dict[str, int]] = {}
    for (route, consumer), value in samples.requests.items():
        count = round(value)
        if count > 0:
            counts = by_route.setdefault(route, {})
            counts[consumer] = counts.get(consumer, 0) + count
    deprecated = [rule for rule in rules.rules if rule.deprecated]
    names = [rule.name for rule in deprecated]
    extra = sorted(
        (set(by_route) | set(samples.sunset) | set(samples.last_seen)) - set(names) - {""}
    )
    known = {rule.name: rule for rule in deprecated}
    routes: list[RouteStatus] = []
    for name in names + extra:
        rule = known.get(name)
        consumers = sorted(by_route.get(name, {}).items(), key=lambda item: (-item[1], item[0]))
        routes.append(
            RouteStatus(
                route=name,
                methods=tuple(sorted(rule.methods)) if rule else (),
                preview_path=rule.source.text if rule else None,
                v1_path=rule.target.text if rule else None,
                v1_url=(V1_ORIGINS.get(rule.upstream, "") + rule.target.text) if rule else None,
                requests=sum(count for _, count in consumers),
                consumers=tuple(consumers),
                last_seen=samples.last_seen.get(name) or None,
                sunset=samples.sunset.get(name),
                brownout_rejections=round(samples.brownouts.get(name, 0.0)),
            )
        )
    return Report(
        source=source,
        generated_at=now,
        window=window,
        routes=tuple(routes),
        consumer_overflow=round(samples.overflow),
        versions=samples.versions,
    )


def _iso(moment: float | None) -> str | None:
    if moment is None:
        return None
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def days_until(moment: float | None, now: float) -> float | None:
    """Days from ``now`` to ``moment`` (negative once it has passed), to 0.1 day."""
    return None if moment is None else round((moment - now) / 86400, 1)


def _ago(moment: float, now: float) -> str:
    seconds = max(0.0, now - moment)
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count != 1 else ''} ago"
    return "just now"


def _sunset_text(moment: float | None, now: float) -> str:
    days = days_until(moment, now)
    if moment is None or days is None:
        return "sunset not configured"
    day = datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%d")
    if days >= 0:
        return f"sunset {day} (in {days:g} days)"
    return f"sunset {day} ({-days:g} days ago)"


def format_text(report: Report) -> str:
    """A human-readable migration status."""
    now = report.generated_at
    scope = f"increase over the last {report.window}" if report.window else "since gateway start"
    lines = [
        "Preview Marketplace -> Marketplace v1 migration status",
        f"source: {report.source} ({scope}), at {_iso(now)}",
        "",
    ]
    for status in report.routes:
        methods = ",".join(status.methods) or "?"
        seen = (
            f"last seen {_iso(status.last_seen)} ({_ago(status.last_seen, now)})"
            if status.last_seen
            else "not seen"
        )
        state = f"{status.requests} request(s)" if status.requests else "no calls"
        lines.append(f"{status.route}: {state}, {seen}, {_sunset_text(status.sunset, now)}")
        if status.preview_path:
            lines.append(f"  {methods} {status.preview_path} -> {status.v1_url}")
        else:
            lines.append("  (not in the loaded rules: pass --rules DIR for the v1 replacement)")
        for consumer, count in status.consumers:
            lines.append(f"    {consumer}: {count}")
        if status.brownout_rejections:
            lines.append(f"  brownout rejections (410): {status.brownout_rejections}")
    called = report.still_called
    consumers = report.consumers()
    lines.append("")
    if called:
        lines.append(
            f"{len(called)} of {len(report.routes)} deprecated route(s) still called by "
            f"{len(consumers)} consumer(s):"
        )
        for consumer, count, routes in consumers:
            lines.append(f"  {consumer}: {count} request(s) on {', '.join(routes)}")
    else:
        lines.append("No deprecated route was called: the migration is complete for this source.")
    if report.consumer_overflow:
        lines.append(
            f"{report.consumer_overflow} request(s) were counted as consumer 'other' (label cap "
            "reached): raise --consumer-cap or name consumers with --consumer-names."
        )
    return "\n".join(lines)


def to_json(report: Report) -> dict[str, Any]:
    """The report as plain JSON-able data."""
    now = report.generated_at
    return {
        "source": report.source,
        "generated_at": _iso(now),
        "window": report.window,
        "gateway_versions": list(report.versions),
        "still_called": bool(report.still_called),
        "consumer_overflow": report.consumer_overflow,
        "routes": [
            {
                "route": s.route,
                "methods": list(s.methods),
                "preview_path": s.preview_path,
                "v1_path": s.v1_path,
                "v1_url": s.v1_url,
                "requests": s.requests,
                "consumers": [{"consumer": c, "requests": n} for c, n in s.consumers],
                "last_seen": _iso(s.last_seen),
                "last_seen_timestamp": s.last_seen,
                "sunset": _iso(s.sunset),
                "sunset_timestamp": s.sunset,
                "days_until_sunset": days_until(s.sunset, now),
                "brownout_rejections": s.brownout_rejections,
            }
            for s in report.routes
        ],
        "consumers": [
            {"consumer": c, "requests": n, "routes": list(routes)}
            for c, n, routes in report.consumers()
        ],
    }


# --- command line -----------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``gateway report``'s arguments to ``parser``."""
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--metrics-url",
        metavar="URL",
        default=None,
        help=f"a running gateway's metrics endpoint (default {DEFAULT_METRICS_URL})",
    )
    source.add_argument(
        "--prometheus-url",
        metavar="URL",
        default=None,
        help="a Prometheus server scraping the gateway, e.g. http://127.0.0.1:9090",
    )
    parser.add_argument(
        "--window",
        default="7d",
        metavar="RANGE",
        help="with --prometheus-url: count requests over this range (default 7d)",
    )
    parser.add_argument(
        "--format", choices=("text", "json"), default="text", help="output format (default text)"
    )
    parser.add_argument(
        "--rules",
        type=Path,
        default=None,
        metavar="DIR",
        help="rule directory the gateway runs with (default: the built-in rules)",
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, metavar="SECONDS", help="HTTP timeout (default 10)"
    )
    parser.add_argument(
        "--fail-if-called",
        action="store_true",
        help="exit 1 when any deprecated route was called (for CI gates)",
    )


def run(args: argparse.Namespace) -> int:
    """Run ``gateway report``: 0 on success, 2 when the source is unreachable or unusable."""
    if not _WINDOW.fullmatch(args.window):
        print(
            f"gateway report: --window {args.window!r}: expected e.g. 1h, 7d, 4w", file=sys.stderr
        )
        return EXIT_USAGE
    try:
        rules = load_rules(args.rules)
        if args.prometheus_url:
            source, window = args.prometheus_url, args.window
            samples = read_prometheus(source, window, args.timeout)
        else:
            source, window = args.metrics_url or DEFAULT_METRICS_URL, None
            samples = read_metrics(source, args.timeout)
    except (ReportError, RuleError) as exc:
        print(f"gateway report: {exc}", file=sys.stderr)
        return EXIT_USAGE
    report = build_report(samples, rules, source, time.time(), window)
    if args.format == "json":
        print(json.dumps(to_json(report), indent=2))
    else:
        print(format_text(report))
    if args.fail_if_called and report.still_called:
        return EXIT_STILL_CALLED
    return EXIT_OK
