"""benchmarks/: the microbenchmark suite still runs (once per benchmark, without timing), and
the load benchmark's harness (benchmarks/harness/, run by benchmarks/run.sh) is whole, needs
nothing beside the checkout, and its parts work; no load is generated here."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.processes import free_port, spawn, start_gateway, wait_for_200

ROOT = Path(__file__).resolve().parent.parent
BENCH_FILE = ROOT / "benchmarks" / "test_rewrite_bench.py"


def test_rewrite_benchmarks_run() -> None:
    pytest.importorskip("pytest_benchmark", reason="pytest-benchmark is not installed")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(BENCH_FILE.relative_to(ROOT)),
            "--benchmark-disable",
            "-q",
            "-p",
            "no:cacheprovider",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert " passed" in output and "failed" not in output and "error" not in output, output


@pytest.mark.upstream
@pytest.mark.slow
def test_front_doors_benchmark_runs() -> None:
    """A tiny, untimed pass of benchmarks/front_doors.py: it starts, checks, measures, stops."""
    env = {**os.environ, "DURATION": "0.3", "ROUNDS": "1", "HANDSHAKES": "3", "CONNS": "2"}
    result = subprocess.run(
        [sys.executable, "benchmarks/front_doors.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    table = result.stdout.split("front doors,", 1)[1]
    for door in ("direct", "tls", "proxy"):
        assert f"\n{door} " in table, result.stdout


# --- the load benchmark's harness: whole, self-contained, and working (no load is generated) ---

BENCH = ROOT / "benchmarks"
HARNESS = BENCH / "harness"
SCRIPTS = sorted(BENCH.rglob("*.sh"))


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_script_parses_and_is_executable(script: Path) -> None:
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert os.access(script, os.X_OK), f"chmod +x {script.relative_to(ROOT)}"


def test_every_file_the_scripts_name_is_in_benchmarks() -> None:
    """run.sh, setup.sh and the harness name their files through $HERE, $HARNESS and $BENCH:
    each must be there (a fresh clone has nothing beside the checkout)."""
    named: set[Path] = set()
    for script in SCRIPTS:
        text = script.read_text("utf-8")
        folder = {"HERE": script.parent, "HARNESS": HARNESS, "BENCH": script.parent}
        for variable, name in re.findall(r'"\$(HERE|HARNESS|BENCH)/([\w./-]+)"', text):
            named.add(folder[variable] / name)
    assert {p.name for p in named} >= {
        "setup.sh",
        "servers.sh",
        "measure.sh",
        "check_response.py",
        "make_fixtures.py",
        "yardstick.py",
        "wrk_report.lua",
        "report.py",
    }
    missing = sorted(str(p.relative_to(ROOT)) for p in named if not p.exists())
    assert missing == []
    for template in ("upstream", "peer"):
        assert (HARNESS / "nginx" / f"{template}.conf.tmpl").is_file()


def test_run_sh_help_and_an_unknown_mode() -> None:
    shown = subprocess.run([str(BENCH / "run.sh"), "--help"], capture_output=True, text=True)
    assert shown.returncode == 0 and "check" in shown.stdout and "setup.sh" in shown.stdout
    wrong = subprocess.run([str(BENCH / "run.sh"), "fast"], capture_output=True, text=True)
    assert wrong.returncode == 2
    assert wrong.stderr.strip().splitlines()[-1].startswith("benchmarks/run.sh: unknown mode")


def test_setup_says_it_needs_root_for_nginx_and_wrk(tmp_path: Path) -> None:
    """Run as a user without root and without wrk on PATH: one clear sentence and the command
    to run, exit 2, nothing installed."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("dirname", "realpath", "cat"):
        (bin_dir / tool).symlink_to(shutil.which(tool) or f"/usr/bin/{tool}")
    (bin_dir / "id").write_text("#!/bin/sh\necho 1000\n")
    (bin_dir / "id").chmod(0o755)
    env = {"PATH": str(bin_dir), "BENCH_STATE": str(tmp_path / "state")}
    result = subprocess.run(
        ["/bin/bash", str(BENCH / "setup.sh")], capture_output=True, text=True, env=env
    )
    assert result.returncode == 2
    assert "needs root" in result.stderr and "apt-get install" in result.stderr
    assert "wrk" in result.stderr
    assert not (tmp_path / "state").exists()


def test_the_fixtures_are_the_ones_the_figures_were_measured_on(tmp_path: Path) -> None:
    for out in ("a", "b"):
        subprocess.run(
            [sys.executable, str(HARNESS / "make_fixtures.py"), "--out", str(tmp_path / out)],
            check=True,
            capture_output=True,
        )
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*.json"))
    assert len(files) > 400
    for name in files:  # deterministic: byte for byte
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    manifest = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert manifest["bytes"]["list"] == 35014  # benchmarks/README's list page
    page = (tmp_path / "a" / "v1" / "InstalledAddOns.json").read_text()
    assert page.count('"https://marketplace.twilio.com/v1/') == 153


async def test_the_yardstick_and_the_gateway_pass_the_check(tmp_path: Path) -> None:
    """The harness's own check against its yardstick and against the gateway, both in front of
    the simulator (absolute v1 URLs as Marketplace writes them); and it fails a wrong base."""
    sim, yard, gw = free_port(), free_port(), free_port()
    v1 = "https://marketplace.twilio.com"
    processes = [
        spawn(None, "simulate", "--listen", f"127.0.0.1:{sim}", "--url-base", v1),
        subprocess.Popen(
            [sys.executable, str(HARNESS / "yardstick.py"), "--port", str(yard)]
            + ["--upstream", f"http://127.0.0.1:{sim}"],
            stderr=subprocess.DEVNULL,
        ),
        start_gateway(f"http://127.0.0.1:{sim}", gw),
    ]
    try:
        auth = {"Authorization": "Basic " + base64.b64encode(b"AC" + b"a" * 32 + b":t").decode()}
        await wait_for_200(
            f"http://127.0.0.1:{sim}/v1/AvailableAddOns", failure="sim", headers=auth
        )
        await wait_for_200(
            f"http://127.0.0.1:{yard}/marketplace/AvailableAddOns", failure="yard", headers=auth
        )
        await wait_for_200(f"http://127.0.0.1:{gw}/healthz", failure="gateway")
        for port in (yard, gw):
            for path in ("/marketplace/AvailableAddOns", "/marketplace/InstalledAddOns"):
                assert await check(f"http://127.0.0.1:{port}{path}") == "ok"
        wrong = await check(
            f"http://127.0.0.1:{gw}/marketplace/AvailableAddOns", "http://x.example"
        )
        assert (
            wrong.startswith("FAIL: ")
            and "does not start with 'http://x.example/marketplace/'" in wrong
        )
    finally:
        for process in processes:
            process.terminate()
            process.wait(20)


async def check(url: str, base: str | None = None) -> str:
    argv = [sys.executable, str(HARNESS / "check_response.py"), url]
    result = await asyncio.to_thread(
        subprocess.run,
        argv + (["--expect-base", base] if base else []),
        capture_output=True,
        text=True,
    )
    return result.stdout.strip()


def test_the_cpu_guard_and_the_host_probe(tmp_path: Path) -> None:
    guard = [sys.executable, str(HARNESS / "cpu_guard.py")]
    # a child of this process that spins for half a second, then waits to be counted
    spin = "import time\nt = time.time()\nwhile time.time() - t < 0.5: pass\ntime.sleep(30)"
    subprocess.run([*guard, "snap", str(tmp_path / "a")], check=True)
    busy = subprocess.Popen([sys.executable, "-c", spin])
    try:
        subprocess.run(["sleep", "0.8"], check=True)
        subprocess.run([*guard, "snap", str(tmp_path / "b")], check=True)
    finally:
        busy.kill()
        busy.wait(10)
    line = subprocess.run(
        [*guard, "report", str(tmp_path / "a"), str(tmp_path / "b"), "1.0", f"sut={os.getpid()}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    fields = dict(part.split("=", 1) for part in line)
    assert set(fields) == {"sut_cpu", "foreign_cpu", "foreign_top"}
    assert float(fields["sut_cpu"]) >= 20  # the busy child of this process, half a second
    probe = subprocess.run(
        [sys.executable, str(HARNESS / "calib.py")], check=True, capture_output=True, text=True
    )
    assert float(probe.stdout) > 0
