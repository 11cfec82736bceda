#!/usr/bin/env python3
"""Instructions per request of a server process, counted by callgrind: stable on a busy host,
where wall-clock throughput is not.

    python3 benchmarks/instructions.py --port 18096 --path list [--requests 300]
        [--warmup 200] [--conns 1] -- COMMAND...

COMMAND starts the server listening on 127.0.0.1:PORT (the gateway, the yardstick, the raw pool
proxy, a client candidate...). It is run twice under ``valgrind --tool=callgrind``, pinned to
CPU 0 (``--cpus``): once serving WARMUP + N requests, once WARMUP + 2N, each stopped with SIGTERM
afterwards. The difference of the two totals over N is the cost of one request with start-up,
warm-up and shut-down taken out. The load (this process, on the other CPU) keeps ``--conns``
keep-alive connections, each with one request in flight: 1 is a sequential client, 32 is what
``wrk -c32`` offers. Every answer must be 200.

PATH is ``list`` (the 50-record page), ``single`` (one record) or a path starting with ``/``;
the request carries wrk_report.lua's headers (Basic auth, Accept, User-Agent).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PATHS = {
    "list": "/marketplace/InstalledAddOns?PageSize=50",
    "single": "/marketplace/InstalledAddOns/XE8f6ef1aa8b0dd2442e039eb1e0f66088",
}
HEADERS = (
    "Authorization: Basic QUNhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYTp0b2tlbg==\r\n"
    "Accept: application/json\r\n"
    "User-Agent: bench-wrk/4.1 (twilio-migration-gateway yardstick)\r\n"
)


async def _one_connection(port: int, request: bytes, count: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for _ in range(count):
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            status = head[9:12]
            if status != b"200":
                raise SystemExit(f"answer {status.decode()}: {head[:200]!r}")
            length = None
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if length is None:
                raise SystemExit("an answer without Content-Length")
            await reader.readexactly(length)
    finally:
        writer.close()


async def _load(port: int, path: str, total: int, conns: int) -> None:
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{HEADERS}\r\n".encode()
    shares = [total // conns + (1 if i < total % conns else 0) for i in range(conns)]
    await asyncio.gather(*(_one_connection(port, request, n) for n in shares if n))


async def _wait_listening(port: int, process: subprocess.Popen[bytes], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited early ({process.returncode})")
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.5)
            continue
        writer.close()
        return
    raise SystemExit("the server did not listen in time")


def _total(out: Path) -> int:
    for line in out.read_text().splitlines():
        if line.startswith(("summary:", "totals:")):
            return int(line.split()[1])
    raise SystemExit(f"no totals in {out}")


def count(command: list[str], port: int, path: str, requests: int, conns: int, cpus: str) -> int:
    """Instructions executed by ``command`` serving ``requests`` answers (start-up included)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *command]
        if cpus:
            argv = ["taskset", "-c", cpus, *argv]
        process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            asyncio.run(_wait_listening(port, process, 300))
            asyncio.run(_load(port, path, requests, conns))
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=120)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        return _total(out)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="list")
    parser.add_argument("--requests", type=int, default=300, help="N")
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--conns", type=int, default=1)
    parser.add_argument("--cpus", default="0", help="taskset list for the server ('' for none)")
    parser.add_argument("--load-cpus", default="1", help="this process's CPUs ('' for none)")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the server's command after --")
    if args.load_cpus:
        os.sched_setaffinity(0, {int(c) for c in args.load_cpus.split(",")})
    path = PATHS.get(args.path, args.path)
    n = args.requests
    once = count(command, args.port, path, args.warmup + n, args.conns, args.cpus)
    twice = count(command, args.port, path, args.warmup + 2 * n, args.conns, args.cpus)
    per_request = (twice - once) / n
    print(
        f"instructions_per_request={per_request:.0f} path={args.path} conns={args.conns} "
        f"n={n} warmup={args.warmup} total_n={once} total_2n={twice}"
    )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
