"""gateway.migration.prometheus and the Prometheus sources of ``/migration`` and ``gateway
consumers``, against a real Prometheus holding 30 days of history backfilled with ``promtool tsdb
create-blocks-from openmetrics``: the per-day burn-down, the 30-day totals and last calls are
exactly the calls the history holds; the cache and the time limit hold."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from gateway.migration.prometheus import PrometheusCounts, day_starts
from gateway.migration.series import SourceError
from tests.fleet import one_gateway
from tests.processes import run_gateway
from tests.prometheus import Prometheus, backfill, running_prometheus

DAY = 86400
BILLING, STOREFRONT, STRANGER = "billing-api", "storefront", "AC" + "57" * 16
ROUTES = ("preview_available_add_ons", "preview_installed_add_ons")
CALLS_AT = 600  # each day's calls, seconds after midnight UTC
SCRAPED_AT = (0, 1800)  # the scrapes kept of each day: at midnight, and after the calls


@dataclass(frozen=True)
class History:
    now: float
    events: dict[str, list[float]]  # consumer label -> times of its deprecated calls

    def per_day(self, label: str) -> list[int]:
        days = day_starts(self.now)
        return [sum(1 for t in self.events.get(label, []) if d <= t < d + DAY) for d in days]


def make_history(now: float) -> History:
    """billing-api burns down and stops 15 days ago; storefront calls every day; an unlisted
    SID calls every third day (today only once the day's scrape after the calls is past)."""
    events: dict[str, list[float]] = defaultdict(list)
    for index, start in enumerate(day_starts(now)):
        if start + SCRAPED_AT[-1] > now - 300:
            continue
        plan = {BILLING: 15 - index if index < 15 else 0, STOREFRONT: index % 4 + 1}
        plan[STRANGER] = 2 if index % 3 == 0 else 0
        for label, count in plan.items():
            events[label] += [start + CALLS_AT + k for k in range(count)]
    return History(now, dict(events))


def _scrapes(now: float) -> list[float]:
    """The moments the backfilled instance was scraped: twice a day, one day before the window
    on, and just before the start of the 30 days counted back from now. Few, so that promtool
    writes one 2-hour block a day (a scrape every few minutes would make 360)."""
    first = day_starts(now)[0] - DAY
    moments = {first + n * DAY + offset for n in range(32) for offset in SCRAPED_AT}
    moments.add(now - 30 * DAY - 60)
    return sorted(m for m in moments if m <= now - 300)


def openmetrics(history: History) -> str:
    """The gateway's counter and gauge as one instance exposed them at each scrape."""
    scrapes = _scrapes(history.now)
    labels = 'job="gateway",instance="backfill:1"'
    counters = [
        "# HELP gateway_deprecated_requests Requests to deprecated routes.",
        "# TYPE gateway_deprecated_requests counter",
    ]
    gauges = [
        "# HELP gateway_consumer_last_seen_timestamp_seconds Latest deprecated call.",
        "# TYPE gateway_consumer_last_seen_timestamp_seconds gauge",
    ]
    for number, (label, times) in enumerate(sorted(history.events.items())):
        route = ROUTES[number % len(ROUTES)]
        for moment in scrapes:
            seen = [t for t in times if t <= moment]
            counters.append(
                f'gateway_deprecated_requests_total{{{labels},route="{route}",'
                f'consumer="{label}"}} {len(seen)} {moment:.0f}'
            )
            if seen:
                gauges.append(
                    f"gateway_consumer_last_seen_timestamp_seconds{{{labels},"
                    f'consumer="{label}"}} {max(seen):.0f} {moment:.0f}'
                )
    return "\n".join(counters + gauges) + "\n# EOF\n"


@pytest.fixture
async def prometheus(tmp_path: Path) -> AsyncIterator[tuple[Prometheus, History]]:
    history = make_history(time.time())
    await backfill(openmetrics(history), tmp_path)
    async with running_prometheus([], tmp_path, retention="90d") as server:
        async with aiohttp.ClientSession() as session:
            await server.wait_ready(session)
        yield server, history


async def test_counts_are_the_histories_calls_and_are_cached(
    prometheus: tuple[Prometheus, History],
) -> None:
    server, history = prometheus
    reader = PrometheusCounts(cache_seconds=60)
    try:
        counts = await reader.counts(server.url, history.now)
        assert counts.source == "prometheus" and server.url in counts.description
        assert reader.queries == 3
        for label in (BILLING, STOREFRONT, STRANGER):
            expected = history.per_day(label)
            assert [round(v) for v in counts.per_day[label]] == expected, label
            assert round(counts.calls[label]) == sum(expected) == len(history.events[label])
            assert counts.last_seen[label] == pytest.approx(max(history.events[label]), abs=1)
        assert history.per_day(BILLING)[-15:] == [0] * 15 and sum(history.per_day(BILLING)) > 0
        again = await reader.counts(server.url, history.now + 1)
        assert again is counts and reader.queries == 3  # served from the cache
    finally:
        await reader.close()


async def test_a_prometheus_that_never_answers_is_given_up_within_the_time_limit() -> None:
    hung: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        hung.append(writer)  # read nothing, answer nothing

    server = await asyncio.start_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    reader = PrometheusCounts(time_limit=0.5)
    try:
        started = time.monotonic()
        with pytest.raises(SourceError, match="no answer within 0.5 s"):
            await reader.counts(f"http://127.0.0.1:{port}", time.time())
        assert time.monotonic() - started < 3
        sent = reader.queries
        with pytest.raises(SourceError):  # remembered: not asked again at once
            await reader.counts(f"http://127.0.0.1:{port}", time.time())
        assert reader.queries == sent
    finally:
        await reader.close()
        for writer in hung:
            writer.close()
        server.close()
        await server.wait_closed()


def _config(directory: Path, prometheus: str) -> Path:
    path = directory / "gateway.toml"
    path.write_text(
        f"""
migration_prometheus_url = "{prometheus}"

[[consumers]]
sid = "AC{"b1" * 16}"
name = "{BILLING}"
group = "payments"

[[consumers]]
sid = "AC{"5f" * 16}"
name = "{STOREFRONT}"
group = "web"
""",
        "utf-8",
    )
    return path


@pytest.mark.slow
async def test_the_page_and_gateway_consumers_read_the_same_history(
    prometheus: tuple[Prometheus, History], tmp_path: Path
) -> None:
    server, history = prometheus
    config = _config(tmp_path, server.url)
    async with one_gateway(config, tmp_path) as gateway:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{gateway}/migration.json") as response:
                assert response.status == 200
                page = await response.json()
    assert page["source"]["kind"] == "prometheus"
    groups = page["burndown"]["groups"]
    assert groups["payments"] == history.per_day(BILLING)
    assert groups["web"] == history.per_day(STOREFRONT)
    assert groups["not listed"] == history.per_day(STRANGER)
    rows = {row["name"]: row for row in page["consumers"]}
    assert rows[BILLING]["stage"] == "quiet"  # no call for the last 15 days
    assert rows[STOREFRONT]["stage"] == "calling"
    assert rows[STRANGER]["stage"] == "unknown"
    for label in (BILLING, STOREFRONT, STRANGER):
        assert rows[label]["deprecated_calls"] == len(history.events[label])
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    result = await asyncio.to_thread(
        run_gateway,
        "consumers",
        "--prometheus-url",
        server.url,
        "--config",
        str(config),
        "--format",
        "json",
        env=env,
    )
    assert result.returncode == 0, result.stderr
    listed = {row["name"]: row for row in json.loads(result.stdout)["consumers"]}
    for label in (BILLING, STOREFRONT, STRANGER):
        assert listed[label]["deprecated_calls"] == rows[label]["deprecated_calls"]
        assert listed[label]["stage"] == rows[label]["stage"]
        assert listed[label]["last_deprecated_call"] == rows[label]["last_deprecated_call"]
