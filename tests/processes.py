"""Helpers for tests that run ``gateway serve`` / ``gateway simulate`` (or a snippet of Python)
as real processes."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.paths import ROOT


def runs_uvloop(pid: int) -> bool:
    """Whether process ``pid`` has uvloop's extension mapped (it imported uvloop)."""
    return "uvloop" in Path(f"/proc/{pid}/maps").read_text()


def rss(pid: int) -> int:
    """Resident set size of ``pid`` in bytes (VmRSS; psutil is not a dependency)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def open_fds(pid: int) -> int:
    """How many file descriptors ``pid`` has open."""
    return len(os.listdir(f"/proc/{pid}/fd"))


def run_gateway(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """``python -m gateway ARGS`` to its end, its output captured as text (any exit status)."""
    return subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def gateway_output(*args: str) -> str:
    """What ``python -m gateway ARGS`` prints; it must exit 0."""
    result = run_gateway(*args)
    assert result.returncode == 0, result.stderr
    return result.stdout


def python_output(code: str) -> str:
    """What ``python -c code`` prints in a fresh interpreter (which must exit 0): for checks
    of what importing a module does, or of process-wide state."""
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return result.stdout


async def run_to_end(
    argv: list[str], *, cwd: Path, env: dict[str, str], timeout: float
) -> tuple[int, str, str]:
    """Run ``argv`` with no stdin; its exit status, stdout and stderr. Killed (and the
    ``TimeoutError`` raised on) when it outlives ``timeout`` seconds."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def require_binary(name: str, hint: str) -> str:
    """The path of ``name`` on PATH; the test fails (never skips) when it is missing."""
    binary = shutil.which(name)
    if binary is None:
        pytest.fail(
            f"no `{name}` on PATH: {hint}"
            + (" [CI=true: this test is never skipped in CI]" if os.environ.get("CI") else "")
        )
    return binary


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_for_200(
    url: str,
    *,
    failure: str,
    seconds: float = 15,
    headers: dict[str, str] | None = None,
    process: subprocess.Popen[bytes] | None = None,
    ssl: bool = True,
) -> None:
    """Poll ``url`` until it answers 200; fail with ``failure`` when time runs out, or at once
    if ``process`` (the server behind it) exits. ``ssl=False``: an https URL's certificate is
    not verified (a probe that only waits for the server)."""
    deadline = asyncio.get_running_loop().time() + seconds
    async with aiohttp.ClientSession() as session:
        while asyncio.get_running_loop().time() < deadline:
            assert process is None or process.poll() is None, "the server exited early"
            try:
                async with session.get(url, headers=headers, ssl=ssl) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(failure)


async def wait_ready(url: str, process: subprocess.Popen[bytes], seconds: float = 15) -> None:
    """Poll ``url``/readyz until it answers 200; fail if the process exits or time runs out."""
    await wait_for_200(
        f"{url}/readyz", failure="gateway did not become ready", seconds=seconds, process=process
    )


# ``python -m gateway`` as an install without uvloop runs it: the import of uvloop fails, so
# ``serve`` falls back to asyncio's loop (gateway.lifecycle._loop_factory).
WITHOUT_UVLOOP = (
    "import sys; sys.modules['uvloop'] = None; "
    "from gateway.cli import main; raise SystemExit(main())"
)
LOOPS = ("uvloop", "asyncio")  # what ``serve`` runs on with and without uvloop installed


def spawn(
    log: Path | None,
    *argv: str,
    env: dict[str, str] | None = None,
    loop: str = "uvloop",
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """``python -m gateway ARGV`` (in ``cwd``, default this one); output to ``log`` (a file,
    never a pipe nobody drains). ``loop="asyncio"``: as if uvloop were not installed."""
    assert loop in LOOPS, loop
    entry = ["-m", "gateway"] if loop == "uvloop" else ["-c", WITHOUT_UVLOOP]
    command = [sys.executable, *entry, *argv]
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    if log is None:
        return subprocess.Popen(command, env=environment, cwd=cwd)
    with log.open("wb") as sink:
        return subprocess.Popen(
            command, stdout=sink, stderr=subprocess.STDOUT, env=environment, cwd=cwd
        )


def start_gateway(
    upstream: str,
    port: int,
    *extra: str,
    env: dict[str, str] | None = None,
    log: Path | None = None,
    loop: str = "uvloop",
) -> subprocess.Popen[bytes]:
    """``gateway serve`` on 127.0.0.1:``port`` with both upstreams at ``upstream``, on ``loop``
    (one of :data:`LOOPS`)."""
    return spawn(
        log,
        "serve",
        "--listen",
        f"127.0.0.1:{port}",
        "--marketplace-upstream",
        upstream,
        "--api-upstream",
        upstream,
        "--access-log",
        "false",
        *extra,
        env=env,
        loop=loop,
    )
