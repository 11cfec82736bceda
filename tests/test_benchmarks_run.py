"""The microbenchmark suite in benchmarks/ still runs (once per benchmark, without timing)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

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
