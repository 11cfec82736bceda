"""gateway.migration.tally: deprecated calls per day and consumer, bounded to 30 days."""

from __future__ import annotations

from gateway.migration.tally import DAY, DAYS, MAX_LABELS, OVERFLOW, Tally

NOON = 20_000 * DAY + 12 * 3600  # a day's noon, UTC


def test_counts_per_day_and_consumer_with_the_latest_call() -> None:
    tally = Tally(started=NOON)
    for offset in (0, 1, 2):
        tally.count("billing-api", NOON + offset)
    tally.count("storefront", NOON - DAY)
    days = tally.days(NOON + 3)
    assert len(days) == DAYS
    assert days[-1] == (20_000 * DAY, {"billing-api": 3})
    assert days[-2] == (19_999 * DAY, {"storefront": 1})
    assert tally.calls(NOON + 3) == {"billing-api": 3, "storefront": 1}
    assert tally.last_seen(NOON + 3) == {"billing-api": NOON + 2, "storefront": NOON - DAY}


def test_days_older_than_the_window_are_dropped() -> None:
    tally = Tally()
    tally.count("old", NOON - DAYS * DAY)  # 30 days before today: outside the window
    tally.count("kept", NOON - (DAYS - 1) * DAY)
    tally.count("today", NOON)
    assert tally.calls(NOON) == {"kept": 1, "today": 1}
    assert "old" not in tally.last_seen(NOON)
    assert len(tally._days) == 2  # the old day is gone from memory, not only from view


def test_memory_stays_bounded_for_endless_days_and_labels() -> None:
    tally = Tally()
    for day in range(100):
        tally.count("x", NOON + day * DAY)
    assert len(tally._days) <= DAYS
    for number in range(MAX_LABELS + 50):
        tally.count(f"label-{number}", NOON + 100 * DAY)
    today = tally.days(NOON + 100 * DAY)[-1][1]
    assert len(today) == MAX_LABELS + 1  # and "other"
    assert today[OVERFLOW] == 50
    assert len(tally._last) <= MAX_LABELS
