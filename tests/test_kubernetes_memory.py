"""The Kubernetes base's memory limit, measured: a real ``gateway serve`` with the base's own
config file (the budgets and the connection cap it sets) is loaded to every bound at once:
request bodies holding ``max_buffered_body_size``, clients that read nothing holding
``max_buffered_response_size`` of answers, and the rest of ``max_client_connections`` kept
alive after a small answer each (the most a kept-alive connection holds). Its RSS, sampled
throughout, must stay under the Deployment's limit. tests/test_kubernetes.py recomputes the
limit's arithmetic; this shows the process really stays inside it, on uvloop and asyncio."""

from __future__ import annotations

import asyncio
import re
import socket
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from gateway.config.settings import load_config
from tests.processes import LOOPS, free_port, rss, spawn, wait_ready
from tests.raw_upstream import RawUpstream, head
from tests.test_kubernetes import DEPLOY, kustomize, memory_limit_mib, the

pytestmark = [pytest.mark.slow, pytest.mark.upstream]

MiB = 1024 * 1024
SMALL = 16 * 1024  # the largest answer a kept-alive connection keeps (larger ones are dropped)
LIST = "/marketplace/AvailableAddOns"
UPLOAD = "/marketplace/InstalledAddOns"


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """``?size=N``: N bytes with a Content-Length."""
    request_head = upstream.heads[-1]
    query = parse_qs(urlsplit(request_head.split(b" ")[1].decode()).query)
    size = int(query.get("size", ["2"])[0])
    writer.write(
        head(
            "200 OK",
            "Content-Type: application/json",
            f"Content-Length: {size}",
            "Connection: close",
        )
    )
    writer.write(b"x" * size)
    await writer.drain()


upstream = RawUpstream(_answer)


@pytest.fixture
async def answers() -> AsyncIterator[str]:
    await upstream.start()
    yield upstream.url
    await upstream.close()


class Silent:
    """A client socket that sends what it is given and reads nothing (a tiny receive buffer),
    so what the gateway sends it waits in the gateway."""

    def __init__(self, port: int, request: bytes) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(request)


def _base_config(tmp_path: Path, port: int, metrics_port: int) -> Path:
    """The base's gateway.toml as the pods read it, on loopback ports, its rules where the
    checkout keeps them (the listen addresses are the only lines changed)."""
    text = (DEPLOY / "base" / "config" / "gateway.toml").read_text("utf-8")
    text = re.sub(r'(?m)^listen = ".*"$', f'listen = "127.0.0.1:{port}"', text)
    text = re.sub(
        r'(?m)^metrics_listen = ".*"$', f'metrics_listen = "127.0.0.1:{metrics_port}"', text
    )
    text = re.sub(r'(?m)^rules = ".*"$', f'rules = "{DEPLOY / "base" / "rules"}"', text)
    path = tmp_path / "gateway.toml"
    path.write_text(text, "utf-8")
    return path


@pytest.mark.parametrize("loop", LOOPS)
async def test_the_base_loaded_to_every_budget_stays_under_its_memory_limit(
    loop: str, answers: str, tmp_path: Path
) -> None:
    limit = memory_limit_mib(the(kustomize(DEPLOY / "base"), "Deployment"))
    port, metrics_port = free_port(), free_port()
    config_file = _base_config(tmp_path, port, metrics_port)
    config = load_config({"config": str(config_file)}, {})
    process = spawn(
        tmp_path / "gateway.log",
        "serve", "--config", str(config_file),
        "--marketplace-upstream", answers, "--api-upstream", answers, "--access-log", "false",
        loop=loop,
    )  # fmt: skip
    samples: list[int] = []

    async def sample() -> None:
        while True:
            samples.append(rss(process.pid))
            await asyncio.sleep(0.02)

    sampler: asyncio.Task[None] | None = None
    streams: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    silent: list[Silent] = []
    try:
        await wait_ready(f"http://127.0.0.1:{port}", process, seconds=30)
        baseline = rss(process.pid)
        sampler = asyncio.create_task(sample())
        # First (a full response budget would make their answers wait): every connection the
        # cap allows besides the ones below, kept alive after one small answer each.
        holders = config.max_buffered_response_size // config.max_response_size
        uploads = config.max_buffered_body_size // config.max_body_size
        kept = config.max_client_connections - holders - uploads - 8
        for start in range(0, kept, 100):
            opened = [
                await asyncio.open_connection("127.0.0.1", port)
                for _ in range(min(100, kept - start))
            ]
            for _, writer in opened:
                writer.write(f"GET {LIST}?size={SMALL} HTTP/1.1\r\nHost: gw\r\n\r\n".encode())
            for reader, _ in opened:
                async with asyncio.timeout(30):
                    reply = await reader.readuntil(b"\r\n\r\n")
                    assert reply.startswith(b"HTTP/1.1 200 "), reply[:200]
                    await reader.readexactly(SMALL)
            streams += opened
        # Request bodies one byte short: the request-body budget, full.
        body = b"A" * (config.max_body_size - 1)
        for _ in range(uploads):
            request = (
                f"POST {UPLOAD} HTTP/1.1\r\nHost: gw\r\nContent-Length: {config.max_body_size}\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n\r\n"
            ).encode()
            silent.append(Silent(port, request + body))
        # Answers that wait for clients reading nothing: the response budget, full.
        answer = config.max_response_size  # the largest answer allowed
        for _ in range(holders):
            target = f"{LIST}?size={answer}"
            silent.append(Silent(port, f"GET {target} HTTP/1.1\r\nHost: gw\r\n\r\n".encode()))
        await asyncio.sleep(1.0)  # the held answers and bodies are all in, nothing has moved
        loaded = rss(process.pid)
    finally:
        if sampler is not None:
            sampler.cancel()
        for _, writer in streams:
            writer.close()
        for client in silent:
            client.sock.close()
        process.terminate()
        await asyncio.to_thread(process.wait, 30)
    peak = max(samples)
    print(
        f"\n{loop}: base limit {limit} MiB; baseline {baseline / MiB:.1f} MiB; "
        f"{holders} answers of {answer / MiB:.0f} MiB held, {uploads} bodies of "
        f"{config.max_body_size / MiB:.0f} MiB held, {kept} connections kept alive; "
        f"RSS loaded {loaded / MiB:.1f} MiB, peak {peak / MiB:.1f} MiB "
        f"({100 * peak / (limit * MiB):.0f} % of the limit)"
    )
    assert peak < limit * MiB
    assert loaded - baseline > (holders * answer + uploads * config.max_body_size) * 0.8
