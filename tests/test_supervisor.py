"""``gateway serve --workers N``: the supervisor, its workers and their shared metrics."""

from __future__ import annotations

import asyncio
import base64
import os
import signal
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fake_upstream import FakeUpstream
from tests.processes import free_port, start_gateway, wait_ready

pytestmark = [pytest.mark.slow, pytest.mark.upstream]


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


def consumer_labels(exposition: str) -> set[str]:
    return {
        sample.labels["consumer"]
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == "gateway_deprecated_requests_total"
    }


async def test_three_workers_share_one_consumer_cap_across_a_restart(
    fake_upstream: FakeUpstream, tmp_path: Path
) -> None:
    port = free_port()
    process = start_gateway(
        fake_upstream.url,
        port,
        "--workers",
        "3",
        "--consumer-cap",
        "2",
        env={"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom")},
    )
    url = f"http://127.0.0.1:{port}"
    sids = ["AC" + f"{n:032x}" for n in range(1, 7)]

    async def call_with_every_sid(session: aiohttp.ClientSession, rounds: int) -> None:
        for _ in range(rounds):  # new connections: every worker meets every SID
            for account in sids:
                auth = "Basic " + base64.b64encode(f"{account}:t".encode()).decode()
                async with session.get(
                    f"{url}/marketplace/AvailableAddOns", headers={"Authorization": auth}
                ) as response:
                    assert response.status == 200

    try:
        await wait_ready(url, process)
        connector = aiohttp.TCPConnector(force_close=True)
        async with aiohttp.ClientSession(connector=connector) as session:
            await call_with_every_sid(session, 5)
            async with session.get(f"{url}/metrics") as response:
                before = consumer_labels(await response.text())
            # Kill one worker: the supervisor restarts it, and the new one keeps the cap.
            workers = _workers_of(process.pid)
            assert len(workers) == 3, workers
            os.kill(workers[0], signal.SIGKILL)
            for _ in range(100):  # until the supervisor has started a replacement
                restarted = _workers_of(process.pid)
                if len(restarted) == 3 and workers[0] not in restarted:
                    break
                await asyncio.sleep(0.1)
            assert len(restarted) == 3 and workers[0] not in restarted
            await wait_ready(url, process)
            await call_with_every_sid(session, 8)
            async with session.get(f"{url}/metrics") as response:
                after = consumer_labels(await response.text())
        admitted = before - {"other"}
        assert len(admitted) == 2 and admitted <= set(sids)
        assert after == before == admitted | {"other"}
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0


def _workers_of(parent: int) -> list[int]:
    return sorted(
        int(pid) for pid in os.listdir("/proc") if pid.isdigit() and _is_worker_of(int(pid), parent)
    )


def _is_worker_of(pid: int, parent: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return int(stat.read().rpartition(")")[2].split()[1]) == parent
    except (OSError, ValueError, IndexError):
        return False
