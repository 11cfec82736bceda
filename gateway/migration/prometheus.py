"""The migration page's counts from Prometheus (``migration_prometheus_url``): fleet-wide calls
per consumer over 30 days, each consumer's latest call, and calls per day for the burn-down
(``query_range``, one point per UTC day).

Asynchronous, on the event loop's own terms: an aiohttp client with a time limit
(:data:`TIME_LIMIT`), one query at a time per process however many pages are asked for, and a
cache of :data:`CACHE_SECONDS`; a failure is remembered for :data:`RETRY_SECONDS`, so a down
Prometheus is not asked again at every page view. The PromQL and the parsing of the answers are
:mod:`gateway.migration.series`, shared with ``gateway report`` and ``gateway consumers``.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp

from gateway.migration.page import Counts
from gateway.migration.series import (
    SourceError,
    answer,
    by_label,
    consumer_calls,
    consumer_last_seen,
    matrix,
)
from gateway.migration.tally import DAY, DAYS

CACHE_SECONDS = 60.0
RETRY_SECONDS = 10.0
TIME_LIMIT = 5.0  # seconds for all the queries of one refresh
WINDOW = f"{DAYS}d"


def day_starts(now: float) -> list[float]:
    """The start of each of the last :data:`DAYS` UTC days, oldest first (today last)."""
    today = int(now // DAY) * DAY
    return [float(today - (DAYS - 1 - index) * DAY) for index in range(DAYS)]


class PrometheusCounts:
    """Reads :class:`Counts` from a Prometheus server, cached; one per process."""

    def __init__(self, time_limit: float = TIME_LIMIT, cache_seconds: float = CACHE_SECONDS):
        self._time_limit = time_limit
        self._cache_seconds = cache_seconds
        self._session: aiohttp.ClientSession | None = None
        self._lock = asyncio.Lock()
        # (base URL, monotonic time read, counts or the error it met)
        self._cached: tuple[str, float, Counts | SourceError] | None = None
        self.queries = 0  # Prometheus queries sent (for the tests of the cache)

    async def counts(self, base: str, now: float) -> Counts:
        """The counts at Unix time ``now``; :class:`SourceError` when Prometheus cannot be read
        within the time limit (remembered for :data:`RETRY_SECONDS`)."""
        found = self._fresh(base)
        if found is None:
            async with self._lock:  # one refresh at a time; the others wait for its result
                found = self._fresh(base)
                if found is None:
                    try:
                        found = await self._read(base, now)
                    except SourceError as exc:
                        found = exc
                    self._cached = (base, time.monotonic(), found)
        if isinstance(found, SourceError):
            raise found
        return found

    def _fresh(self, base: str) -> Counts | SourceError | None:
        if self._cached is None or self._cached[0] != base:
            return None
        _, read_at, found = self._cached
        limit = RETRY_SECONDS if isinstance(found, SourceError) else self._cache_seconds
        return found if time.monotonic() - read_at < limit else None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _read(self, base: str, now: float) -> Counts:
        days = day_starts(now)
        daily = consumer_calls("1d")
        span = {"start": days[0] + DAY, "end": days[-1] + DAY, "step": DAY}
        try:
            async with asyncio.timeout(self._time_limit):
                calls, last_seen, per_day = await asyncio.gather(
                    self._get(base, "query", {"query": consumer_calls(WINDOW), "time": now}),
                    self._get(base, "query", {"query": consumer_last_seen(WINDOW), "time": now}),
                    self._get(base, "query_range", {"query": daily, **span}),
                )
        except TimeoutError:
            raise SourceError(f"{base}: no answer within {self._time_limit:g} s") from None
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            raise SourceError(f"cannot reach {base}: {exc or type(exc).__name__}") from None
        series = matrix(per_day, "consumer")
        return Counts(
            calls=by_label(calls, "consumer"),
            last_seen=by_label(last_seen, "consumer"),
            days=days,
            per_day={
                label: [points.get(day + DAY, 0.0) for day in days]
                for label, points in series.items()
            },
            source="prometheus",
            description=f"Counted by Prometheus at {base} over the last {DAYS} days, summed over "
            "every gateway it scrapes (the whole fleet); refreshed at most once a minute.",
        )

    async def _get(self, base: str, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self._time_limit)
            )
        query = {key: str(value) for key, value in params.items()}
        url = f"{base.rstrip('/')}/api/v1/{path}"
        self.queries += 1
        async with self._session.get(url, params=query) as response:
            if response.status >= 500:
                raise SourceError(f"{base}: HTTP {response.status}")
            body = await response.json(content_type=None)
        return answer(body, base, query["query"])
