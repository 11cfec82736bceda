"""``gateway serve --workers N``: the supervisor, its workers and their shared metrics."""

from __future__ import annotations

import signal
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fake_upstream import FakeUpstream
from tests.processes import free_port, start_gateway, wait_ready

pytestmark = pytest.mark.slow


def requests_total(exposition: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == "gateway_requests_total" and sample.labels["route"] == (
                "preview_available_add_ons"
            ):
                total += sample.value
    return total


async def test_two_workers_count_every_request_once(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    port = free_port()
    metrics_dir = tmp_path / "prom"
    process = start_gateway(
        fake_upstream.url,
        port,
        "--workers",
        "2",
        env={"PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(url, process)
        sent = 60
        # A new connection per request lets SO_REUSEPORT spread them over both workers.
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            for _ in range(sent):
                async with session.get(f"{url}/marketplace/AvailableAddOns") as response:
                    assert response.status == 200
            scrapes = []
            for _ in range(4):  # any worker may answer the scrape; all see the same sums
                async with session.get(f"{url}/metrics") as response:
                    scrapes.append(requests_total(await response.text()))
        assert scrapes == [sent] * 4
        counter_files = list(metrics_dir.glob("counter_*.db"))
        assert len(counter_files) == 2, counter_files  # both workers served requests
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
