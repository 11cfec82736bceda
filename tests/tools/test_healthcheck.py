"""``gateway healthcheck``: the configured listeners' /healthz, over HTTP or HTTPS, from flags,
variables, a config file, or the flags of a running ``gateway serve`` (``--pid``); exit 0 or 1."""

from __future__ import annotations

import asyncio
import signal
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from gateway.config.settings import load_config
from gateway.tools.healthcheck import serve_flags, targets
from tests.processes import free_port, gateway_output, run_gateway, spawn, wait_for_200

PREVIEW = "preview.twilio.com"


@pytest.mark.parametrize(
    "cmdline",
    [
        b"/usr/local/bin/python\0/usr/local/bin/gateway\0serve\0--listen\0:9\0",
        b"gateway\0serve\0--listen\0:9\0",
        b"/venv/bin/python3\0-m\0gateway\0serve\0--listen\0:9\0",
    ],
)
def test_the_flags_of_a_gateway_serve_command_line(cmdline: bytes) -> None:
    assert serve_flags(cmdline) == ["--listen", ":9"]


@pytest.mark.parametrize(
    "cmdline", [b"/usr/local/bin/gateway\0simulate\0", b"python\0serve.py\0", b"nginx\0", b""]
)
def test_other_commands_have_no_serve_flags(cmdline: bytes) -> None:
    assert serve_flags(cmdline) is None


def test_targets_follow_the_listeners(tmp_path: Path) -> None:
    (tmp_path / "c.pem").write_text("x")
    (tmp_path / "k.pem").write_text("x")
    tls = {"tls_cert": str(tmp_path / "c.pem"), "tls_key": str(tmp_path / "k.pem")}
    assert targets(load_config({"listen": "0.0.0.0:8080"}, {})) == [("http", "127.0.0.1", 8080)]
    assert targets(load_config({"listen": "[::]:81"}, {})) == [("http", "::1", 81)]
    assert targets(load_config({"listen": "10.1.2.3:82", **tls}, {})) == [("https", "10.1.2.3", 82)]
    both = load_config({"listen": "0.0.0.0:8080", "tls_listen": "0.0.0.0:8443", **tls}, {})
    assert targets(both) == [("http", "127.0.0.1", 8080), ("https", "127.0.0.1", 8443)]


# --- real processes ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("tls")
    gateway_output("tls", "init", str(folder))
    gateway_output("tls", "issue", str(folder))
    return folder


Serve = Callable[..., Awaitable[subprocess.Popen[bytes]]]


@pytest.fixture
async def serve(tmp_path: Path) -> AsyncIterator[Serve]:
    """``await serve(probe_url, *argv, cwd=..., env=...)``: ``gateway serve ARGV``, once its
    ``probe_url`` answers 200 (curl-less: aiohttp, TLS unverified for the probe only)."""
    started: list[subprocess.Popen[bytes]] = []

    async def start(
        probe: str, *argv: str, cwd: Path | None = None, env: dict[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        process = spawn(tmp_path / f"serve{len(started)}.log", "serve", *argv, env=env, cwd=cwd)
        started.append(process)
        await wait_for_200(probe, failure="gateway did not start", process=process, ssl=False)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            await asyncio.to_thread(process.wait, 20)


def healthcheck(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = run_gateway("healthcheck", *argv, env=env, timeout=30)
    assert result.returncode in (0, 1), result.stderr
    return result.returncode, (result.stdout + result.stderr).strip()


async def test_plain_http_from_flags_variables_or_a_file(serve: Serve, tmp_path: Path) -> None:
    port = free_port()
    process = await serve(f"http://127.0.0.1:{port}/healthz", "--listen", f"127.0.0.1:{port}")
    assert await asyncio.to_thread(healthcheck, "--listen", f"127.0.0.1:{port}") == (
        0,
        f"gateway healthcheck: ok (http://127.0.0.1:{port})",
    )
    env = {"PATH": "/usr/bin:/bin", "GATEWAY_LISTEN": f"127.0.0.1:{port}"}
    assert (await asyncio.to_thread(healthcheck, env=env))[0] == 0
    config = tmp_path / "gateway.toml"
    config.write_text(f'[gateway]\nlisten = "127.0.0.1:{port}"\n')
    assert (await asyncio.to_thread(healthcheck, "--config", str(config)))[0] == 0
    process.send_signal(signal.SIGTERM)
    await asyncio.to_thread(process.wait, 20)
    status, line = await asyncio.to_thread(healthcheck, "--listen", f"127.0.0.1:{port}")
    assert (status, line) == (
        1,
        f"gateway healthcheck: unhealthy: http://127.0.0.1:{port}/healthz: Connection refused",
    )


async def test_https_main_listener_and_tls_listen(serve: Serve, certificates: Path) -> None:
    tls = ["--tls-cert", str(certificates / f"{PREVIEW}.pem")]
    tls += ["--tls-key", str(certificates / f"{PREVIEW}-key.pem")]
    port = free_port()
    await serve(f"https://127.0.0.1:{port}/healthz", "--listen", f"127.0.0.1:{port}", *tls)
    status, line = await asyncio.to_thread(healthcheck, "--listen", f"127.0.0.1:{port}", *tls)
    assert (status, line) == (0, f"gateway healthcheck: ok (https://127.0.0.1:{port})")
    # Asked in plain HTTP, the HTTPS listener is not healthy: the scheme follows --tls-cert.
    assert (await asyncio.to_thread(healthcheck, "--listen", f"127.0.0.1:{port}"))[0] == 1
    plain, secure = free_port(), free_port()
    listeners = ["--listen", f"127.0.0.1:{plain}", "--tls-listen", f"127.0.0.1:{secure}"]
    await serve(f"http://127.0.0.1:{plain}/healthz", *listeners, *tls)
    assert await asyncio.to_thread(healthcheck, *listeners, *tls) == (
        0,
        f"gateway healthcheck: ok (http://127.0.0.1:{plain}, https://127.0.0.1:{secure})",
    )


async def test_pid_reads_the_flags_of_the_running_serve_in_its_folder(
    serve: Serve, certificates: Path, tmp_path: Path
) -> None:
    """As the image's HEALTHCHECK does with PID 1: nothing but --pid on the command line, the
    server started with its own flags (relative paths, from its own folder)."""
    folder = tmp_path / "app"
    folder.mkdir()
    for name in (f"{PREVIEW}.pem", f"{PREVIEW}-key.pem"):
        (folder / name).write_bytes((certificates / name).read_bytes())
    port = free_port()
    process = await serve(
        f"https://127.0.0.1:{port}/healthz",
        "--listen", f"127.0.0.1:{port}",
        "--tls-cert", f"{PREVIEW}.pem", "--tls-key", f"{PREVIEW}-key.pem",
        cwd=folder,
    )  # fmt: skip
    status, line = await asyncio.to_thread(healthcheck, "--pid", str(process.pid))
    assert (status, line) == (0, f"gateway healthcheck: ok (https://127.0.0.1:{port})")
    process.send_signal(signal.SIGTERM)
    await asyncio.to_thread(process.wait, 20)
    status, line = await asyncio.to_thread(healthcheck, "--pid", str(process.pid))
    assert status == 1 and line.startswith("gateway healthcheck: unhealthy: process ")


def test_a_config_serve_would_refuse_is_unhealthy_not_a_traceback() -> None:
    status, line = healthcheck("--listen", "nowhere")
    assert (status, line) == (
        1,
        "gateway healthcheck: unhealthy: flag --listen: expected HOST:PORT, got 'nowhere'",
    )
