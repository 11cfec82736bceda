"""Metric deltas per kind of request, read from the registry before and after."""

from __future__ import annotations

import base64

import pytest
from prometheus_client import REGISTRY

from gateway.telemetry.metrics import KNOWN_METHODS, RouteMetrics, method_label
from tests.conftest import GatewayFactory
from tests.fake_upstream import FakeUpstream, sid
from tests.processes import python_output


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def basic(username: str, secret: str = "s3cr3t-token") -> dict[str, str]:
    token = base64.b64encode(f"{username}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def series_count(prefix: str) -> int:
    return sum(
        1
        for family in REGISTRY.collect()
        for sample in family.samples
        if sample.name.startswith(prefix)
    )


@pytest.mark.upstream
async def test_request_counters_by_route_template(
    fake_upstream: FakeUpstream, gateway_client: GatewayFactory
) -> None:
    client = await gateway_client(fake_upstream.url)
    labels = {
        "route": "preview_installed_add_on",
        "method": "GET",
        "status_class": "2xx",
        "deprecated": "true",
        "front_door": "direct",
    }
    before = value("gateway_requests_total", **labels)
    latency_before = value("gateway_request_duration_seconds_count", route=labels["route"])
    await client.get(f"/marketplace/InstalledAddOns/{sid('XE', 1)}")
    series = series_count("gateway_requests_total")
    # Another SID on the same route adds to the same series, never a new one.
    await client.get(f"/marketplace/InstalledAddOns/{sid('XE', 2)}")
    assert series_count("gateway_requests_total") == series
    assert value("gateway_requests_total", **labels) == before + 2
    assert (
        value("gateway_request_duration_seconds_count", route=labels["route"]) == latency_before + 2
    )
    assert value("gateway_upstream_duration_seconds_count", route=labels["route"]) >= 2
    for family in REGISTRY.collect():
        for sample in family.samples:
            assert "XE" not in "".join(sample.labels.values()), sample


@pytest.mark.upstream
async def test_unmatched_and_v1_requests(
    fake_upstream: FakeUpstream, gateway_client: GatewayFactory
) -> None:
    client = await gateway_client(fake_upstream.url)
    unmatched = {
        "route": "unmatched",
        "method": "GET",
        "status_class": "4xx",
        "deprecated": "false",
        "front_door": "direct",
    }
    v1 = {
        "route": "v1_available_add_ons",
        "method": "GET",
        "status_class": "2xx",
        "deprecated": "false",
        "front_door": "direct",
    }
    before_unmatched = value("gateway_requests_total", **unmatched)
    before_v1 = value("gateway_requests_total", **v1)
    await client.get("/marketplace/NoSuchThing/XE123")
    await client.get("/v1/AvailableAddOns")
    assert value("gateway_requests_total", **unmatched) == before_unmatched + 1
    assert value("gateway_requests_total", **v1) == before_v1 + 1


@pytest.mark.upstream
async def test_upstream_failures_by_kind(gateway_client: GatewayFactory) -> None:
    client = await gateway_client("http://127.0.0.1:9", connect_timeout=0.5)
    before = value("gateway_upstream_failures_total", kind="refused")
    before_5xx = value(
        "gateway_requests_total",
        route="preview_available_add_ons",
        method="GET",
        status_class="5xx",
        deprecated="true",
        front_door="direct",
    )
    await client.get("/marketplace/AvailableAddOns")
    assert value("gateway_upstream_failures_total", kind="refused") == before + 1
    assert (
        value(
            "gateway_requests_total",
            route="preview_available_add_ons",
            method="GET",
            status_class="5xx",
            deprecated="true",
            front_door="direct",
        )
        == before_5xx + 1
    )


@pytest.mark.upstream
async def test_consumers_named_capped_and_overflowed(
    fake_upstream: FakeUpstream, gateway_client: GatewayFactory
) -> None:
    named = "AC" + "1" * 32
    client = await gateway_client(
        fake_upstream.url, consumer_cap=2, consumer_names={named: "billing-app"}
    )
    route = "preview_available_add_ons"
    before_named = value("gateway_deprecated_requests_total", route=route, consumer="billing-app")
    before_other = value("gateway_deprecated_requests_total", route=route, consumer="other")
    before_overflow = value("gateway_consumer_overflow_total")
    await client.get("/marketplace/AvailableAddOns", headers=basic(named))
    await client.get("/marketplace/AvailableAddOns", headers=basic("AC" + "2" * 32))
    await client.get("/marketplace/AvailableAddOns", headers=basic("AC" + "3" * 32))  # over cap
    await client.get("/marketplace/AvailableAddOns", headers=basic("SK" + "4" * 32))  # over cap
    await client.get("/marketplace/AvailableAddOns", headers=basic(named))  # known: counted
    assert (
        value("gateway_deprecated_requests_total", route=route, consumer="billing-app")
        == before_named + 2
    )
    assert value("gateway_deprecated_requests_total", route=route, consumer="AC" + "2" * 32) >= 1
    assert (
        value("gateway_deprecated_requests_total", route=route, consumer="other")
        == before_other + 2
    )
    assert value("gateway_consumer_overflow_total") == before_overflow + 2
    assert value("gateway_deprecated_route_last_seen_timestamp_seconds", route=route) > 1.7e9
    exposition = await (await client.get("/metrics")).text()
    assert "s3cr3t-token" not in exposition


@pytest.mark.upstream
async def test_consumer_labels_switch_off(
    fake_upstream: FakeUpstream, gateway_client: GatewayFactory
) -> None:
    client = await gateway_client(fake_upstream.url, consumer_labels=False)
    route = "preview_available_add_ons"
    caller = "AC" + "5d" * 16  # used by no other test: its series must not grow
    before = value("gateway_deprecated_requests_total", route=route, consumer="disabled")
    before_caller = value("gateway_deprecated_requests_total", route=route, consumer=caller)
    await client.get("/marketplace/AvailableAddOns", headers=basic(caller))
    assert (
        value("gateway_deprecated_requests_total", route=route, consumer="disabled") == before + 1
    )
    assert value("gateway_deprecated_requests_total", route=route, consumer=caller) == before_caller


async def test_metrics_endpoint_and_static_gauges(
    fake_upstream: FakeUpstream, gateway_client: GatewayFactory
) -> None:
    client = await gateway_client(fake_upstream.url)
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    text = await response.text()
    assert 'gateway_build_info{python="' in text
    assert (
        'gateway_sunset_timestamp_seconds{route="preview_installed_add_ons"} 1.7330112e+09' in text
    )


def test_methods_outside_the_standard_set_are_labelled_other() -> None:
    assert {method_label(method) for method in KNOWN_METHODS} == KNOWN_METHODS
    assert {method_label(m) for m in ("FOO", "get", "PROPFIND", "X" * 100, "other")} == {"other"}


def test_unknown_methods_share_one_series_and_one_cache_entry() -> None:
    metrics = RouteMetrics("test_unknown_methods_route", False)
    for index in range(200):
        metrics.request(f"M{index}", 405, 0.001, None)
    metrics.request("GET", 200, 0.001, None)
    labels = {"route": "test_unknown_methods_route", "deprecated": "false", "front_door": "direct"}
    other = value("gateway_requests_total", method="other", status_class="4xx", **labels)
    assert other == 200
    assert value("gateway_requests_total", method="GET", status_class="2xx", **labels) == 1
    found = {
        sample.labels["method"]
        for family in REGISTRY.collect()
        for sample in family.samples
        if sample.labels.get("route") == "test_unknown_methods_route" and "method" in sample.labels
    }
    assert found == {"other", "GET"}
    assert len(metrics._requests) == 2  # the per-route cache is bounded the same way


def test_no_created_series_and_no_last_call_before_the_first() -> None:
    """A fresh process: prometheus-client's ``_created`` series are off, and a deprecated route
    that was never called has no last-seen series (not a last call at 0, in 1970) until its
    first call."""
    exposition = python_output(
        "from gateway.app import create_app\n"
        "from gateway.config.settings import load_config\n"
        "from gateway.telemetry import metrics\n"
        "create_app(load_config({}, {}))\n"
        "print(metrics.exposition().decode())\n"
        "print('--- one call')\n"
        "metrics.RouteMetrics('preview_installed_add_ons', True).deprecated_call('x', False, 5e9)\n"
        "metrics.REQUESTS.labels('r', 'GET', '2xx', 'true', 'direct').inc()\n"
        "print(metrics.exposition().decode())\n"
    )
    before, after = exposition.split("--- one call")
    assert "gateway_sunset_timestamp_seconds{" in before  # the routes are there
    assert "_created" not in exposition
    last_seen = "gateway_deprecated_route_last_seen_timestamp_seconds{"
    assert last_seen not in before
    assert [line for line in after.splitlines() if line.startswith(last_seen)] == [
        last_seen + 'route="preview_installed_add_ons"} 5e+09'
    ]


def test_the_failure_metric_names_every_failure_kind() -> None:
    from gateway.errors import FAILURE_KINDS

    (help_text,) = [
        f.documentation for f in REGISTRY.collect() if f.name == "gateway_upstream_failures"
    ]
    for kind in FAILURE_KINDS:
        assert kind in help_text


def test_every_failure_kind_raised_is_a_listed_one() -> None:
    """Every ``kind="..."`` in the gateway's code is one of FAILURE_KINDS (the metric's help and
    the dashboard list those), and each listed one is raised somewhere."""
    import re
    from pathlib import Path

    import gateway
    from gateway.errors import FAILURE_KINDS

    package = Path(gateway.__file__).parent
    raised = {
        kind
        for path in package.rglob("*.py")
        if "simulator" not in path.parts
        for kind in re.findall(r'\bkind="(\w+)"', path.read_text("utf-8"))
    }
    assert raised == set(FAILURE_KINDS)
