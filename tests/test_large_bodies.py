"""Large bodies are handled off the event loop: while four 15 MB list pages are being
rewritten, ``/healthz`` keeps answering within 50 ms (p99).

Three real processes on loopback: an upstream serving a 15 MB v1 list page, ``gateway
serve``, and a prober that sends ``GET /healthz`` every 5 ms on a keep-alive connection and
times each answer. The test process sends four large requests at once, a few rounds; only
the probes that overlap a round count. Run with the compiled accelerator and in pure Python.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import aiohttp
import pytest

from gateway.rewrite.link_map import ACCELERATOR, NO_EXTENSIONS_ENV
from tests.fake_upstream import installed
from tests.processes import free_port, start_gateway, wait_ready

pytestmark = [pytest.mark.slow, pytest.mark.upstream]

BIG = 15_000_000
ROUNDS = {"compiled": 5, "pure": 2}  # the pure path's rounds are long: hundreds of probes each
P99_LIMIT_MS = 50.0

UPSTREAM = textwrap.dedent(
    """
    import sys
    from aiohttp import web
    body = open(sys.argv[1], "rb").read()
    async def page(request):
        return web.Response(body=body, content_type="application/json")
    app = web.Application()
    app.router.add_get("/v1/InstalledAddOns", page)
    web.run_app(app, host="127.0.0.1", port=int(sys.argv[2]), print=None, access_log=None)
    """
)

PROBER = textwrap.dedent(
    """
    import http.client, json, sys, time
    port, stop_file = int(sys.argv[1]), sys.argv[2]
    import os
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    probes = []  # [start, end] in wall-clock seconds, comparable across processes
    while not os.path.exists(stop_file):
        started = time.time()
        connection.request("GET", "/healthz")
        response = connection.getresponse()
        response.read()
        probes.append([started, time.time()])
        assert response.status == 200
        time.sleep(0.005)
    print(json.dumps(probes))
    """
)


def big_page() -> bytes:
    record = installed(1)
    size = len(json.dumps(record))
    records = [dict(record, sid=f"XE{n:032x}") for n in range(BIG // size + 1)]
    page = {"installed_add_ons": records, "meta": {"key": "installed_add_ons", "page": 0}}
    return json.dumps(page, separators=(",", ":")).encode()


def p99(times: list[float]) -> float:
    ordered = sorted(times)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


@pytest.mark.parametrize("path", ["compiled", "pure"])
async def test_healthz_stays_fast_while_four_15_mb_rewrites_are_in_flight(
    path: str, tmp_path: Path
) -> None:
    if path == "compiled" and ACCELERATOR is None:
        pytest.skip("the C accelerator is not built")
    env = {NO_EXTENSIONS_ENV: "1" if path == "pure" else ""}
    body_file = tmp_path / "page.json"
    body_file.write_bytes(big_page())
    upstream_port, gateway_port = free_port(), free_port()
    processes = [
        subprocess.Popen([sys.executable, "-c", UPSTREAM, str(body_file), str(upstream_port)])
    ]
    try:
        gateway = start_gateway(
            f"http://127.0.0.1:{upstream_port}", gateway_port, env=env, log=tmp_path / "gw.log"
        )
        processes.append(gateway)
        url = f"http://127.0.0.1:{gateway_port}"
        await wait_ready(url, gateway)
        stop = tmp_path / "stop"
        prober = subprocess.Popen(
            [sys.executable, "-c", PROBER, str(gateway_port), str(stop)], stdout=subprocess.PIPE
        )
        processes.append(prober)
        timeout = aiohttp.ClientTimeout(total=120)
        async with aiohttp.ClientSession(timeout=timeout) as session:

            async def fetch() -> bytes:
                async with session.get(f"{url}/marketplace/InstalledAddOns") as response:
                    assert response.status == 200
                    return await response.read()

            await asyncio.sleep(0.3)  # the prober is under way
            windows: list[tuple[float, float]] = []
            for _ in range(ROUNDS[path]):
                started = time.time()
                bodies = await asyncio.gather(*(fetch() for _ in range(4)))
                windows.append((started, time.time()))
        stop.touch()
        out, _ = prober.communicate(timeout=30)
        probes: list[tuple[float, float]] = json.loads(out)
    finally:
        for process in processes:
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=15)
    for got in bodies:
        assert len(got) > BIG * 0.9
        assert b'"url":"' + url.encode() + b"/marketplace/InstalledAddOns/XE" in got
        assert b"https://marketplace.twilio.com/v1/InstalledAddOns/keep" in got  # customer data
    times = [
        (end - start) * 1000
        for start, end in probes
        if any(start < last and end > first for first, last in windows)  # overlaps a round
    ]
    print(f"{path}: {len(times)} probes, p99 {p99(times):.1f} ms, max {max(times):.1f} ms")
    assert len(times) >= 20, (len(probes), windows)
    assert p99(times) < P99_LIMIT_MS, (
        f"/healthz p99 {p99(times):.1f} ms over {len(times)} probes (max {max(times):.1f} ms)"
    )
