"""The Grafana dashboard, its provisioning and the compose stack, and every PromQL expression of
the dashboard evaluated by a real Prometheus scraping a real gateway."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp.test_utils import TestServer

from gateway.app import create_app
from gateway.cli import _parser
from gateway.config.policy import parse_schedule
from gateway.errors import FAILURE_KINDS
from tests.conftest import make_config
from tests.fake_upstream import FakeUpstream
from tests.processes import free_port, start_gateway, wait_ready
from tests.prometheus import Prometheus, prometheus_binary, running_prometheus, scrape_job

ROOT = Path(__file__).resolve().parent.parent
GRAFANA = ROOT / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "marketplace-gateway.json"
DS_REF = {"type": "prometheus", "uid": "${DS_PROMETHEUS}"}

# Concrete stand-ins for Grafana's template variables when a query is sent to Prometheus.
GRAFANA_VARIABLES = {
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "1h",
    "route": ".*",  # the route variable's allValue
    "job": "gateway",  # tests/prometheus.py's job
    "namespace": "team-a",  # the target label the test gives the in-process gateway
}
_VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")

METRICS = (
    "gateway_requests_total",
    "gateway_request_duration_seconds_bucket",
    "gateway_upstream_duration_seconds_bucket",
    "gateway_upstream_failures_total",
    "gateway_deprecated_requests_total",
    "gateway_consumer_overflow_total",
    "gateway_deprecated_route_last_seen_timestamp_seconds",
    "gateway_sunset_timestamp_seconds",
    "gateway_brownout_rejections_total",
    "gateway_build_info",
)


def load_dashboard() -> dict[str, Any]:
    data = json.loads(DASHBOARD.read_text("utf-8"))
    assert isinstance(data, dict)
    return data


def iter_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, including those nested in collapsed rows."""
    for panel in panels:
        yield panel
        yield from iter_panels(panel.get("panels", []))


def dashboard_queries(dashboard: dict[str, Any]) -> list[tuple[str, str, str]]:
    """``(panel title, refId, expr)`` for every target of every panel."""
    return [
        (panel["title"], target.get("refId", "?"), target.get("expr", ""))
        for panel in iter_panels(dashboard["panels"])
        for target in panel.get("targets", [])
    ]


def concrete(expr: str, **chosen: str) -> str:
    """``expr`` with Grafana's template variables replaced by values Prometheus accepts (those
    of :data:`GRAFANA_VARIABLES`, or as ``chosen``)."""
    values = GRAFANA_VARIABLES | chosen

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in values:
            raise AssertionError(f"unknown template variable ${name} in {expr!r}")
        return values[name]

    return _VARIABLE.sub(value, expr)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text("utf-8"))


# --- dashboard structure ---------------------------------------------------------------------


def test_dashboard_is_stable_for_provisioning() -> None:
    dashboard = load_dashboard()
    assert dashboard["id"] is None
    assert dashboard["uid"] == "marketplace-gateway"
    assert isinstance(dashboard["schemaVersion"], int)
    assert dashboard["title"]
    assert "__inputs" not in dashboard  # grafana/grafana#10786: breaks provisioning


def test_panel_ids_are_unique_and_panels_titled() -> None:
    panels = list(iter_panels(load_dashboard()["panels"]))
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids)), ids
    assert all(isinstance(i, int) for i in ids)
    assert all(panel.get("title") for panel in panels)


def test_panels_do_not_overlap() -> None:
    cells: dict[tuple[int, int], str] = {}
    for panel in iter_panels(load_dashboard()["panels"]):
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_datasource_variable_ds_prometheus() -> None:
    variables = {v["name"]: v for v in load_dashboard()["templating"]["list"]}
    ds = variables["DS_PROMETHEUS"]
    assert ds["type"] == "datasource"
    assert ds["query"] == "prometheus"
    for variable in variables.values():
        if variable["type"] == "query":
            assert variable["datasource"] == DS_REF, variable["name"]


def test_every_panel_and_target_uses_the_datasource_variable() -> None:
    for panel in iter_panels(load_dashboard()["panels"]):
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == DS_REF, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == DS_REF, (panel["title"], target.get("refId"))


def test_every_expression_is_non_empty_and_uses_known_variables() -> None:
    queries = dashboard_queries(load_dashboard())
    assert queries
    for title, ref, expr in queries:
        assert expr.strip(), f"{title} {ref}: empty expr"
        concrete(expr)  # raises on an unknown variable
    refs = [(title, ref) for title, ref, _ in queries]
    assert len(refs) == len(set(refs)), "refId repeated within a panel"


def test_dashboard_covers_every_metric_and_required_panel() -> None:
    dashboard = load_dashboard()
    exprs = " ".join(expr for _, _, expr in dashboard_queries(dashboard))
    for metric in METRICS:
        assert metric in exprs, f"no panel shows {metric}"
    assert "histogram_quantile(0.5," in exprs
    assert "histogram_quantile(0.99," in exprs
    assert "(gateway_sunset_timestamp_seconds" in exprs and "- time()) / 86400" in exprs
    assert "increase(gateway_deprecated_requests_total" in exprs and "[1d]" in exprs
    assert "sum by (consumer)" in exprs and "sum by (route)" in exprs


_SELECTOR = re.compile(r"\b(gateway_[a-z_]+)(\{[^}]*\})?")
SCOPE = 'job="$job", namespace="$namespace"'


def test_every_series_is_scoped_to_one_job_and_one_namespace() -> None:
    """Two gateways scraped by one Prometheus (two namespaces, or two jobs) are never summed:
    every selector of every panel and variable names the chosen job and namespace."""
    dashboard = load_dashboard()
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    exprs = [expr for _, _, expr in dashboard_queries(dashboard)]
    exprs.append(variables["route"]["definition"])
    for expr in exprs:
        for found in _SELECTOR.finditer(expr):
            assert found.group(2) and found.group(2).startswith("{" + SCOPE), (found.group(0), expr)
    names = [v["name"] for v in dashboard["templating"]["list"]]
    assert names.index("job") < names.index("namespace") < names.index("route")
    for name in ("job", "namespace"):  # one at a time: "All" would sum them again
        assert (variables[name]["multi"], variables[name]["includeAll"]) == (False, False)
        assert variables[name]["datasource"] == DS_REF
    assert variables["job"]["definition"] == "label_values(gateway_build_info, job)"
    assert variables["namespace"]["definition"] == (
        'label_values(gateway_build_info{job="$job"}, namespace)'
    )


def test_the_upstream_failures_panel_names_every_failure_kind() -> None:
    (panel,) = [
        p for p in iter_panels(load_dashboard()["panels"]) if p["title"].startswith("Upstream fail")
    ]
    for kind in FAILURE_KINDS:
        assert re.search(rf"\b{kind}\b", panel["description"]), kind
    assert "gateway_upstream_failures_total" in panel["targets"][0]["expr"]


# --- provisioning, Prometheus config and compose ----------------------------------------------


def test_datasource_provisioning() -> None:
    data = load_yaml(GRAFANA / "provisioning" / "datasources" / "prometheus.yml")
    assert data["apiVersion"] == 1
    (source,) = data["datasources"]
    assert source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    assert source["uid"] and source["isDefault"] is True


def test_dashboard_provisioning_points_at_the_mounted_dashboards() -> None:
    data = load_yaml(GRAFANA / "provisioning" / "dashboards" / "dashboards.yml")
    assert data["apiVersion"] == 1
    (provider,) = data["providers"]
    assert provider["type"] == "file"
    compose = load_yaml(GRAFANA / "docker-compose.yml")
    mounts = dict(
        volume.rsplit(":", 1)[0].split(":", 1)
        for volume in compose["services"]["grafana"]["volumes"]
        if volume.startswith("./")
    )
    assert mounts["./dashboards"] == provider["options"]["path"]
    assert mounts["./provisioning"] == "/etc/grafana/provisioning"
    for local in mounts:
        assert (GRAFANA / local).exists(), local


def test_prometheus_scrapes_the_gateway_service() -> None:
    data = load_yaml(GRAFANA / "prometheus.yml")
    (job,) = data["scrape_configs"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = [t for config in job["static_configs"] for t in config["targets"]]
    assert targets == ["gateway:8080"]
    compose = load_yaml(GRAFANA / "docker-compose.yml")
    mounts = compose["services"]["prometheus"]["volumes"]
    assert "./prometheus.yml:/etc/prometheus/prometheus.yml:ro" in mounts


def test_compose_services_and_commands() -> None:
    compose = load_yaml(GRAFANA / "docker-compose.yml")
    services = compose["services"]
    assert {"gateway", "simulator", "prometheus", "grafana"} <= set(services)
    for name in ("gateway", "simulator"):
        assert services[name]["build"] == {"context": "..", "dockerfile": "Dockerfile"}
    gateway = services["gateway"]["command"]
    assert gateway[:3] == ["serve", "--listen", "0.0.0.0:8080"]
    assert gateway[gateway.index("--marketplace-upstream") + 1] == "http://simulator:8081"
    assert gateway[gateway.index("--api-upstream") + 1] == "http://simulator:8081"
    assert services["simulator"]["command"] == ["simulate", "--listen", "0.0.0.0:8081"]
    # the image's HEALTHCHECK asks the `gateway serve` of PID 1; the simulator has its own
    assert "8081" in " ".join(services["simulator"]["healthcheck"]["test"])
    for service in services.values():
        image = service.get("image", "")
        assert not image.endswith(":latest"), "pin image versions"


def test_compose_commands_are_accepted_by_the_cli() -> None:
    """The image's entrypoint is ``gateway``: each command must parse as its arguments."""
    services = load_yaml(GRAFANA / "docker-compose.yml")["services"]
    for name in ("gateway", "simulator"):
        args = _parser().parse_args(services[name]["command"])
        assert args.verb == services[name]["command"][0]


# --- a real Prometheus --------------------------------------------------------------------------


def basic(sid: str) -> dict[str, str]:
    token = base64.b64encode(f"{sid}:secret".encode()).decode()
    return {"Authorization": f"Basic {token}"}


BILLING = "AC" + "1" * 32
SUPPORT = "AC" + "2" * 32
UNNAMED = "AC" + "3" * 32
XE = "XE" + "0" * 31 + "1"


async def send_traffic(
    session: aiohttp.ClientSession, main: str, brownout: str, rounds: int
) -> int:
    """Preview calls for three consumers, a v1 call, a 404 and a 502 through ``main``; brownout
    410s and a refused upstream through ``brownout``. Returns the deprecated requests sent."""
    deprecated = 0
    for _ in range(rounds):
        for sid, path in (
            (BILLING, "/marketplace/InstalledAddOns"),
            (BILLING, f"/marketplace/InstalledAddOns/{XE}"),
            (SUPPORT, "/marketplace/AvailableAddOns"),
            (UNNAMED, f"/marketplace/InstalledAddOns/{XE}/Extensions"),
        ):
            async with session.get(main + path, headers=basic(sid)) as response:
                assert response.status == 200, (path, await response.text())
            deprecated += 1
        async with session.get(main + "/marketplace/AvailableAddOns") as response:  # anonymous
            deprecated += 1
        async with session.get(main + "/v1/AvailableAddOns", headers=basic(BILLING)) as response:
            assert response.status == 200
        async with session.get(main + "/no/such/route") as response:
            assert response.status == 404
        async with session.get(
            brownout + "/marketplace/InstalledAddOns", headers=basic(SUPPORT)
        ) as response:
            assert response.status == 410
            deprecated += 1
        async with session.get(brownout + "/v1/InstalledAddOns") as response:
            assert response.status == 502  # the brownout gateway's upstream refuses
    return deprecated


@pytest.mark.upstream
@pytest.mark.slow
async def test_every_dashboard_query_returns_data_from_a_real_prometheus(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    fake_upstream: FakeUpstream,
    tmp_path: Path,
) -> None:
    prometheus_binary()  # fail at once, before starting anything, when it is missing
    names = {BILLING: "billing-app", SUPPORT: "support-bot"}
    main_server = await aiohttp_server(
        create_app(make_config(fake_upstream.url, consumer_names=names, access_log=False))
    )
    now = datetime.now(UTC)
    window = f"{(now - timedelta(hours=1)).isoformat()}/{(now + timedelta(hours=1)).isoformat()}"
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens: connection refused
    brownout_server = await aiohttp_server(
        create_app(
            make_config(
                closed, consumer_names=names, brownouts=parse_schedule(window), access_log=False
            )
        )
    )
    main = str(main_server.make_url("")).rstrip("/")
    brownout = str(brownout_server.make_url("")).rstrip("/")
    # A second gateway (its own process, its own counts) scraped by the same Prometheus.
    other_port = free_port()
    other = start_gateway(fake_upstream.url, other_port, log=tmp_path / "other.log")
    try:
        await wait_ready(f"http://127.0.0.1:{other_port}", other)
        dashboard = load_dashboard()
        timeout = aiohttp.ClientTimeout(total=10)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            # Round 1 before Prometheus starts, so every series exists from the first scrape on
            # and round 2 shows up as a real increase.
            sent = await send_traffic(session, main, brownout, rounds=2)
            for _ in range(OTHER_CALLS):
                async with session.get(f"http://127.0.0.1:{other_port}{OTHER_PATH}") as response:
                    assert response.status == 200
            target = f"{main_server.host}:{main_server.port}"
            other_target = f"127.0.0.1:{other_port}"
            jobs = [
                # as two ServiceMonitors would: the job, and the pods' namespace as a label
                scrape_job(
                    "gateway",
                    [
                        ([target], {"namespace": "team-a"}),
                        ([other_target], {"namespace": "team-b"}),
                    ],
                ),
                scrape_job("mirror", [([other_target], {"namespace": "team-a"})]),
            ]
            async with running_prometheus([], tmp_path, jobs=jobs) as prometheus:
                async with asyncio.timeout(120):
                    await run_queries(session, prometheus, main, brownout, sent, dashboard)
                    await two_gateways_are_not_summed(session, prometheus, dashboard)
    finally:
        other.terminate()
        await asyncio.to_thread(other.wait, 30)


OTHER_CALLS = 3
OTHER_PATH = "/marketplace/AvailableAddOns"


async def two_gateways_are_not_summed(
    session: aiohttp.ClientSession, prometheus: Prometheus, dashboard: dict[str, Any]
) -> None:
    """The "Deprecated requests" panel counts one job's gateways in one namespace: the second
    gateway's calls never join the first's, whichever of the two labels sets them apart."""
    (expr,) = [
        e
        for title, _, e in dashboard_queries(dashboard)
        if title == "Deprecated requests (time range)"
    ]

    async def count(query: str) -> float:
        data = await prometheus.query(session, query)
        return sum(float(row["value"][1]) for row in data["result"])

    async def both_scraped() -> bool:
        return await count(concrete(expr, namespace="team-b")) == OTHER_CALLS

    await prometheus.wait_for("the second gateway's calls", both_scraped, 30)
    # The in-process gateway's counters also hold what earlier tests in this process sent.
    main = await count('sum(gateway_deprecated_requests_total{job="gateway",namespace="team-a"})')
    assert main > OTHER_CALLS
    assert await count(concrete(expr, job="gateway", namespace="team-a")) == main
    assert await count(concrete(expr, job="gateway", namespace="team-b")) == OTHER_CALLS
    assert await count(concrete(expr, job="mirror", namespace="team-a")) == OTHER_CALLS
    # What the variables prevent: the same panel over every scrape sums the three of them.
    assert await count(concrete(expr.replace(SCOPE, 'job=~".+"'))) == main + 2 * OTHER_CALLS


async def run_queries(
    session: aiohttp.ClientSession,
    prometheus: Prometheus,
    main: str,
    brownout: str,
    sent: int,
    dashboard: dict[str, Any],
) -> None:
    prom = prometheus.url

    async def scraped(total: int) -> bool:
        data = await prometheus.query(
            session, 'sum(gateway_deprecated_requests_total{job="gateway",namespace="team-a"})'
        )
        return bool(data["result"]) and float(data["result"][0]["value"][1]) >= total

    await prometheus.wait_ready(session)
    await prometheus.wait_for("the first scrape", lambda: scraped(sent), 30)
    sent += await send_traffic(session, main, brownout, rounds=3)
    await prometheus.wait_for("a scrape after the second round", lambda: scraped(sent), 30)
    await asyncio.sleep(2.5)  # two more samples of everything

    empty = []
    for title, ref, expr in dashboard_queries(dashboard):
        data = await prometheus.query(session, concrete(expr))
        if not data["result"]:
            empty.append(f"{title} [{ref}]: {concrete(expr)}")
    assert not empty, "queries without data:\n" + "\n".join(empty)

    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        match = re.fullmatch(
            r"label_values\((\w+(?:\{[^}]*\})?),\s*(\w+)\)", variable["definition"]
        )
        assert match, variable["definition"]
        async with session.get(
            f"{prom}/api/v1/label/{match.group(2)}/values",
            params={"match[]": concrete(match.group(1))},
        ) as response:
            body = await response.json()
        assert body["status"] == "success" and body["data"], variable["name"]
        if variable["name"] == "namespace":
            assert body["data"] == ["team-a", "team-b"]

    # The numbers mean what the panels say.
    by_consumer = await prometheus.query(
        session, "sum by (consumer) (gateway_deprecated_requests_total)"
    )
    consumers = {r["metric"]["consumer"] for r in by_consumer["result"]}
    assert {"billing-app", "support-bot", UNNAMED, "anonymous"} <= consumers
    failures = await prometheus.query(
        session, 'sum(rate(gateway_upstream_failures_total{kind="refused"}[1m])) > 0'
    )
    assert failures["result"]
    brownouts = await prometheus.query(
        session, "sum(increase(gateway_brownout_rejections_total[1m])) > 0"
    )
    assert brownouts["result"]
    days = await prometheus.query(
        session, "min((gateway_sunset_timestamp_seconds - time()) / 86400)"
    )
    sunset = make_config().deprecation.sunset.timestamp()
    assert float(days["result"][0]["value"][1]) == pytest.approx(
        (sunset - time.time()) / 86400, abs=0.01
    )
