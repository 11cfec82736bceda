"""gateway.config.policy: deprecation dates and brownout windows, parsed into plain data."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.config.instants import parse_instant
from gateway.config.policy import DeprecationPolicy, parse_schedule

START = datetime(2026, 12, 1, 10, 0, tzinfo=UTC).timestamp()


def test_schedule_parsing_and_errors() -> None:
    schedule = parse_schedule(
        "2026-12-01T10:00:00Z/2026-12-01T11:00:00Z@25; 2026-12-08T10:00/2026-12-08T12:00"
    )
    assert [w.percentage for w in schedule.windows] == [25.0, 100.0]
    assert schedule.active(START + 60) is schedule.windows[0]
    assert schedule.active(START - 1) is None
    assert schedule.active(START + 3600) is None  # the end is exclusive
    assert schedule.windows[0].retry_after(START + 3000) == 600
    assert len(schedule.upcoming(START + 3600)) == 1
    for bad in ("2026-12-01T10:00Z", "2026-12-01T11:00Z/2026-12-01T10:00Z", "a/b", "x/y@200"):
        with pytest.raises(ValueError, match="brownout"):
            parse_schedule(bad)


def test_sunset_never_before_deprecation() -> None:
    with pytest.raises(ValueError, match="earlier than deprecation"):
        DeprecationPolicy(parse_instant("2025-01-01"), parse_instant("2024-01-01"))
