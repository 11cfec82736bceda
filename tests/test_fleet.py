"""Correct across replicas: 3 independent ``gateway serve`` processes (separate registries, as
separate pods; not ``--workers``) behind the test's own round robin, the simulator upstream, and
one real Prometheus scraping all three.

Proven here, against what the test sent:
- every dashboard query: counts equal the calls sent (over the whole run, and over a window that
  starts after the first calls, so both ways a series can begin are covered); rates sum the
  instances; the latest call is the maximum over them; ``gateway report --prometheus-url`` agrees;
- the consumer cap: each process labels at most ``CAP`` consumers, so a fleet of N writes at
  most N x CAP consumer labels (plus the fixed words ``other``, ``unauthenticated``,
  ``anonymous``): the bound is reached here and holds, and no call
  is lost to it;
- a 25 % brownout refuses 25 % +- ``TOLERANCE`` points of the fleet's calls, and a consumer gets
  the same answer from every replica within a minute (see gateway.migration.brownout.refuses).
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import re
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.config.policy import parse_schedule
from gateway.config.rules import load_rules
from gateway.migration.brownout import CONSISTENT_SECONDS, refuses
from gateway.migration.series import LAST_SEEN, SUNSET
from gateway.simulator import load_seed
from tests.conftest import make_config
from tests.fleet import (
    Call,
    Fleet,
    Scrape,
    Sent,
    count_by,
    fleet_processes,
    round_robin,
    scrape,
    send,
    total,
    wait_fleet_ready,
)
from tests.prometheus import Prometheus, prometheus_binary, running_prometheus
from tests.test_grafana import dashboard_queries, load_dashboard

pytestmark = [pytest.mark.slow, pytest.mark.upstream]

REPLICAS = 3
CAP = 5  # --consumer-cap of each replica
PERCENT = 25  # the brownout's share
CONSUMERS = 1200  # each sends 3 calls in a row, one to each replica: 3,600 deprecated calls
# The refused share is decided per consumer (and minute), so its standard deviation over
# CONSUMERS equally busy consumers is sqrt(0.25 * 0.75 / 1200) = 1.25 points: 5 points is 4 sd.
TOLERANCE = 5.0
CONCURRENCY = 24
DEADLINE = 50  # seconds for the whole test body; measured ~20 s on 2 busy cores

SIDS = [f"AC{index:032x}" for index in range(CONSUMERS)]


def warm_sids(window_start: float) -> list[list[str]]:
    """The CAP consumers each replica admits first, one warm-up call each. A label is admitted
    only for a call the upstream answered, so these are SIDs the brownout lets through in the
    window's first two minutes (its answer per SID and minute is deterministic)."""
    window = parse_schedule(brownout_text(window_start)).windows[0]
    passing = [
        sid
        for sid in SIDS
        if not any(
            refuses(window, basic(sid), window_start + minute * CONSISTENT_SECONDS + 1, _never)
            for minute in (0, 1)
        )
    ]
    return [passing[CAP * i : CAP * (i + 1)] for i in range(REPLICAS)]


def _never() -> float:
    raise AssertionError("a SID's brownout answer is not random")


def basic(sid: str) -> str:
    return "Basic " + base64.b64encode(f"{sid}:token".encode()).decode()


_seed = load_seed(None)
DEPRECATED = [
    ("/marketplace/AvailableAddOns?PageSize=2", "preview_available_add_ons"),
    (f"/marketplace/AvailableAddOns/{_seed.available_add_ons[0].sid}", "preview_available_add_on"),
    ("/marketplace/InstalledAddOns?PageSize=2", "preview_installed_add_ons"),
]
DEPRECATED_ROUTES = [rule.name for rule in load_rules().rules if rule.deprecated]  # each a sunset
V1 = Call("/v1/AvailableAddOns?PageSize=2", "v1_available_add_ons", False, None)
NOT_FOUND = Call("/no/such/route", "unmatched", False, None)


def deprecated_call(index: int, sid: str | None) -> Call:
    path, route = DEPRECATED[index % len(DEPRECATED)]
    return Call(path, route, True, sid)


def bulk_calls() -> list[Call]:
    """3 calls per consumer in a row (so one to each replica), and every 4th consumer a v1
    call, an anonymous deprecated call and a 404 (3 more: the alignment holds)."""
    calls: list[Call] = []
    for index, sid in enumerate(SIDS):
        calls += [deprecated_call(index, sid)] * REPLICAS
        if index % 4 == 3:
            calls += [Call(V1.path, V1.route, False, sid), deprecated_call(0, None), NOT_FOUND]
    return calls


def label(sent: Sent, warm: list[list[str]]) -> str:
    """The consumer label the replica gives a deprecated call: its first CAP SIDs are warm; any
    other SID is `other` once the upstream accepted it, `unauthenticated` when the brownout
    refused it before any upstream saw it. A call without credentials is `unauthenticated` when
    the upstream refused it (401), `anonymous` when the brownout did."""
    sid = sent.call.sid
    if sid is None:
        return "anonymous" if sent.status == 410 else "unauthenticated"
    if sid in warm[sent.instance]:
        return sid
    return "unauthenticated" if sent.status == 410 else "other"


@dataclass(frozen=True)
class Expected:
    """The figures a query over some window must show, from the calls sent in it."""

    by_consumer: Counter[tuple[str, str]]  # (consumer label, route) -> deprecated calls
    refused: Counter[str]  # route -> 410s
    last_call: dict[str, float]  # route -> latest call, the max over the replicas' gauges
    sunset: float
    routes: frozenset[str]  # every route called
    forwarded: frozenset[str]  # routes with a call that reached the upstream

    @classmethod
    def of(
        cls,
        sent: Sequence[Sent],
        last_call: dict[str, float],
        sunset: float,
        warm: list[list[str]],
    ) -> Expected:
        deprecated = [s for s in sent if s.call.deprecated]
        return cls(
            Counter((label(s, warm), s.call.route) for s in deprecated),
            Counter(s.call.route for s in deprecated if s.status == 410),
            last_call,
            sunset,
            frozenset(s.call.route for s in sent),
            frozenset(s.call.route for s in sent if s.status not in (404, 410)),
        )

    @property
    def deprecated(self) -> int:
        return sum(self.by_consumer.values())

    @property
    def other(self) -> int:
        return sum(n for (consumer, _), n in self.by_consumer.items() if consumer == "other")

    def per_route(self) -> Counter[str]:
        result: Counter[str] = Counter()
        for (_, route), n in self.by_consumer.items():
            result[route] += n
        return result


# --- what each dashboard query must show ----------------------------------------------------

Rows = list[dict[str, Any]]


def values(rows: Rows, *labels: str) -> dict[tuple[str, ...], float]:
    for row in rows:
        assert "instance" not in row["metric"], f"a series per instance: {row['metric']}"
    return {tuple(row["metric"].get(k, "") for k in labels): float(row["value"][1]) for row in rows}


def one(rows: Rows) -> float:
    (value,) = values(rows).values()
    return value


def exactly(counts: Counter[Any] | dict[Any, int]) -> dict[Any, float]:
    return {key if isinstance(key, tuple) else (key,): float(n) for key, n in counts.items() if n}


def check_top(rows: Rows, e: Expected) -> None:
    got = values(rows, "consumer", "route")
    ranked = sorted(e.by_consumer.values(), reverse=True)
    assert len(got) == min(25, len(e.by_consumer))
    assert all(got[key] == e.by_consumer[key] for key in got), got
    assert min(got.values()) >= (ranked[25] if len(ranked) > 25 else 0)


def check_counts(e: Expected) -> dict[str, Callable[[Rows], None]]:
    """Panel checks whose figures depend on the window: they must equal what was sent in it."""
    consumers = {consumer for consumer, _ in e.by_consumer}
    return {
        "Deprecated requests (time range)/A": lambda r: _eq(one(r), e.deprecated),
        "Consumers still calling (time range)/A": lambda r: _eq(one(r), len(consumers)),
        'Requests folded into consumer "other" (time range)/A': lambda r: _eq(one(r), e.other),
        "Top consumers of deprecated routes (time range)/A": lambda r: check_top(r, e),
    }


def check_levels(e: Expected, at: float) -> dict[str, Callable[[Rows], None]]:
    """Panel checks that do not depend on the dashboard's time range (``e``: the whole run)."""
    days = (e.sunset - at) / 86400
    return {
        "Burn-down: deprecated requests per day/A": lambda r: _eq(  # always the last 24 h
            values(r, "route"), exactly(e.per_route())
        ),
        "Days until sunset/A": lambda r: _close(one(r), days),
        "Deprecated routes: last call and sunset/A": lambda r: _close(
            # never-called routes have no last-seen series: no "last call" rather than 56 years
            values(r, "route"),
            {(k,): at - v for k, v in e.last_call.items()},
        ),
        "Deprecated routes: last call and sunset/B": lambda r: _close(
            values(r, "route"), {(k,): days for k in DEPRECATED_ROUTES}
        ),
        "Error rate/A": lambda r: _eq(one(r), 0.0),  # no 5xx was sent
        "Error rate/B": lambda r: _between(one(r), 0.0, 1.0),  # the 404s and 410s
        "Gateway build/A": lambda r: _eq(sorted(values(r, "version").values()), [REPLICAS]),
        "Request latency p50 / p99 by route/A": lambda r: _positive(r, e.routes),
        "Request latency p50 / p99 by route/B": lambda r: _positive(r, e.routes),
        "Upstream latency p50 / p99 by route/A": lambda r: _positive(r, e.forwarded),
        "Upstream latency p50 / p99 by route/B": lambda r: _positive(r, e.forwarded),
    }


# Rates: the fleet's figure must be the sum of the replicas' (evaluated per instance).
SUMMED_RATES = {
    "Deprecated traffic by route/A",
    "Deprecated traffic by consumer/A",
    "Upstream failures by kind/A",
    "Brownout hits/A",
    "All requests by status class/A",
}


def _eq(got: object, want: object) -> None:
    assert got == want, (got, want)


def _close(got: Any, want: Any) -> None:
    if isinstance(want, dict):
        assert got.keys() == want.keys(), (got, want)
        for key in want:
            assert got[key] == pytest.approx(want[key], abs=1e-3), (key, got, want)
    else:
        assert got == pytest.approx(want, abs=1e-3), (got, want)


def _between(got: float, low: float, high: float) -> None:
    assert low < got < high, got


def _positive(rows: Rows, routes: frozenset[str]) -> None:
    """A latency for every route called (routes without calls have none: 0/0 is NaN)."""
    got = {key[0]: v for key, v in values(rows, "route").items() if not math.isnan(v)}
    assert got.keys() == routes and all(0 < v < 10 for v in got.values()), got


def per_instance(expr: str, instance: str) -> str:
    """``expr`` with every gateway series selector narrowed to one ``instance``."""

    def narrow(match: re.Match[str]) -> str:
        inner = match.group(2) or ""
        return f'{match.group(1)}{{instance="{instance}"{"," if inner else ""}{inner}}}'

    return re.sub(r"\b(gateway_[a-z_]+)(?:\{([^}]*)\})?", narrow, expr)


def concrete(expr: str, window: str) -> str:
    """The dashboard's template variables as Grafana would fill them for a range ``window``."""
    for variable, value in (
        ("$__rate_interval", "1m"),
        ("$__interval", "1m"),
        ("$__range", window),
        ("${route:regex}", ".*"),
        ("$route", ".*"),
        ("$job", "gateway"),  # tests/prometheus.py's job
        ("$namespace", ""),  # a static scrape sets none: the selector matches its absence
    ):
        expr = expr.replace(variable, value)
    assert "$" not in expr, expr
    return expr


async def scalar(prometheus: Prometheus, session: aiohttp.ClientSession, expr: str) -> float:
    result = (await prometheus.query(session, expr))["result"]
    return float(result[0]["value"][1]) if result else math.nan


async def wait_scraped(prometheus: Prometheus, session: aiohttp.ClientSession, calls: int) -> None:
    async def scraped() -> bool:
        return await scalar(prometheus, session, "sum(gateway_requests_total)") == calls

    await prometheus.wait_for(f"Prometheus to see {calls} calls", scraped, 20)


def brownout_text(window_start: float) -> str:
    start = datetime.fromtimestamp(window_start, UTC)
    end = datetime.fromtimestamp(window_start + 3602, UTC)
    return f"{start.isoformat()}/{end.isoformat()}@{PERCENT}"


async def test_three_replicas_behind_one_prometheus(tmp_path: Path) -> None:
    prometheus_binary()  # fail at once when it is missing
    began = time.time()
    window_start = int(began) - 2
    kept = warm_sids(window_start)
    serve_args = ["--consumer-cap", str(CAP), "--brownouts", brownout_text(window_start)]
    timeout = aiohttp.ClientTimeout(total=20)
    async with asyncio.timeout(DEADLINE):
        with fleet_processes(REPLICAS, serve_args, tmp_path) as (fleet, gateways):
            async with (
                running_prometheus(fleet.targets, tmp_path) as prometheus,
                aiohttp.ClientSession(timeout=timeout) as session,
            ):
                await wait_fleet_ready(fleet, gateways)
                await prometheus.wait_ready(session)

                async def all_up() -> bool:
                    return await scalar(prometheus, session, "sum(up)") == REPLICAS

                await prometheus.wait_for("a scrape of every replica", all_up, 20)
                # Replica i first sees the consumers kept[i]: they fill its cap.
                warm_plan = [
                    (i, deprecated_call(0, sid)) for i in range(REPLICAS) for sid in kept[i]
                ]
                warm = await send(session, fleet, warm_plan, 1)
                await wait_scraped(prometheus, session, len(warm))
                await asyncio.sleep(0.3)
                middle = time.time()  # every series has a sample before; the rest comes after
                bulk = await send(session, fleet, round_robin(bulk_calls(), REPLICAS), CONCURRENCY)
                bulk_seconds = time.time() - middle
                await asyncio.sleep(0.05)
                # The latest call of all goes to replica 1: the fleet's last_seen must be its.
                poke = await send(session, fleet, [(1, deprecated_call(0, kept[1][0]))], 1)
                sent = warm + bulk + poke
                await wait_scraped(prometheus, session, len(sent))
                at = time.time()
                direct = [scrape(url) for url in fleet.urls]
                await check_fleet(
                    prometheus, session, fleet, direct, sent, bulk + poke, at, middle, kept
                )
                report = await asyncio.to_thread(
                    subprocess.run,
                    [sys.executable, "-m", "gateway", "report", "--prometheus-url"]
                    + [prometheus.url, "--window", "5m", "--format", "json"],
                    capture_output=True,
                    text=True,
                    timeout=30,
                    check=False,
                )
    assert report.returncode == 0, report.stderr
    sunset = make_config().deprecation.sunset.timestamp()
    expected = Expected.of(sent, last_calls(direct), sunset, kept)
    check_report(json.loads(report.stdout), expected)
    check_brownout(bulk, window_start)
    print(
        f"\nfleet: {len(sent)} calls, bulk of {len(bulk)} in {bulk_seconds:.1f} s; "
        f"whole test {time.time() - began:.1f} s"
    )


def last_calls(direct: Sequence[Scrape]) -> dict[str, float]:
    """Route -> the latest call, the maximum of the replicas' own gauges."""
    latest: dict[str, float] = {}
    for samples in direct:
        for (name, labels), value in samples.items():
            if name == LAST_SEEN:
                route = dict(labels)["route"]
                latest[route] = max(latest.get(route, 0.0), value)
    return latest


async def check_fleet(
    prometheus: Prometheus,
    session: aiohttp.ClientSession,
    fleet: Fleet,
    direct: Sequence[Scrape],
    sent: Sequence[Sent],
    later: Sequence[Sent],
    at: float,
    middle: float,
    warm: list[list[str]],
) -> None:
    """Everything Prometheus answers at ``at`` against what was sent (and each /metrics)."""

    async def by_instance(expr: str) -> dict[str, float]:
        rows = (await prometheus.query(session, expr, at))["result"]
        return {row["metric"]["instance"]: float(row["value"][1]) for row in rows}

    # Per instance and summed: what was sent, what each replica counted, what Prometheus holds.
    sent_to = count_by(sent, "instance")
    deprecated_to = count_by([s for s in sent if s.call.deprecated], "instance")
    refused_to = count_by([s for s in sent if s.status == 410], "instance")
    lines = [f"{'instance':<18}{'sent':>6}{'/metrics':>10}{'Prometheus':>12}   (deprecated; 410)"]
    columns: dict[str, list[float]] = defaultdict(list)
    for metric, counts in (
        ("gateway_requests_total", sent_to),
        ("gateway_deprecated_requests_total", deprecated_to),
        ("gateway_brownout_rejections_total", refused_to),
    ):
        scraped = await by_instance(f"sum by (instance) ({metric})")
        for index, target in enumerate(fleet.targets):
            want, own = counts[(index,)], total(direct[index], metric)
            assert want == own == scraped[target], (metric, target, want, own, scraped)
            columns[target] += [want, own, scraped[target]]
        columns["sum"] += [sum(counts.values()), sum(total(d, metric) for d in direct)]
        columns["sum"] += [await scalar_at(prometheus, session, f"sum({metric})", at)]
    for name, row in columns.items():
        figures = [f"{int(row[k]):>6}{int(row[k + 1]):>10}{int(row[k + 2]):>12}" for k in (0, 3, 6)]
        lines.append(f"{name:<18}" + " | ".join(figures))
    print("\n" + "\n".join(lines))
    assert columns["sum"][0] == len(sent)

    # last_seen: the fleet's is the maximum over the replicas, here replica 1's (the poke).
    latest = last_calls(direct)
    route = DEPRECATED[0][1]
    own = [d[(LAST_SEEN, (("route", route),))] for d in direct]
    assert latest[route] == own[1] > max(own[0], own[2]), own
    fleet_latest = await prometheus.query(session, f"max by (route) ({LAST_SEEN})", at)
    assert values(fleet_latest["result"], "route") == pytest.approx(
        {(k,): v for k, v in latest.items()}
    )

    # The consumer cap holds per replica (CAP labels + other), so the fleet's bound is N x CAP.
    for index, samples in enumerate(direct):
        consumers = {
            dict(labels)["consumer"]
            for (name, labels) in samples
            if name == "gateway_deprecated_requests_total"
        }
        fixed = {label(s, warm) for s in sent if s.call.deprecated and s.instance == index}
        assert consumers == fixed and set(warm[index]) <= consumers, (index, consumers)
        assert consumers - set(warm[index]) <= {"other", "anonymous", "unauthenticated"}
    distinct = await scalar_at(
        prometheus, session, "count(count by (consumer) (gateway_deprecated_requests_total))", at
    )
    words = {label(s, warm) for s in sent if s.call.deprecated} - set(SIDS)
    assert distinct == REPLICAS * CAP + len(words)  # the bound is reached, and holds

    # Every dashboard query, over the whole run and over a window that starts after the warm-up.
    sunset = await scalar_at(prometheus, session, f"max({SUNSET})", at)
    since_middle = f"{math.ceil((at - middle) * 1000)}ms"
    windows = {
        "5m": Expected.of(sent, latest, sunset, warm),
        since_middle: Expected.of(later, latest, sunset, warm),
    }
    for window, expected in windows.items():
        shown = math.nan
        counts, levels = check_counts(expected), check_levels(windows["5m"], at)
        for title, ref, expr in dashboard_queries(load_dashboard()):
            key = f"{title}/{ref}"
            query = concrete(expr, window)
            rows = (await prometheus.query(session, query, at))["result"]
            if key in counts:
                counts[key](rows)
            elif key in levels:
                levels[key](rows)
            elif key in SUMMED_RATES:
                await check_summed(prometheus, session, fleet, query, rows, at)
            else:
                raise AssertionError(f"no expectation for the dashboard query {key}: add one")
            if key == "Deprecated requests (time range)/A":
                shown = one(rows)
        estimate = await scalar_at(
            prometheus, session, f"sum(increase(gateway_deprecated_requests_total[{window}]))", at
        )
        print(
            f"deprecated calls in the last {window}: {expected.deprecated} sent, dashboard "
            f"{shown:.0f} (the former increase() query: {estimate:.1f})"
        )


async def scalar_at(
    prometheus: Prometheus, session: aiohttp.ClientSession, expr: str, at: float
) -> float:
    result = (await prometheus.query(session, expr, at))["result"]
    return float(result[0]["value"][1]) if result else math.nan


async def check_summed(
    prometheus: Prometheus,
    session: aiohttp.ClientSession,
    fleet: Fleet,
    query: str,
    rows: Rows,
    at: float,
) -> None:
    def keyed(result: Rows) -> dict[tuple[tuple[str, str], ...], float]:
        return {tuple(sorted(r["metric"].items())): float(r["value"][1]) for r in result}

    summed: dict[tuple[tuple[str, str], ...], float] = defaultdict(float)
    for target in fleet.targets:
        own = (await prometheus.query(session, per_instance(query, target), at))["result"]
        for key, value in keyed(own).items():
            summed[key] += value
    fleet_values = keyed(rows)
    assert all("instance" not in dict(key) for key in fleet_values), query
    assert fleet_values == pytest.approx(dict(summed)), query


def check_report(data: dict[str, Any], e: Expected) -> None:
    """``gateway report --prometheus-url`` (window 5m: the whole run) against what was sent."""
    routes = {r["route"]: r for r in data["routes"]}
    consumers = {
        (c["consumer"], name): c["requests"] for name, r in routes.items() for c in r["consumers"]
    }
    assert consumers == dict(e.by_consumer)
    refused = {name: r["brownout_rejections"] for name, r in routes.items()}
    assert {k: v for k, v in refused.items() if v} == dict(e.refused)
    called = e.per_route()
    for name, r in routes.items():
        if called[name]:
            assert r["last_seen_timestamp"] == pytest.approx(e.last_call[name]), name
        else:
            assert r["last_seen_timestamp"] is None, name
    assert data["consumer_overflow"] == e.other


def check_brownout(bulk: Sequence[Sent], window_start: float) -> None:
    """The fleet refuses PERCENT +- TOLERANCE of the calls; a consumer's 3 calls (one to each
    replica) within one minute of the window get one answer."""
    calls = [s for s in bulk if s.call.deprecated and s.call.sid]
    share = 100 * sum(s.status == 410 for s in calls) / len(calls)
    assert abs(share - PERCENT) <= TOLERANCE, share
    assert {s.status for s in calls} == {200, 410}

    def minute(moment: float) -> int:
        return int((moment - window_start) // CONSISTENT_SECONDS)

    by_sid: dict[str, list[Sent]] = defaultdict(list)
    for s in calls:
        by_sid[str(s.call.sid)].append(s)
    checked = 0
    for sid, own in by_sid.items():
        assert {s.instance for s in own} == set(range(REPLICAS)), sid
        if len({minute(s.before) for s in own} | {minute(s.after) for s in own}) == 1:
            assert len({s.status for s in own}) == 1, (sid, [(s.instance, s.status) for s in own])
            checked += 1
    assert checked >= len(by_sid) / 2
    print(
        f"brownout: {share:.1f} % of {len(calls)} calls refused (25 +- {TOLERANCE}); "
        f"{checked} of {len(by_sid)} consumers checked for one answer across the replicas"
    )
