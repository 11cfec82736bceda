"""Deprecated calls per UTC day and consumer, kept in memory for the migration page when no
Prometheus is configured (``migration_prometheus_url``).

Bounded: :data:`DAYS` days of at most :data:`MAX_LABELS` consumer labels each (the labels are
bounded already by ``consumer_cap`` and the list; the second bound only guards against a config
that renames them again and again). It starts empty when the process starts, and under
``--workers`` each worker keeps its own: the page says so.
"""

from __future__ import annotations

import time

DAY = 86400
DAYS = 30  # the days kept, today included
MAX_LABELS = 2000  # labels per day; more fold into "other"
OVERFLOW = "other"


class Tally:
    """Calls per day and consumer label over the last :data:`DAYS` days, and each label's
    latest call."""

    __slots__ = ("started", "_days", "_last")

    def __init__(self, started: float | None = None) -> None:
        self.started = time.time() if started is None else started
        self._days: dict[int, dict[str, int]] = {}  # UTC day number -> label -> calls
        self._last: dict[str, float] = {}

    def count(self, label: str, now: float) -> None:
        """One deprecated call by ``label`` at Unix time ``now``."""
        day = int(now // DAY)
        bucket = self._days.get(day)
        if bucket is None:
            bucket = self._days[day] = {}
            for old in [d for d in self._days if d <= day - DAYS]:
                del self._days[old]
        if label not in bucket and len(bucket) >= MAX_LABELS:
            label = OVERFLOW
        bucket[label] = bucket.get(label, 0) + 1
        if label in self._last or len(self._last) < MAX_LABELS:
            self._last[label] = now

    def days(self, now: float) -> list[tuple[float, dict[str, int]]]:
        """The last :data:`DAYS` days, oldest first: ``(day start, label -> calls)``."""
        today = int(now // DAY)
        return [
            (day * DAY, dict(self._days.get(day, {}))) for day in range(today - DAYS + 1, today + 1)
        ]

    def calls(self, now: float) -> dict[str, int]:
        """Calls per label over the last :data:`DAYS` days."""
        totals: dict[str, int] = {}
        for _, bucket in self.days(now):
            for label, count in bucket.items():
                totals[label] = totals.get(label, 0) + count
        return totals

    def last_seen(self, now: float) -> dict[str, float]:
        """Each label's latest call within the last :data:`DAYS` days."""
        since = (int(now // DAY) - DAYS + 1) * DAY
        return {label: moment for label, moment in self._last.items() if moment >= since}
