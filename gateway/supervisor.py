"""``--workers N``: N processes of the same ``serve`` command sharing one port.

This process becomes a small supervisor: it makes an empty directory for prometheus-client's
multiprocess mode, starts N copies of the same command, marked as workers by
``GATEWAY_WORKER_INDEX``, that bind the port with ``SO_REUSEPORT`` (the kernel spreads
connections over them), restarts a worker that dies, passes SIGHUP to every worker (each
reloads its config and rules; none exits, so none is restarted), and on SIGTERM/SIGINT passes
the signal on and waits for the workers' in-flight requests. It never imports the gateway's
metric declarations, so it writes no metric files of its own.

A worker reads the same config as the supervisor, ``workers`` included, so a reload in a worker
sees a changed worker count and reports it as needing a restart.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from gateway.config.settings import GatewayConfig
from gateway.migration.consumers import LEDGER_NAME
from gateway.serving.listen import address, check_bindable

log = logging.getLogger("gateway")

WORKER_ENV = "GATEWAY_WORKER_INDEX"  # set by the supervisor for its workers; not for users
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
GRACE_SECONDS = 10.0
EXIT_USAGE = 2


def _spawn(argv: Sequence[str], index: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start worker ``index``; call it with SIGHUP held (:func:`_hangup_held`): the worker
    inherits SIGHUP blocked (a signal mask survives fork and exec) and unblocks it once its
    handler is in place, so a SIGHUP passed on while it starts is held, not fatal."""
    worker_env = {**env, WORKER_ENV: str(index)}
    command = [sys.executable, "-m", "gateway", *argv]
    return subprocess.Popen(command, env=worker_env)


@contextlib.contextmanager
def _hangup_held() -> Iterator[None]:
    """Hold SIGHUP (it waits, it is not lost) while workers are started and registered, so
    the handler passes it to every worker, the new ones included."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGHUP})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})


def supervise(config: GatewayConfig, argv: Sequence[str]) -> int:
    """Run ``config.workers`` worker processes of the same ``serve`` command.

    Raises :class:`~gateway.serving.listen.ListenError` before starting any worker when the address
    cannot be bound; a worker that exits 2 (a usage error, e.g. the port was taken meanwhile)
    stops them all with status 2 instead of being restarted.
    """
    from prometheus_client import multiprocess

    check_bindable(config.listen_host, config.listen_port)
    for other in (config.tls_listen, config.metrics_listen):
        if other is not None:
            check_bindable(*other)
    given = os.environ.get(MULTIPROC_ENV)
    directory = Path(given) if given else Path(tempfile.mkdtemp(prefix="gateway-metrics-"))
    if given:
        directory.mkdir(parents=True, exist_ok=True)
        for stale in [*directory.glob("*.db"), directory / LEDGER_NAME]:
            stale.unlink(missing_ok=True)
    env = {**os.environ, MULTIPROC_ENV: str(directory)}
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    workers: dict[int, subprocess.Popen[bytes]] = {}

    def on_hangup(signum: int, _frame: object) -> None:
        alive = [process for process in workers.values() if process.poll() is None]
        log.info("SIGHUP: passing it to %d workers to reload", len(alive))
        for process in alive:
            process.send_signal(signal.SIGHUP)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_hangup)
    with _hangup_held():  # held since cli.serve; let through once every worker is registered
        for index in range(config.workers):
            workers[index] = _spawn(argv, index, env)
    scheme = "https" if config.main_is_tls else "http"
    also = f", https://{address(*config.tls_listen)}" if config.tls_listen is not None else ""
    print(
        f"gateway supervisor: {config.workers} workers on "
        f"{scheme}://{address(config.listen_host, config.listen_port)}{also}",
        flush=True,
    )
    restarts: list[float] = []
    usage_error = False
    try:
        while not stopping:
            time.sleep(0.2)
            for index, process in list(workers.items()):
                if process.poll() is None or stopping:
                    continue
                if process.returncode == EXIT_USAGE:  # it said why; restarting cannot help
                    usage_error = stopping = True
                    break
                multiprocess.mark_process_dead(process.pid, str(directory))  # type: ignore[no-untyped-call]
                now = time.monotonic()
                restarts = [t for t in restarts if now - t < 60] + [now]
                if len(restarts) > 5 * config.workers:
                    log.error("workers keep dying; giving up")
                    stopping = True
                    break
                log.warning("worker %d exited with %s; restarting", index, process.returncode)
                with _hangup_held():
                    workers[index] = _spawn(argv, index, env)
    finally:
        for process in workers.values():
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + GRACE_SECONDS + 5
        for process in workers.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            if process.poll() is None:
                process.kill()
        if not given:
            shutil.rmtree(directory, ignore_errors=True)
    if usage_error:
        return EXIT_USAGE
    failed = [p.returncode for p in workers.values() if p.returncode not in (0, -signal.SIGTERM)]
    return 1 if failed else 0
