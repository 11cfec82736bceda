"""A real Prometheus (Debian's package) for tests: find the binary, start it on a free loopback
port with its own config and storage, scrape given targets, query it, stop it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from tests.processes import free_port, require_binary


def prometheus_binary() -> str:
    return require_binary(
        "prometheus",
        "run scripts/install-system-deps.sh (as root; installs Debian's prometheus package) "
        "and try again",
    )


@dataclass(frozen=True)
class Prometheus:
    url: str  # http://127.0.0.1:PORT
    log: Path

    async def query(
        self, session: aiohttp.ClientSession, expr: str, at: float | None = None
    ) -> Any:
        """``/api/v1/query`` (at Unix time ``at``, default now); the ``data`` of a success."""
        params = {"query": expr} | ({} if at is None else {"time": f"{at:.3f}"})
        async with session.get(f"{self.url}/api/v1/query", params=params) as response:
            body = await response.json()
        assert body["status"] == "success", (expr, body)
        return body["data"]

    async def wait_for(
        self, what: str, check: Callable[[], Awaitable[bool]], timeout: float
    ) -> None:
        """Poll ``check`` until it is true; on time-out fail with the tail of the log."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if await check():
                    return
            except (aiohttp.ClientError, OSError, KeyError, ValueError, IndexError):
                pass
            await asyncio.sleep(0.25)
        tail = self.log.read_text("utf-8", "replace")[-3000:] if self.log.exists() else ""
        raise AssertionError(
            f"timed out after {timeout}s waiting for {what}\nprometheus log:\n{tail}"
        )

    async def wait_ready(self, session: aiohttp.ClientSession, timeout: float = 30) -> None:
        async def ready() -> bool:
            async with session.get(f"{self.url}/-/ready") as response:
                return response.status == 200

        await self.wait_for("Prometheus to be ready", ready, timeout)


def scrape_job(
    name: str, groups: Sequence[tuple[Sequence[str], Mapping[str, str]]]
) -> dict[str, Any]:
    """One scrape job: its name and groups of targets (``host:port``, path /metrics), each group
    with the target labels it is given (as a ServiceMonitor gives ``namespace``)."""
    return {
        "job_name": name,
        "metrics_path": "/metrics",
        "static_configs": [
            {"targets": list(targets), "labels": dict(labels)} for targets, labels in groups
        ],
    }


def promtool_binary() -> str:
    return require_binary(
        "promtool",
        "run scripts/install-system-deps.sh (as root; Debian's prometheus package ships promtool) "
        "and try again",
    )


async def backfill(openmetrics: str, directory: Path) -> None:
    """Write ``openmetrics`` (OpenMetrics text with timestamps, ending in ``# EOF``) as TSDB
    blocks into ``directory / "data"``, the storage :func:`running_prometheus` then opens:
    ``promtool tsdb create-blocks-from openmetrics``, as an operator backfills history."""
    source = directory / "backfill.om"
    source.write_text(openmetrics, "utf-8")
    process = await asyncio.create_subprocess_exec(
        promtool_binary(),
        "tsdb",
        "create-blocks-from",
        "openmetrics",
        "--quiet",
        str(source),
        str(directory / "data"),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, output.decode(errors="replace")[-3000:]


@asynccontextmanager
async def running_prometheus(
    targets: Sequence[str],
    directory: Path,
    scrape_interval: str = "1s",
    jobs: Sequence[dict[str, Any]] = (),
    retention: str = "15d",
) -> AsyncIterator[Prometheus]:
    """Prometheus scraping ``targets`` (``host:port``, path /metrics) in one job ``gateway``,
    and the ``jobs`` of :func:`scrape_job`, with its config, data and log under ``directory``,
    keeping ``retention`` of history; stopped on exit."""
    binary = prometheus_binary()
    port = free_port()
    config = directory / "prometheus.yml"
    scrape_configs = [scrape_job("gateway", [(targets, {})])] if targets else []
    config.write_text(
        yaml.safe_dump(
            {
                "global": {
                    "scrape_interval": scrape_interval,
                    "evaluation_interval": scrape_interval,
                },
                "scrape_configs": [*scrape_configs, *jobs],
            }
        ),
        "utf-8",
    )
    log = directory / "prometheus.log"
    with log.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={directory / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--storage.tsdb.retention.time={retention}",
            "--log.level=warn",
            stdin=asyncio.subprocess.DEVNULL,
            stdout=log_file,
            stderr=log_file,
        )
    try:
        yield Prometheus(f"http://127.0.0.1:{port}", log)
    finally:
        if process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                await process.wait()
