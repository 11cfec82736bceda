"""``gateway report``: migration status from a gateway's /metrics or from Prometheus."""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.app import create_app
from gateway.config.rules import load_rules
from gateway.tools import report, report_reader
from tests.conftest import make_config
from tests.fake_upstream import FakeUpstream

FIXTURE = Path(__file__).resolve().parent / "fixtures" / "report" / "metrics.txt"
NOW = 1764007200.0  # 2025-11-24T18:00:00Z
SUNSET = 1733011200.0  # 2024-12-01T00:00:00Z
RULES = load_rules()
PREVIEW_ROUTES = [rule.name for rule in RULES.rules if rule.deprecated]

ServerFactory = Callable[..., Awaitable[TestServer]]


def fixture_report() -> report.Report:
    samples = report_reader.parse_metrics_text(FIXTURE.read_text("utf-8"))
    return report.build_report(samples, RULES, "fixture", NOW)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="gateway report")
    report.add_arguments(parser)
    return parser.parse_args(list(argv))


async def run_report(*argv: str) -> int:
    """``run`` blocks on urllib: keep the test's event loop (and its servers) free."""
    return await asyncio.to_thread(report.run, parse(*argv))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- from a /metrics text fixture -----------------------------------------------------------------


def test_report_routes_follow_the_rules_and_carry_v1_replacements() -> None:
    built = fixture_report()
    names = [status.route for status in built.routes]
    assert names == [*PREVIEW_ROUTES, "preview_legacy_custom"]  # unknown routes last
    by_name = {status.route: status for status in built.routes}
    installed = by_name["preview_installed_add_ons"]
    assert installed.requests == 14
    assert installed.consumers == (
        ("billing-app", 9),
        ("AC33333333333333333333333333333333", 3),
        ("anonymous", 2),
    )
    assert installed.v1_path == "/v1/InstalledAddOns"
    assert installed.v1_url == "https://marketplace.twilio.com/v1/InstalledAddOns"
    assert installed.methods == ("GET", "POST")
    assert installed.brownout_rejections == 2
    extension = by_name["preview_installed_add_on_extension"]
    assert extension.requests == 0 and extension.last_seen is None
    assert extension.v1_path == "/v1/InstalledAddOns/{InstalledAddOnSid}/Extensions/{Sid}"
    custom = by_name["preview_legacy_custom"]
    assert custom.v1_path is None and custom.requests == 1
    for rule in RULES.rules:
        if rule.deprecated:
            assert by_name[rule.name].v1_path == rule.target.text


def test_report_consumers_summary() -> None:
    built = fixture_report()
    assert [status.route for status in built.still_called] == [
        "preview_available_add_on",
        "preview_installed_add_ons",
        "preview_legacy_custom",
    ]
    assert built.consumers()[0] == (
        "billing-app",
        12,
        ("preview_available_add_on", "preview_installed_add_ons"),
    )
    assert built.consumer_overflow == 4


def test_text_format() -> None:
    text = report.format_text(fixture_report())
    lines = text.splitlines()
    assert (
        "preview_installed_add_ons: 14 request(s), last seen 2025-11-24T17:00:00Z (1 hour ago), "
        "sunset 2024-12-01 (358.8 days ago)"
    ) in lines
    assert (
        "  GET,POST /marketplace/InstalledAddOns -> https://marketplace.twilio.com/v1/InstalledAddOns"
        in lines
    )
    assert "    billing-app: 9" in lines
    assert "  brownout rejections (410): 2" in lines
    assert any(line.startswith("preview_installed_add_on: no calls, not seen") for line in lines)
    assert "3 of 9 deprecated route(s) still called by 4 consumer(s):" in lines
    assert "4 request(s) were counted as consumer 'other'" in text


def test_json_format() -> None:
    data = report.to_json(fixture_report())
    json.dumps(data)  # serialisable
    assert data["still_called"] is True
    assert data["generated_at"] == "2025-11-24T18:00:00Z"
    route = next(r for r in data["routes"] if r["route"] == "preview_installed_add_ons")
    assert route["days_until_sunset"] == pytest.approx(-358.8)
    assert route["sunset"] == "2024-12-01T00:00:00Z"
    assert route["last_seen"] == "2025-11-24T17:00:00Z"
    assert route["consumers"][0] == {"consumer": "billing-app", "requests": 9}
    assert data["consumers"][0]["routes"] == [
        "preview_available_add_on",
        "preview_installed_add_ons",
    ]


def test_sunset_in_the_future_reads_in_days() -> None:
    samples = report_reader.Samples(
        {}, {}, {"preview_installed_add_ons": NOW + 86400 * 30}, {}, 0.0
    )
    text = report.format_text(report.build_report(samples, RULES, "x", NOW))
    assert "sunset 2025-12-24 (in 30 days)" in text
    assert "No deprecated route was called" in text


# --- from a live gateway --------------------------------------------------------------------------


def basic(sid: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{sid}:secret".encode()).decode()}


@pytest.mark.upstream
async def test_live_gateway(
    aiohttp_server: ServerFactory, fake_upstream: FakeUpstream, capsys: pytest.CaptureFixture[str]
) -> None:
    sid = "AC" + "7" * 32
    other = "AC" + "8" * 32
    app = create_app(
        make_config(fake_upstream.url, consumer_names={sid: "report-test-app"}, access_log=False)
    )
    server = await aiohttp_server(app)
    base = str(server.make_url("")).rstrip("/")

    async with aiohttp.ClientSession() as session:
        for _ in range(3):
            async with session.get(f"{base}/marketplace/InstalledAddOns", headers=basic(sid)) as r:
                assert r.status == 200
        async with session.get(
            f"{base}/marketplace/AvailableAddOns/XB{'0' * 32}", headers=basic(other)
        ) as r:
            assert r.status == 200

    assert await run_report("--metrics-url", f"{base}/metrics", "--format", "json") == 0
    data = json.loads(capsys.readouterr().out)
    routes = {r["route"]: r for r in data["routes"]}
    assert set(PREVIEW_ROUTES) <= set(routes)
    consumers = {
        c["consumer"]: c["requests"] for c in routes["preview_installed_add_ons"]["consumers"]
    }
    assert consumers["report-test-app"] >= 3  # the registry is process-wide: other tests add
    assert routes["preview_available_add_on"]["v1_url"] == (
        "https://marketplace.twilio.com/v1/AvailableAddOns/{Sid}"
    )
    assert routes["preview_installed_add_ons"]["last_seen"] is not None
    assert routes["preview_installed_add_ons"]["days_until_sunset"] < 0  # default sunset passed

    assert await run_report("--metrics-url", f"{base}/metrics") == 0
    text = capsys.readouterr().out
    assert "report-test-app:" in text and other in text
    assert await run_report("--metrics-url", f"{base}/metrics", "--fail-if-called") == 1


# --- from Prometheus ----------------------------------------------------------------------------


def prometheus_app(queries: list[str]) -> web.Application:
    """A stand-in for Prometheus' /api/v1/query answering the report's queries."""

    def vector(*rows: tuple[dict[str, str], float]) -> list[dict[str, Any]]:
        return [{"metric": labels, "value": [NOW, str(value)]} for labels, value in rows]

    async def query(request: web.Request) -> web.Response:
        expr = request.query["query"]
        queries.append(expr)
        if "gateway_deprecated_requests_total" in expr:
            result = vector(
                ({"route": "preview_installed_add_on", "consumer": "billing-app"}, 41.7),
                ({"route": "preview_installed_add_on", "consumer": "AC" + "9" * 32}, 0.2),
            )
        elif "last_seen" in expr:
            result = vector(({"route": "preview_installed_add_on"}, NOW - 120))
        elif "sunset" in expr:
            result = vector(*(({"route": name}, SUNSET) for name in PREVIEW_ROUTES))
        elif "brownout" in expr:
            result = vector(({"route": "preview_installed_add_on"}, float("nan")))
        elif "overflow" in expr:
            result = vector(({}, 0.0))
        elif "build_info" in expr:
            result = vector(({"version": "0.1.0"}, 2))
        else:
            return web.json_response({"status": "error", "error": f"unexpected {expr}"}, status=400)
        return web.json_response(
            {"status": "success", "data": {"resultType": "vector", "result": result}}
        )

    app = web.Application()
    app.router.add_get("/api/v1/query", query)
    return app


async def test_prometheus_source(
    aiohttp_server: ServerFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    queries: list[str] = []
    server = await aiohttp_server(prometheus_app(queries))
    base = str(server.make_url("")).rstrip("/")
    assert await run_report("--prometheus-url", base, "--window", "14d", "--format", "json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["window"] == "14d"
    assert data["gateway_versions"] == ["0.1.0"]
    route = next(r for r in data["routes"] if r["route"] == "preview_installed_add_on")
    # increase() extrapolates: counts are rounded, a fraction of a request is no caller
    assert route["consumers"] == [{"consumer": "billing-app", "requests": 42}]
    assert route["brownout_rejections"] == 0
    assert route["last_seen"] is not None
    assert any("increase(gateway_deprecated_requests_total[14d])" in q for q in queries)
    assert any(
        "max_over_time(gateway_deprecated_route_last_seen_timestamp_seconds[14d])" in q
        for q in queries
    )


async def test_prometheus_without_gateway_series(
    aiohttp_server: ServerFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    async def empty(request: web.Request) -> web.Response:
        return web.json_response(
            {"status": "success", "data": {"resultType": "vector", "result": []}}
        )

    app = web.Application()
    app.router.add_get("/api/v1/query", empty)
    server = await aiohttp_server(app)
    assert await run_report("--prometheus-url", str(server.make_url("/"))) == 2
    assert "no gateway_* series" in capsys.readouterr().err


# --- errors -----------------------------------------------------------------------------------


async def test_unreachable_gateway_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{closed_port()}/metrics"
    assert await run_report("--metrics-url", url, "--timeout", "5") == 2
    err = capsys.readouterr().err
    assert err.startswith(f"gateway report: cannot reach {url}")


async def test_unreachable_prometheus_names_its_base_url_and_the_reason(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    assert await run_report("--prometheus-url", url, "--timeout", "5") == 2
    # not the ~400-character encoded query URL, nor urllib's "<urlopen error [Errno 111] ...>"
    assert capsys.readouterr().err == (
        f"gateway report: cannot reach Prometheus at {url}: connection refused\n"
    )


async def test_a_prometheus_http_error_names_the_base_url(
    aiohttp_server: ServerFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    server = await aiohttp_server(web.Application())  # 404 for every query
    base = str(server.make_url("")).rstrip("/")
    assert await run_report("--prometheus-url", base) == 2
    assert capsys.readouterr().err == (
        f"gateway report: Prometheus at {base}: HTTP 404 Not Found\n"
    )


async def test_http_error_and_wrong_content_exit_2(
    aiohttp_server: ServerFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    async def not_metrics(request: web.Request) -> web.Response:
        return web.Response(text="<html>hello</html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/page", not_metrics)
    server = await aiohttp_server(app)
    assert await run_report("--metrics-url", str(server.make_url("/missing"))) == 2
    assert "HTTP 404" in capsys.readouterr().err
    assert await run_report("--metrics-url", str(server.make_url("/page"))) == 2
    assert "gateway report:" in capsys.readouterr().err


def test_usage_errors(capsys: pytest.CaptureFixture[str]) -> None:
    assert report.run(parse("--prometheus-url", "http://x", "--window", "7 days")) == 2
    assert "--window" in capsys.readouterr().err
    assert report.run(parse("--prometheus-url", "http://x:99999")) == 2
    assert "--prometheus-url 'http://x:99999': expected an absolute" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        parse("--metrics-url", "http://a/metrics", "--prometheus-url", "http://b")
    assert exc.value.code == 2


def test_default_metrics_url() -> None:
    args = parse()
    assert args.metrics_url is None and args.prometheus_url is None
    assert report.DEFAULT_METRICS_URL == "http://127.0.0.1:8080/metrics"


async def test_gateway_cli_verb(capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.cli import main

    url = f"http://127.0.0.1:{closed_port()}/metrics"
    assert await asyncio.to_thread(main, ["report", "--metrics-url", url], {}) == 2
    assert "cannot reach" in capsys.readouterr().err


@pytest.mark.parametrize("url", ["not-a-url", "ftp://host/metrics", "http://", "/metrics"])
def test_a_metrics_url_that_is_no_http_url_is_one_line_and_exit_2(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.cli import main

    assert main(["report", "--metrics-url", url], {}) == 2  # a ValueError traceback before
    assert capsys.readouterr().err == (
        f"gateway report: --metrics-url {url!r}: expected an absolute http(s) URL, "
        "e.g. http://127.0.0.1:8080/metrics\n"
    )


@pytest.mark.parametrize("source", [[], ["--metrics-url", "http://127.0.0.1:1/metrics"]])
def test_window_without_prometheus_is_refused_not_ignored(
    source: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert report.run(parse(*source, "--window", "1d")) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("gateway report: --window 1d: only with --prometheus-url")
    assert err.count("\n") == 1
