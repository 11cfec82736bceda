"""What each front door costs next to the plain listener, measured in one run.

    .venv/bin/python benchmarks/front_doors.py            # ROUNDS=3 DURATION=10 HANDSHAKES=300
    DURATION=2 ROUNDS=1 HANDSHAKES=30 .venv/bin/python benchmarks/front_doors.py   # a quick pass

Starts an upstream (``gateway simulate``, or UPSTREAM_URL, e.g. the nginx stand-in of
benchmarks/harness on http://127.0.0.1:18081), one gateway serving the plain listener and the proxy
front door, and one serving the TLS listener, both pinned to GW_CPUS (CPU 0). The load
generator is this process, pinned to LOAD_CPUS (CPU 1) with the simulator. Three doors:

- direct: HTTP to the plain listener;
- tls:    HTTPS to the TLS listener (certificate for preview.twilio.com from a throwaway CA);
- proxy:  CONNECT preview.twilio.com:443 to the proxy front door, then HTTPS inside the tunnel.

Two measurements per door, the doors' order rotating each round:

1. requests per second over CONNS kept-alive connections (closed loop, DURATION seconds each),
   with p50/p99 latency: the per-request cost of TLS, and of TLS inside a tunnel;
2. new connections, one at a time, HANDSHAKES of them: time until the connection is ready for a
   request (TCP; + TLS handshake; + CONNECT and TLS handshake), then with one request answered.

Figures are medians over the rounds and ratios against direct *in this run* (never compare
absolute figures across runs). Nothing here is a test; tests/test_benchmarks_run.py only checks
that a tiny run still completes.
"""

from __future__ import annotations

import asyncio
import base64
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from gateway.frontdoor.names import CA_DAYS
from gateway.tools.tls import ISSUE_DAYS, issue_certificate, write_ca

HOST = "preview.twilio.com"
AUTH = "Basic " + base64.b64encode(b"AC" + b"0" * 31 + b"1:bench").decode()
ROOT = Path(__file__).resolve().parents[1]
DOORS = ("direct", "tls", "proxy")


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


ROUNDS = int(_env_float("ROUNDS", 3))
DURATION = _env_float("DURATION", 10)
CONNS = int(_env_float("CONNS", 16))
HANDSHAKES = int(_env_float("HANDSHAKES", 300))
PATH = os.environ.get("BENCH_PATH", "/marketplace/AvailableAddOns?PageSize=5")
GW_CPUS = os.environ.get("GW_CPUS", "0")
LOAD_CPUS = os.environ.get("LOAD_CPUS", "1")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _pinned(cpus: str, argv: list[str]) -> list[str]:
    usable = os.cpu_count() or 1
    if cpus and all(int(c) < usable for c in cpus.split(",")) and Path("/usr/bin/taskset").exists():
        return ["taskset", "-c", cpus, *argv]
    return argv


@contextmanager
def _servers(folder: Path) -> Iterator[dict[str, int]]:
    """Upstream + two gateways; their ports. Everything started here is stopped on exit."""
    ca = write_ca(folder, [HOST], CA_DAYS, force=False)  # as `gateway tls init` and `issue`
    leaf_cert, leaf_key = issue_certificate(folder, HOST, ISSUE_DAYS, force=False)
    ports = {name: _free_port() for name in ("upstream", "direct", "proxy", "tls")}
    gateway = [sys.executable, "-m", "gateway"]
    processes: list[subprocess.Popen[bytes]] = []
    log = (folder / "servers.log").open("wb")
    try:
        upstream = os.environ.get("UPSTREAM_URL")
        if not upstream:
            upstream = f"http://127.0.0.1:{ports['upstream']}"
            simulate = [*gateway, "simulate", "--listen", f"127.0.0.1:{ports['upstream']}"]
            processes.append(subprocess.Popen(_pinned(LOAD_CPUS, simulate), stdout=log, stderr=log))
        common = ["--marketplace-upstream", upstream, "--api-upstream", upstream]
        common += ["--access-log", "false", "--log-level", "warning"]
        plain_and_proxy = [*gateway, "serve", "--listen", f"127.0.0.1:{ports['direct']}", *common]
        plain_and_proxy += ["--proxy-listen", f"127.0.0.1:{ports['proxy']}"]
        plain_and_proxy += ["--proxy-ca-cert", str(ca.root), "--proxy-ca-key", str(ca.key)]
        tls = [*gateway, "serve", "--listen", f"127.0.0.1:{ports['tls']}", *common]
        tls += ["--tls-cert", str(leaf_cert), "--tls-key", str(leaf_key)]
        for argv in (plain_and_proxy, tls):
            processes.append(subprocess.Popen(_pinned(GW_CPUS, argv), stdout=log, stderr=log))
        yield ports
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()


class Door:
    """How a client reaches the gateway through one front door."""

    def __init__(self, name: str, ports: dict[str, int], trust: ssl.SSLContext) -> None:
        self.name, self.ports, self.trust = name, ports, trust
        port = ports["direct"] if name == "direct" else ports[name]
        self.port = port
        host = f"127.0.0.1:{port}" if name == "direct" else HOST
        self.request = (
            f"GET {PATH} HTTP/1.1\r\nHost: {host}\r\nAuthorization: {AUTH}\r\n\r\n"
        ).encode()

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
        if self.name == "proxy":
            writer.write(f"CONNECT {HOST}:443 HTTP/1.1\r\nHost: {HOST}:443\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"CONNECT refused: {head[:60]!r}")
        if self.name != "direct":
            await writer.start_tls(self.trust, server_hostname=HOST)
        return reader, writer

    async def ask(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
        writer.write(self.request)
        head = await reader.readuntil(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        body = await reader.readexactly(length)
        if not head.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"{self.name}: {head[:60]!r}")
        return body


async def _wait_ready(doors: list[Door], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    for door in doors:
        while True:
            try:
                reader, writer = await door.connect()
                body = await door.ask(reader, writer)
                writer.close()
                expected = (
                    f"http://127.0.0.1:{door.port}/marketplace/" if door.name == "direct"
                    else f"https://{HOST}/marketplace/"
                )  # fmt: skip
                if expected.encode() not in body or b"marketplace.twilio.com/v1" in body:
                    raise SystemExit(f"CHECK FAILED for {door.name}: URLs not on {expected}")
                break
            except (OSError, asyncio.IncompleteReadError, RuntimeError) as exc:
                starting = not isinstance(exc, RuntimeError) or " 502 " in str(exc)
                if not starting or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)


async def _throughput(door: Door) -> tuple[float, float, float]:
    """req/s, p50 ms, p99 ms over CONNS kept-alive connections for DURATION seconds."""
    latencies: list[float] = []
    stop = time.monotonic() + DURATION

    async def worker() -> None:
        reader, writer = await door.connect()
        try:
            while time.monotonic() < stop:
                started = time.perf_counter()
                await door.ask(reader, writer)
                latencies.append(time.perf_counter() - started)
        finally:
            writer.close()

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(CONNS)))
    elapsed = time.monotonic() - started
    cuts = statistics.quantiles(latencies, n=100)
    return len(latencies) / elapsed, cuts[49] * 1000, cuts[98] * 1000


async def _new_connections(door: Door) -> tuple[float, float]:
    """Median ms until a new connection is ready, and until its first answer."""
    ready, answered = [], []
    for _ in range(HANDSHAKES):
        started = time.perf_counter()
        reader, writer = await door.connect()
        ready.append(time.perf_counter() - started)
        await door.ask(reader, writer)
        answered.append(time.perf_counter() - started)
        writer.close()
    return statistics.median(ready) * 1000, statistics.median(answered) * 1000


async def _measure(
    ports: dict[str, int], trust: ssl.SSLContext
) -> dict[str, list[tuple[float, ...]]]:
    doors = [Door(name, ports, trust) for name in DOORS]
    await _wait_ready(doors)
    results: dict[str, list[tuple[float, ...]]] = {name: [] for name in DOORS}
    for round_number in range(ROUNDS):
        order = doors[round_number % 3 :] + doors[: round_number % 3]
        for door in order:
            rps, p50, p99 = await _throughput(door)
            setup, first = await _new_connections(door)
            results[door.name].append((rps, p50, p99, setup, first))
            print(
                f"round {round_number + 1} {door.name:<6} {rps:8.0f} req/s  p50 {p50:6.2f} ms  "
                f"p99 {p99:6.2f} ms  new connection {setup:6.2f} ms (+ first answer {first:6.2f})",
                flush=True,
            )
    return results


def _report(results: dict[str, list[tuple[float, ...]]]) -> str:
    medians = {
        name: [statistics.median(run[i] for run in runs) for i in range(5)]
        for name, runs in results.items()
    }
    base = medians["direct"]
    lines = [
        f"\nfront doors, {ROUNDS} round(s) x {DURATION:g} s at {CONNS} connections, "
        f"{HANDSHAKES} new connections per door; path {PATH}",
        f"{'door':<7}{'req/s':>9}{'vs direct':>11}{'p50 ms':>9}{'p99 ms':>9}"
        f"{'connect ms':>12}{'+1st answer':>13}{'added ms':>10}",
    ]
    for name in DOORS:
        rps, p50, p99, setup, first = medians[name]
        lines.append(
            f"{name:<7}{rps:9.0f}{rps / base[0]:10.2f}x{p50:9.2f}{p99:9.2f}"
            f"{setup:12.2f}{first:13.2f}{first - base[4]:10.2f}"
        )
    lines.append(
        "connect ms: TCP (+ TLS handshake; + CONNECT and TLS handshake) until a request can go; "
        "added ms: a new connection's first answer, minus direct's."
    )
    return "\n".join(lines)


def main() -> int:
    if LOAD_CPUS and hasattr(os, "sched_setaffinity"):
        cpus = {int(c) for c in LOAD_CPUS.split(",") if int(c) < (os.cpu_count() or 1)}
        if cpus:
            os.sched_setaffinity(0, cpus)
    with tempfile.TemporaryDirectory(prefix="front-doors-bench-") as tmp:
        folder = Path(tmp)
        with _servers(folder) as ports:
            trust = ssl.create_default_context(cafile=str(folder / "ca.pem"))
            results = asyncio.run(_measure(ports, trust))
    print(_report(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
