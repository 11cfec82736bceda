"""Serving the migration page: ``GET /migration`` (HTML) and ``GET /migration.json``.

The one module of :mod:`gateway.migration` that imports aiohttp's server side. ``gateway.app``
mounts both wherever ``/metrics`` is served, under the same ``metrics_public`` rule: the page
shows consumer SIDs and names. The counts come from Prometheus when ``migration_prometheus_url``
is set (:mod:`gateway.migration.prometheus`, fleet-wide), else from this process's own tally
(:mod:`gateway.migration.tally`); a Prometheus that cannot be read falls back to the tally, and
the page says so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

from gateway.config.settings import GatewayConfig
from gateway.migration.page import CONTENT_SECURITY_POLICY, Counts, document, render
from gateway.migration.prometheus import PrometheusCounts
from gateway.migration.series import SourceError
from gateway.migration.tally import DAYS, Tally

log = logging.getLogger("gateway")

# Sent with the page and its JSON: nothing cached on the way, nothing framed or sniffed.
_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def tally_counts(tally: Tally, now: float, workers: int) -> Counts:
    """The page's counts from this process's own tally."""
    days = tally.days(now)
    labels = {label for _, bucket in days for label in bucket}
    started = datetime.fromtimestamp(tally.started, UTC).strftime("%Y-%m-%d %H:%M UTC")
    notes = [
        "Set migration_prometheus_url to chart the whole fleet's history from Prometheus.",
    ]
    if workers > 1:
        notes.insert(
            0,
            f"This gateway runs {workers} workers and each keeps its own tally: this page "
            "shows the share of the worker that answered it, not the whole gateway.",
        )
    return Counts(
        calls=tally.calls(now),
        last_seen=tally.last_seen(now),
        days=[day for day, _ in days],
        per_day={label: [bucket.get(label, 0) for _, bucket in days] for label in labels},
        source="tally",
        description=f"Counted in memory by this gateway process since it started ({started}), "
        f"for at most {DAYS} days; the counts start again at zero when it restarts.",
        notes=tuple(notes),
    )


class MigrationPage:
    """The page's two handlers, for the pipeline in force (``state`` returns its config, its
    tally and its clock, read afresh at each request so a reload shows at once)."""

    def __init__(
        self,
        state: Callable[[], tuple[GatewayConfig, Tally, Callable[[], float]]],
        prometheus: PrometheusCounts | None = None,
    ) -> None:
        self._state = state
        self.prometheus = prometheus or PrometheusCounts()

    async def data(self) -> dict[str, Any]:
        config, tally, clock = self._state()
        now = clock()
        counts: Counts | None = None
        problem = ""
        if config.migration_prometheus_url:
            try:
                counts = await self.prometheus.counts(config.migration_prometheus_url, now)
            except SourceError as exc:
                log.warning("migration page: could not read Prometheus: %s", exc)
                problem = f"Prometheus could not be read ({exc}): showing this process's tally."
        if counts is None:
            counts = tally_counts(tally, now, config.workers)
            if problem:
                counts = replace(counts, notes=(problem, *counts.notes))
        return document(config, counts, now)

    async def html(self, request: web.Request) -> web.Response:
        """``GET /migration``."""
        page = render(await self.data())
        return web.Response(text=page, content_type="text/html", charset="utf-8", headers=_HEADERS)

    async def json(self, request: web.Request) -> web.Response:
        """``GET /migration.json``."""
        body = orjson.dumps(await self.data())
        return web.Response(body=body, content_type="application/json", headers=_HEADERS)

    async def close(self) -> None:
        await self.prometheus.close()
