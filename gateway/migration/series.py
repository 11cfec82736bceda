"""The gateway's series as its readers ask for them (pure; no I/O): metric names, the PromQL that
counts calls exactly, and the parsing of Prometheus API answers.

Shared by the synchronous reader of ``gateway report`` and ``gateway consumers``
(:mod:`gateway.tools.report_reader`) and the asynchronous one of the migration page
(:mod:`gateway.migration.prometheus`), so both ask Prometheus the same questions and read its
answers the same way.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

DEPRECATED = "gateway_deprecated_requests_total"
LAST_SEEN = "gateway_deprecated_route_last_seen_timestamp_seconds"
CONSUMER_LAST_SEEN = "gateway_consumer_last_seen_timestamp_seconds"
SUNSET = "gateway_sunset_timestamp_seconds"
BROWNOUTS = "gateway_brownout_rejections_total"
OVERFLOW = "gateway_consumer_overflow_total"
BUILD_INFO = "gateway_build_info"

LOOKBACK = "5m"  # Prometheus's default lookback: how far before a window its start value is


class SourceError(Exception):
    """A source could not be read or did not look like the gateway's metrics."""


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


def consumer_calls(window: str) -> str:
    """Deprecated calls per consumer over ``window``, summed over every scraped gateway."""
    return f"sum by (consumer) ({calls_over(DEPRECATED, window)})"


def consumer_last_seen(window: str) -> str:
    """Each consumer's latest deprecated call within ``window``, over every scraped gateway."""
    return f"max by (consumer) (max_over_time({CONSUMER_LAST_SEEN}[{window}]))"


def answer(body: Any, base: str, expr: str) -> list[dict[str, Any]]:
    """The ``data.result`` of a Prometheus API answer; :class:`SourceError` otherwise."""
    if not isinstance(body, dict) or body.get("status") != "success":
        error = body.get("error") if isinstance(body, dict) else body
        raise SourceError(f"{base}: query {expr!r} failed: {error}")
    data = body.get("data")
    result = data.get("result", []) if isinstance(data, dict) else None
    if not isinstance(result, list):
        raise SourceError(f"{base}: unexpected answer to {expr!r}")
    return result


def vector(rows: Iterable[Mapping[str, Any]], *labels: str) -> dict[tuple[str, ...], float]:
    """An instant vector as ``(label values) -> value`` (NaN values left out)."""
    values: dict[tuple[str, ...], float] = {}
    for row in rows:
        value = float(row["value"][1])
        if math.isnan(value):
            continue
        values[tuple(row.get("metric", {}).get(label, "") for label in labels)] = value
    return values


def by_label(rows: Iterable[Mapping[str, Any]], label: str) -> dict[str, float]:
    """An instant vector with one label as ``label value -> value``."""
    return {key[0]: value for key, value in vector(rows, label).items()}


def matrix(rows: Iterable[Mapping[str, Any]], label: str) -> dict[str, dict[float, float]]:
    """A range vector as ``label value -> {timestamp: value}`` (NaN values left out)."""
    series: dict[str, dict[float, float]] = {}
    for row in rows:
        points = series.setdefault(row.get("metric", {}).get(label, ""), {})
        for moment, text in row.get("values", []):
            value = float(text)
            if not math.isnan(value):
                points[float(moment)] = value
    return series
