"""A fleet for tests: N independent ``gateway serve`` processes (each its own metrics registry,
as separate pods have) in front of one ``gateway simulate``, the test's own round robin over
them, and what the test sent, so that every figure a dashboard or report shows can be predicted.
Also the one-gateway case the staged-migration tests share: a config file's dates relative to
now, the gateway ready with it, and one deprecated call as a consumer.
"""

from __future__ import annotations

import asyncio
import base64
import signal
import subprocess
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from tests.processes import free_port, spawn, start_gateway, wait_for_200, wait_ready


def basic(sid: str) -> dict[str, str]:
    token = base64.b64encode(f"{sid}:secret".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@dataclass(frozen=True)
class Call:
    path: str
    route: str  # the rule name the gateway labels it with ("unmatched" for a 404)
    deprecated: bool
    sid: str | None  # None: no credentials


@dataclass(frozen=True)
class Sent:
    call: Call
    instance: int  # index into the fleet
    status: int
    before: float  # Unix time just before sending
    after: float  # Unix time once the answer was read


@dataclass(frozen=True)
class Fleet:
    urls: tuple[str, ...]  # http://127.0.0.1:PORT of each gateway
    simulator: str

    @property
    def targets(self) -> list[str]:
        """``host:port`` of each gateway, as Prometheus labels them (``instance``)."""
        return [url.removeprefix("http://") for url in self.urls]


def _stop(processes: Sequence[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@contextmanager
def fleet_processes(
    replicas: int, serve_args: Sequence[str], directory: Path
) -> Iterator[tuple[Fleet, list[subprocess.Popen[bytes]]]]:
    """Start the simulator and ``replicas`` gateways (not yet ready); stop them all on exit."""
    sim_port = free_port()
    simulator = f"http://127.0.0.1:{sim_port}"
    processes = [
        spawn(directory / "simulator.log", "simulate", "--listen", f"127.0.0.1:{sim_port}")
    ]
    urls = []
    try:
        for index in range(replicas):
            port = free_port()
            log = directory / f"gateway-{index}.log"
            processes.append(start_gateway(simulator, port, *serve_args, log=log))
            urls.append(f"http://127.0.0.1:{port}")
        yield Fleet(tuple(urls), simulator), processes[1:]
    finally:
        _stop(processes)


async def wait_fleet_ready(fleet: Fleet, gateways: Sequence[subprocess.Popen[bytes]]) -> None:
    await asyncio.gather(*(wait_ready(url, p) for url, p in zip(fleet.urls, gateways, strict=True)))
    await wait_for_200(
        f"{fleet.simulator}/v1/AvailableAddOns",
        failure="the simulator did not answer",
        seconds=10,
        headers=basic("AC" + "0" * 32),
    )


@asynccontextmanager
async def one_gateway(config: Path, directory: Path) -> AsyncIterator[str]:
    """One ``gateway serve --config CONFIG`` in front of the simulator (logs in ``directory``),
    ready: its URL. Both are stopped on exit."""
    with fleet_processes(1, ["--config", str(config)], directory) as (fleet, gateways):
        await wait_fleet_ready(fleet, gateways)
        yield fleet.urls[0]


def iso(moment: float) -> str:
    """Unix seconds as a config file writes an instant: ``2026-12-15T00:00:00Z``."""
    return datetime.fromtimestamp(moment, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


LEGACY_LIST = "/marketplace/AvailableAddOns"  # a deprecated Preview route


async def deprecated_call(
    session: aiohttp.ClientSession,
    gateway: str,
    sid: str | None,
    path: str = LEGACY_LIST,
    headers: Mapping[str, str] | None = None,
) -> int:
    """``GET path`` on ``gateway`` as consumer ``sid`` (Basic auth; None: no credentials), the
    answer read to its end: its status."""
    sent = {**(basic(sid) if sid else {}), **(headers or {})}
    async with session.get(gateway + path, headers=sent) as response:
        await response.read()
        return response.status


async def send(
    session: aiohttp.ClientSession,
    fleet: Fleet,
    plan: Sequence[tuple[int, Call]],
    concurrency: int,
) -> list[Sent]:
    """Send ``(instance, call)`` pairs, ``concurrency`` at a time, in plan order."""
    results: list[Sent | None] = [None] * len(plan)
    queue = iter(enumerate(plan))

    async def worker() -> None:
        for position, (instance, call) in queue:
            before = time.time()
            status = await deprecated_call(session, fleet.urls[instance], call.sid, call.path)
            results[position] = Sent(call, instance, status, before, time.time())

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    done = [sent for sent in results if sent is not None]
    assert len(done) == len(plan)
    return done


def round_robin(calls: Sequence[Call], replicas: int) -> list[tuple[int, Call]]:
    """Call number k goes to instance k mod ``replicas``: the test's own load balancer."""
    return [(index % replicas, call) for index, call in enumerate(calls)]


Scrape = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Scrape:
    """One gateway's ``/metrics`` read directly: ``(sample name, sorted labels) -> value``."""
    import urllib.request

    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def total(samples: Scrape, name: str) -> float:
    return sum(value for (sample, _), value in samples.items() if sample == name)


def count_by(sent: Sequence[Sent], *keys: str) -> Counter[tuple[object, ...]]:
    """How many calls share each combination of ``keys`` (attributes of Sent or of its Call)."""

    def value(item: Sent, key: str) -> object:
        return getattr(item, key) if hasattr(item, key) else getattr(item.call, key)

    return Counter(tuple(value(item, key) for key in keys) for item in sent)
