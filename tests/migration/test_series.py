"""gateway.migration.series: the PromQL the readers share and the parsing of Prometheus answers
(their meaning against a real Prometheus is tested in test_grafana, test_fleet and
test_page_prometheus)."""

from __future__ import annotations

import math

import pytest

from gateway.migration.series import (
    DEPRECATED,
    SourceError,
    answer,
    by_label,
    calls_over,
    consumer_calls,
    consumer_last_seen,
    matrix,
    vector,
)


def test_calls_over_counts_exactly_and_falls_back_only_on_a_reset() -> None:
    expr = calls_over(DEPRECATED, "1d", '{route="r"}')
    series = f'{DEPRECATED}{{route="r"}}'
    assert f"last_over_time({series}[1d])" in expr
    assert f"last_over_time({series}[5m] offset 1d)" in expr
    assert expr.endswith(f"or increase({series}[1d])")
    assert consumer_calls("30d").startswith("sum by (consumer) (")
    assert consumer_last_seen("30d") == (
        "max by (consumer) (max_over_time(gateway_consumer_last_seen_timestamp_seconds[30d]))"
    )


def test_answers_are_checked_and_parsed() -> None:
    rows = [
        {"metric": {"consumer": "a"}, "value": [1, "3"]},
        {"metric": {"consumer": "b"}, "value": [1, "NaN"]},
        {"metric": {}, "value": [1, "2"]},
    ]
    body = {"status": "success", "data": {"resultType": "vector", "result": rows}}
    assert answer(body, "http://p", "q") == rows
    assert vector(rows, "consumer") == {("a",): 3.0, ("",): 2.0}
    assert by_label(rows, "consumer") == {"a": 3.0, "": 2.0}
    with pytest.raises(SourceError, match="query 'q' failed: bad"):
        answer({"status": "error", "error": "bad"}, "http://p", "q")
    with pytest.raises(SourceError, match="unexpected answer"):
        answer({"status": "success", "data": []}, "http://p", "q")


def test_range_answers_become_series_per_label() -> None:
    rows = [
        {"metric": {"consumer": "a"}, "values": [[100, "1"], [200, "NaN"], [300, "4"]]},
        {"metric": {"consumer": "b"}, "values": [[100, "0"]]},
    ]
    series = matrix(rows, "consumer")
    assert series == {"a": {100.0: 1.0, 300.0: 4.0}, "b": {100.0: 0.0}}
    assert not any(math.isnan(v) for points in series.values() for v in points.values())
