"""gateway.config.instants: ISO 8601 dates and date-times as the config and the rules write them,
and as the tools show them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from gateway.config.instants import day, days_until, iso, parse_instant


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024-12-01", datetime(2024, 12, 1, tzinfo=UTC)),
        ("2024-12-01T10:20:30Z", datetime(2024, 12, 1, 10, 20, 30, tzinfo=UTC)),
        ("2024-12-01T10:20:30", datetime(2024, 12, 1, 10, 20, 30, tzinfo=UTC)),
        ("2024-12-01T12:20:30+02:00", datetime(2024, 12, 1, 10, 20, 30, tzinfo=UTC)),
        ("  2024-12-01T10:20:30Z \n", datetime(2024, 12, 1, 10, 20, 30, tzinfo=UTC)),
    ],
)
def test_parses_to_utc(text: str, expected: datetime) -> None:
    parsed = parse_instant(text)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize("text", ["", "soon", "2024-13-01", "01/12/2024"])
def test_refuses_what_is_not_iso_8601(text: str) -> None:
    with pytest.raises(ValueError):
        parse_instant(text)


NOW = 1764007200.0  # 2025-11-24T18:00:00Z


def test_iso_and_day_of_a_datetime_or_unix_seconds_in_utc() -> None:
    moment = datetime(2025, 11, 24, 19, 30, tzinfo=timezone(timedelta(hours=1, minutes=30)))
    assert iso(moment) == iso(NOW) == "2025-11-24T18:00:00Z"
    assert parse_instant(iso(NOW)).timestamp() == NOW
    assert iso(None) is None
    assert day(moment) == day(NOW + 5 * 3600 + 59 * 60) == "2025-11-24"
    assert day(NOW + 6 * 3600) == "2025-11-25"


def test_days_until() -> None:
    assert days_until(NOW + 86400 * 10, NOW) == 10.0
    assert days_until(None, NOW) is None
    assert days_until(datetime(2025, 11, 14, 18, tzinfo=UTC), NOW) == -10.0
    assert days_until(NOW + 86400 * 1.26, NOW) == 1.3
