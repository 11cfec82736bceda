"""gateway.telemetry.recorder: one Exchange value in, metrics and one access line out; never
raises."""

from __future__ import annotations

import logging
import time

import orjson
import pytest
from prometheus_client import REGISTRY

from gateway.config.rules import load_rules
from gateway.migration.consumers import ConsumerLabels
from gateway.migration.tally import Tally
from gateway.routes import Route, compile_routes, routes_of
from gateway.telemetry.access_log import AccessLog
from gateway.telemetry.metrics import RouteMetrics
from gateway.telemetry.recorder import Exchange, Recorder
from tests.conftest import make_config

ACCOUNT = "AC" + "7" * 32


def recorder() -> Recorder:
    return Recorder.create(
        AccessLog.create(True, "info"), ConsumerLabels({}, 100, True), lambda: 1_700_000_000.0
    )


def route(name: str = "preview_installed_add_on") -> Route:
    routes = routes_of(compile_routes(make_config("http://127.0.0.1:9"), load_rules()))
    return {r.name: r for r in routes}[name]


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def access_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    return [orjson.loads(r.getMessage()) for r in caplog.records if r.name == "gateway.access"]


def test_a_deprecated_exchange_counts_once_everywhere(caplog: pytest.LogCaptureFixture) -> None:
    import base64

    auth = "Basic " + base64.b64encode(f"{ACCOUNT}:secret".encode()).decode()
    exchange = Exchange(
        "GET", "/marketplace/InstalledAddOns/XE1?PageSize=5", auth, time.perf_counter(), "direct"
    )
    exchange.route, exchange.status = route(), 200
    exchange.upstream_status, exchange.upstream_seconds = 200, 0.01
    labels = {"route": "preview_installed_add_on", "consumer": ACCOUNT}
    before = sample("gateway_deprecated_requests_total", **labels)
    with caplog.at_level(logging.INFO, logger="gateway.access"):
        recorder().record(exchange)
    assert sample("gateway_deprecated_requests_total", **labels) == before + 1
    assert (
        sample(
            "gateway_deprecated_route_last_seen_timestamp_seconds", route="preview_installed_add_on"
        )
        == 1_700_000_000.0
    )
    [line] = access_lines(caplog)
    assert line["path"] == "/marketplace/InstalledAddOns/XE1" and line["consumer"] == ACCOUNT
    assert (line["status"], line["upstream_status"], line["deprecated"]) == (200, 200, True)


def test_an_unmatched_exchange_is_labelled_unmatched_and_a_refused_target_logged_as_dash(
    caplog: pytest.LogCaptureFixture,
) -> None:
    exchange = Exchange("GET", "http://TOKEN@evil.example/x", None, time.perf_counter(), "direct")
    exchange.status = 400
    labels = {"route": "unmatched", "method": "GET", "status_class": "4xx", "deprecated": "false"}
    labels["front_door"] = "direct"
    before = sample("gateway_requests_total", **labels)
    with caplog.at_level(logging.INFO, logger="gateway.access"):
        recorder().record(exchange)
    assert sample("gateway_requests_total", **labels) == before + 1
    [line] = access_lines(caplog)
    assert (line["route"], line["path"]) == ("unmatched", "-")
    assert "TOKEN" not in caplog.text


def test_upstream_failures_and_brownouts_are_counted_through_the_route() -> None:
    exchange = Exchange("GET", "/marketplace/AvailableAddOns", None, time.perf_counter(), "direct")
    exchange.route, exchange.status = route("preview_available_add_ons"), 410
    exchange.failure, exchange.brownout = "timeout", True
    before = (
        sample("gateway_upstream_failures_total", kind="timeout"),
        sample("gateway_brownout_rejections_total", route="preview_available_add_ons"),
    )
    recorder().record(exchange)
    assert sample("gateway_upstream_failures_total", kind="timeout") == before[0] + 1
    assert (
        sample("gateway_brownout_rejections_total", route="preview_available_add_ons")
        == before[1] + 1
    )


def test_an_undecodable_credential_is_recorded_as_unrecognized(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A Basic credential followed by a non-ASCII character once made recording raise."""
    exchange = Exchange(
        "POST",
        "/marketplace/InstalledAddOns",
        "Basic QUMxOnNlY3JldA==\u00e9",
        time.perf_counter(),
        "direct",
    )
    exchange.route, exchange.status = route("preview_installed_add_ons"), 201
    with caplog.at_level(logging.INFO):
        recorder().record(exchange)
    [line] = access_lines(caplog)
    assert line["consumer"] == "unrecognized"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


class _BrokenMetrics(RouteMetrics):
    def request(
        self,
        method: str,
        status: int,
        seconds: float,
        upstream: float | None,
        front_door: str = "direct",
    ) -> None:
        raise RuntimeError("secret internals")


def test_recording_never_raises_and_logs_one_line_without_details(
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = Recorder(
        AccessLog.create(True, "info"),
        ConsumerLabels({}, 100, True),
        time.time,
        _BrokenMetrics("unmatched", False),
        Tally(),
    )
    with caplog.at_level(logging.INFO):
        broken.record(Exchange("GET", "/x", None, time.perf_counter(), "direct"))
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert [r.getMessage() for r in errors] == ["could not record a request: RuntimeError"]
    assert "secret internals" not in caplog.text


def test_the_latency_is_taken_when_the_answer_was_ready_not_when_it_is_recorded(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The pipeline records in the event loop's next pass; the time spent waiting for that pass
    is not the request's."""
    started = time.perf_counter() - 0.25
    exchange = Exchange("GET", "/marketplace/AvailableAddOns", None, started, "direct")
    exchange.route, exchange.status, exchange.finished = (
        route("preview_available_add_ons"),
        200,
        started + 0.005,
    )
    with caplog.at_level(logging.INFO, logger="gateway.access"):
        recorder().record(exchange)
    [line] = access_lines(caplog)
    assert line["latency_ms"] == 5.0
