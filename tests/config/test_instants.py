"""gateway.config.instants: ISO 8601 dates and date-times as the config and the rules write them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from gateway.config.instants import parse_instant


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
