"""gateway.serving.descriptors: the open-file limit is raised to what the caps may need, as far
as the hard limit allows, and a limit that stays short is named in one warning. Each case runs
in a fresh interpreter whose limits it sets itself."""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path

from gateway.serving.admission import MAX_LINGERING
from gateway.serving.descriptors import SPARE, needed
from tests.conftest import make_config
from tests.processes import free_port


def test_what_the_caps_need() -> None:
    plain = make_config(max_client_connections=1000, pool_size=100)
    assert needed(plain) == 1000 + MAX_LINGERING + SPARE + 100
    unlimited_pool = make_config(max_client_connections=1000, pool_size=0)
    assert needed(unlimited_pool) == 2000 + MAX_LINGERING + SPARE
    every_listener = make_config(
        max_client_connections=1000,
        pool_size=100,
        metrics_listen=("127.0.0.1", 9100),
        max_metrics_connections=64,
        proxy_listen=("127.0.0.1", 8443),
        proxy_max_tunnels=256,
        tls_listen=("127.0.0.1", 8443),
    )
    assert needed(every_listener) == needed(plain) + 64 + MAX_LINGERING + 2 * 256 + 1000


def limits_after(soft: int, hard: int, count: int) -> tuple[int, int, str]:
    code = (
        "import logging, resource, sys\n"
        "logging.basicConfig(stream=sys.stdout, format='%(levelname)s %(message)s')\n"
        f"resource.setrlimit(resource.RLIMIT_NOFILE, ({soft}, {hard}))\n"
        "from gateway.serving.descriptors import make_room\n"
        f"print(make_room({count}), resource.getrlimit(resource.RLIMIT_NOFILE)[0])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    *warnings, last = out.strip().splitlines()
    in_force, soft_now = (int(x) for x in last.split())
    return in_force, soft_now, "\n".join(warnings)


def test_the_soft_limit_is_raised_to_what_is_needed_and_no_further() -> None:
    assert limits_after(1024, 4096, 2000) == (2000, 2000, "")
    assert limits_after(3000, 4096, 2000) == (3000, 3000, "")  # never lowered


def test_a_hard_limit_too_low_is_used_whole_and_named_in_a_warning() -> None:
    in_force, soft_now, warnings = limits_after(256, 512, 2000)
    assert (in_force, soft_now) == (512, 512)
    assert warnings.startswith("WARNING the open-file limit (ulimit -n) is 512, under the 2000")
    assert "max_client_connections" in warnings


def test_gateway_serve_raises_its_limit_at_start(tmp_path: Path) -> None:
    log = tmp_path / "gateway.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "gateway", "serve", "--listen", f"127.0.0.1:{free_port()}"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, 4096)),
        )
    try:
        deadline = time.monotonic() + 15
        while "listening on" not in log.read_text():
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        soft, hard = resource.prlimit(process.pid, resource.RLIMIT_NOFILE)
    finally:
        process.terminate()
        process.wait(15)
    assert (soft, hard) == (needed(make_config()), 4096)
    assert "ulimit" not in log.read_text()  # room enough: no warning
