"""Contract fuzzing: schemathesis drives the preview spec against a real gateway + simulator.

Both run as ``gateway serve`` and ``gateway simulate`` processes on loopback ports; the
schemathesis CLI (every phase: examples, coverage, fuzzing, stateful; a bounded number of
examples per operation, a fixed seed) sends Basic-authenticated requests to the gateway as a
legacy preview client would. Checks: no 5xx, every documented response matches the spec's
schema, content type and headers, a request without credentials is refused, and no response
takes longer than ``MAX_RESPONSE_SECONDS`` (no hang). Status codes the spec does not list
(401/404/400 from the upstream: Twilio specs document success codes only) and the upstream's
own validation (opaque PageToken, add-on still assigned) are the upstream's business and are
not checked here.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.paths import SPECS
from tests.processes import free_port, spawn, start_gateway, wait_ready

pytestmark = [pytest.mark.slow, pytest.mark.upstream]

ROOT = Path(__file__).resolve().parents[1]
PREVIEW_SPEC = SPECS / "twilio_preview_marketplace.json"
EXAMPLES_PER_OPERATION = 25
MAX_RESPONSE_SECONDS = 5
RUN_TIMEOUT = 120  # measured ~8 s on 2 cores
CHECKS = (
    "not_a_server_error",
    "response_schema_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "ignored_auth",
)


async def test_schemathesis_finds_no_5xx_no_spec_violation_and_no_hang(tmp_path: Path) -> None:
    assert PREVIEW_SPEC.is_file(), f"preview spec not found at {PREVIEW_SPEC}"
    sim_port, gw_port = free_port(), free_port()
    simulator = spawn(tmp_path / "simulator.log", "simulate", "--listen", f"127.0.0.1:{sim_port}")
    upstream = f"http://127.0.0.1:{sim_port}"
    gateway = start_gateway(upstream, gw_port, log=tmp_path / "gateway.log")
    base = f"http://127.0.0.1:{gw_port}"
    try:
        await wait_ready(base, gateway)
        run = subprocess.run(
            [
                str(Path(sys.executable).with_name("schemathesis")),
                "run",
                str(PREVIEW_SPEC),
                "--url",
                base,  # the spec's server is https://preview.twilio.com
                "--auth",
                "AC00000000000000000000000000000001:auth-token",
                "--max-examples",
                str(EXAMPLES_PER_OPERATION),
                "--seed",
                "20240618",
                "--checks",
                ",".join(CHECKS),
                "--max-response-time",
                str(MAX_RESPONSE_SECONDS),
                "--request-timeout",
                "10",
                "--no-color",
            ],
            cwd=tmp_path,  # hypothesis and schemathesis keep their caches here
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )
        gateway_alive = gateway.poll() is None
    finally:
        for process in (gateway, simulator):
            process.send_signal(signal.SIGTERM)
        gateway_code = gateway.wait(20)
        simulator.wait(20)
    report = run.stdout[-6000:] + run.stderr[-2000:]
    assert run.returncode == 0, report
    generated = re.search(r"(\d+) generated, (\d+) passed", run.stdout)
    assert generated, report
    assert int(generated.group(1)) >= 12 * 10  # every operation was really exercised
    assert "Selected: 12/12" in run.stdout and "Tested: 12" in run.stdout, report
    assert gateway_alive and gateway_code == 0
    assert "Traceback" not in (tmp_path / "gateway.log").read_text()
