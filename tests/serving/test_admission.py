"""gateway.serving.admission: each listener counts its connections at accept and refuses those
over its own cap, answered 503 (88006) with Retry-After, on uvloop as on asyncio (issue 17.4: on
uvloop the refusal was a reset and an ERROR traceback), and a flood on the main address leaves
the metrics listener its own slots (17.5)."""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import REGISTRY

from gateway.serving import admission
from gateway.serving.admission import Gate
from tests.processes import (
    free_port,
    runs_uvloop,
    start_gateway,
    wait_ready,
)

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


def hits(limit: str) -> float:
    return REGISTRY.get_sample_value("gateway_client_limit_hits_total", {"limit": limit}) or 0.0


def test_a_gate_counts_up_to_its_cap_and_each_refusal_as_a_limit_hit() -> None:
    gate = Gate(2, "max_metrics_connections")
    before = hits("max_metrics_connections")
    open_before = REGISTRY.get_sample_value("gateway_client_connections") or 0.0
    assert gate.enter() and gate.enter()
    assert REGISTRY.get_sample_value("gateway_client_connections") == open_before + 2
    assert not gate.enter() and not gate.enter()
    assert hits("max_metrics_connections") == before + 2
    gate.leave()
    assert gate.enter()  # a slot given back is taken again
    gate.leave()
    gate.leave()
    assert gate.open == 0
    assert REGISTRY.get_sample_value("gateway_client_connections") == open_before


async def read_to_end(reader: asyncio.StreamReader, seconds: float = 10) -> tuple[bytes, float]:
    began = time.monotonic()
    received = b""
    async with asyncio.timeout(seconds):
        try:
            while chunk := await reader.read(65536):
                received += chunk
        except ConnectionError as exc:  # a reset: what issue 17.4 found on uvloop
            received += f"<{type(exc).__name__}>".encode()
    return received, time.monotonic() - began


def assert_busy(answer: bytes) -> None:
    assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), answer[:200]
    assert b"\r\nRetry-After: 1\r\n" in answer and b"\r\nConnection: close\r\n" in answer
    assert b"\r\nContent-Type: application/json\r\n" in answer
    assert answer.endswith(b'"status":503}') and b'"code":88006' in answer


@dataclass
class Served:
    """A ``gateway serve`` process with a metrics listener, and its log."""

    port: int
    metrics_port: int
    log: Path
    process: subprocess.Popen[bytes]

    async def connect(self, port: int) -> Connection:
        return await asyncio.open_connection("127.0.0.1", port)

    async def refused(self, port: int) -> bytes:
        reader, writer = await self.connect(port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n")
        answer, took = await read_to_end(reader)
        writer.close()
        assert took < admission.LINGER + 2
        return answer


@pytest.fixture
async def serve(tmp_path: Path, serve_loop: str) -> AsyncIterator[Callable[..., Served]]:
    processes = []

    def starter(*flags: str) -> Served:
        port, metrics_port = free_port(), free_port()
        log = tmp_path / f"gateway-{port}.log"
        process = start_gateway(
            "http://127.0.0.1:9",
            port,
            "--metrics-listen",
            f"127.0.0.1:{metrics_port}",
            *flags,
            loop=serve_loop,
            log=log,
        )
        processes.append(process)
        return Served(port, metrics_port, log, process)

    yield starter
    for process in processes:
        process.terminate()
        process.wait(timeout=15)


async def metric(port: int, name: str) -> float:
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
            assert response.status == 200
            text = await response.text()
    [line] = [x for x in text.splitlines() if x.startswith(name + " ")]
    return float(line.split()[1])


async def test_each_listener_refuses_over_its_own_cap_with_503_on_either_loop(
    serve: Callable[..., Served], serve_loop: str
) -> None:
    served = serve(
        "--max-client-connections", "3", "--max-metrics-connections", "2",
        "--client-header-timeout", "30",
    )  # fmt: skip
    process = served.process
    await wait_ready(f"http://127.0.0.1:{served.port}", process)
    assert runs_uvloop(process.pid) == (serve_loop == "uvloop")
    await asyncio.sleep(0.3)  # the readiness poll's connection is gone
    # The main listener full of idle connections: five more are each answered 503.
    held = [await served.connect(served.port) for _ in range(3)]
    await asyncio.sleep(0.2)
    for _ in range(5):
        assert_busy(await served.refused(served.port))
    # /metrics on its own listener is not blinded, and counted the refusals; nor are the
    # probes it serves.
    main_hits = 'gateway_client_limit_hits_total{limit="max_client_connections"}'
    assert await metric(served.metrics_port, main_hits) == 5
    async with aiohttp.ClientSession() as session:
        for probe in ("healthz", "readyz"):
            async with session.get(f"http://127.0.0.1:{served.metrics_port}/{probe}") as response:
                assert response.status == 200
    # It has a cap of its own, as small as set, refused in the same way.
    held += [await served.connect(served.metrics_port) for _ in range(2)]
    await asyncio.sleep(0.2)
    assert_busy(await served.refused(served.metrics_port))
    for _, writer in held:
        writer.close()
    await asyncio.sleep(0.3)
    async with aiohttp.ClientSession() as session:
        async with session.get(f"http://127.0.0.1:{served.port}/healthz") as response:
            assert response.status == 200
    metrics_hits = 'gateway_client_limit_hits_total{limit="max_metrics_connections"}'
    assert await metric(served.port, metrics_hits) == 1
    log = served.log.read_text()
    assert "Traceback" not in log and "ERROR" not in log, log
