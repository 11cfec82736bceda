"""``gateway report``: who still calls the deprecated Preview Marketplace routes.

Reads a running gateway's ``/metrics`` (default) or a Prometheus server that scrapes it, and
prints, for every deprecated route: requests and consumers still calling, when it was last
called, days until its Sunset and the Marketplace v1 path to move to (from the gateway's rules).

From ``/metrics`` the counts are totals since the gateway process started; from Prometheus they
are the calls within ``--window`` (default 7d), summed over every scraped gateway (counted
exactly, not extrapolated: see :func:`gateway.migration.series.calls_over`).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gateway.config.instants import day, days_until, iso
from gateway.config.rules import RuleError, RuleSet, load_rules
from gateway.config.upstreams import ORIGINS as V1_ORIGINS
from gateway.tools.report_reader import (
    ReportError,
    Samples,
    read_metrics,
    read_prometheus,
)

EXIT_OK = 0
EXIT_STILL_CALLED = 1
EXIT_USAGE = 2

DEFAULT_METRICS_URL = "http://127.0.0.1:8080/metrics"
DEFAULT_WINDOW = "7d"

WINDOW_PATTERN = re.compile(r"[1-9][0-9]*[smhdwy]")


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
    if days >= 0:
        return f"sunset {day(moment)} (in {days:g} days)"
    return f"sunset {day(moment)} ({-days:g} days ago)"


def format_text(report: Report) -> str:
    """A human-readable migration status."""
    now = report.generated_at
    scope = f"calls in the last {report.window}" if report.window else "since gateway start"
    lines = [
        "Preview Marketplace -> Marketplace v1 migration status",
        f"source: {report.source} ({scope}), at {iso(now)}",
        "",
    ]
    for status in report.routes:
        methods = ",".join(status.methods) or "?"
        seen = (
            f"last seen {iso(status.last_seen)} ({_ago(status.last_seen, now)})"
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
        "generated_at": iso(now),
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
                "last_seen": iso(s.last_seen),
                "last_seen_timestamp": s.last_seen,
                "sunset": iso(s.sunset),
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
    add_source_arguments(parser, DEFAULT_WINDOW, "requests")
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


def add_source_arguments(
    parser: argparse.ArgumentParser, default_window: str, counted: str
) -> None:
    """The source flags ``gateway report`` and ``gateway consumers`` share: ``--metrics-url``
    or ``--prometheus-url``, and ``--window`` (which counts ``counted``, as the tool words it).
    :func:`source_flags_problem` checks them; :func:`read_source` reads what they name."""
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
        help="a Prometheus server scraping the gateway(s), e.g. http://127.0.0.1:9090",
    )
    parser.add_argument(
        "--window",
        default=None,
        metavar="RANGE",
        help=f"with --prometheus-url: count {counted} over this range (default {default_window}); "
        "/metrics counts since the gateway started, so --metrics-url refuses it",
    )


def source_flags_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the source flags (``--metrics-url``, ``--prometheus-url``,
    ``--window``), before anything is fetched (None: nothing). ``gateway consumers`` shares it."""
    if args.window is not None:
        if not args.prometheus_url:
            return (
                f"--window {args.window}: only with --prometheus-url (a gateway's /metrics "
                "counts since it started; it has no window)"
            )
        if not WINDOW_PATTERN.fullmatch(args.window):
            return f"--window {args.window!r}: expected e.g. 1h, 7d, 4w"
    urls = (("--metrics-url", args.metrics_url), ("--prometheus-url", args.prometheus_url))
    for flag, url in urls:
        if url is not None and not _is_http_url(url):
            return f"{flag} {url!r}: expected an absolute http(s) URL, e.g. {DEFAULT_METRICS_URL}"
    return None


def _is_http_url(text: str) -> bool:
    try:
        parts = urllib.parse.urlsplit(text)
        parts.port  # noqa: B018 (a port out of range or not a number raises here)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def read_source(args: argparse.Namespace, default_window: str) -> tuple[str, str | None, Samples]:
    """The samples of the source the flags name, as ``(source, window, samples)``: the window
    is None for a gateway's ``/metrics`` (it counts since the gateway started). Raises
    :class:`ReportError` when the source cannot be read."""
    if args.prometheus_url:
        window = args.window or default_window
        return (
            args.prometheus_url,
            window,
            read_prometheus(args.prometheus_url, window, args.timeout),
        )
    source = args.metrics_url or DEFAULT_METRICS_URL
    return source, None, read_metrics(source, args.timeout)


def run(args: argparse.Namespace) -> int:
    """Run ``gateway report``: 0 on success, 2 when the source is unreachable or unusable."""
    problem = source_flags_problem(args)
    if problem is not None:
        print(f"gateway report: {problem}", file=sys.stderr)
        return EXIT_USAGE
    try:
        rules = load_rules(args.rules)
        source, window, samples = read_source(args, DEFAULT_WINDOW)
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
