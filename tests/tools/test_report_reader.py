"""Reading the gateway's series from /metrics text (the Prometheus API path is exercised
against a stand-in Prometheus in test_report)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.tools.report_reader import ReportError, parse_metrics_text

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "report" / "metrics.txt"
SUNSET = 1733011200.0  # 2024-12-01T00:00:00Z


def test_parse_metrics_text() -> None:
    samples = parse_metrics_text(FIXTURE.read_text("utf-8"))
    assert samples.requests[("preview_installed_add_ons", "billing-app")] == 9
    assert samples.last_seen["preview_installed_add_ons"] == 1764003600.0
    assert samples.sunset["preview_installed_add_on"] == SUNSET
    assert samples.brownouts == {"preview_installed_add_ons": 2.0}
    assert samples.overflow == 4
    assert samples.versions == ("0.1.0",)


def test_non_gateway_metrics_are_refused() -> None:
    with pytest.raises(ReportError, match="no gateway_"):
        parse_metrics_text("# TYPE up gauge\nup 1\n")
    with pytest.raises(ReportError):
        parse_metrics_text("this is { not metrics")
