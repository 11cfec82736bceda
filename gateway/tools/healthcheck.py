"""``gateway healthcheck``: is the gateway that this configuration describes answering?

It reads the configuration as ``gateway serve`` does (flags, then ``GATEWAY_*`` variables, then
the file of ``--config``/``GATEWAY_CONFIG``) and asks ``/healthz`` on the main listener, over
HTTPS when ``--tls-cert`` makes it HTTPS, and on ``--tls-listen`` too when it is set. Exit 0
when every listener answered 200, else 1 with one line saying which did not: a container's
``HEALTHCHECK`` runs it, and Docker reserves every other status. It needs no curl in the image.

``--pid N`` takes the flags of the ``gateway serve`` that runs as process N (its
``/proc/N/cmdline``), in its working folder: the image's ``HEALTHCHECK`` uses ``--pid 1``, so it
follows ``docker run IMAGE serve --listen ...`` as well as the variables and the file.

The listener is asked on loopback when it listens on every address (``0.0.0.0``, ``::``). Its
certificate is not verified: it names the host that apps dial (``preview.twilio.com``), not
the loopback address asked here, and this checks that the process answers, not who it is.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import os
import ssl
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from gateway.config.options import add_arguments
from gateway.config.settings import ConfigError, GatewayConfig, load_config

EXIT_HEALTHY = 0
EXIT_UNHEALTHY = 1  # also for a configuration that cannot be read: Docker reserves 2
DEFAULT_TIMEOUT = 2.0
# The options that say where and how the listeners listen; the rest still come from the
# environment and the file (and are checked: a config `serve` would refuse is unhealthy).
LISTENER_OPTIONS = ("listen", "tls_cert", "tls_key", "tls_listen")
_EVERY_ADDRESS = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}


class HealthError(Exception):
    """Why the gateway is not healthy (or cannot be asked); one line."""


def add_arguments_to(parser: argparse.ArgumentParser) -> None:
    """Add ``gateway healthcheck``'s arguments to ``parser``."""
    parser.add_argument(
        "--pid",
        type=int,
        default=None,
        metavar="N",
        help="read the flags of the `gateway serve` running as process N, in its folder "
        "(the image's HEALTHCHECK: --pid 1)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="SECONDS",
        help=f"for each listener's answer (default {DEFAULT_TIMEOUT:g})",
    )
    add_arguments(parser, only=LISTENER_OPTIONS)


def serve_flags(cmdline: bytes) -> list[str] | None:
    """The arguments after ``serve`` in a ``gateway serve`` command line (NUL-separated, as in
    ``/proc/N/cmdline``): ``gateway serve ...``, ``python -m gateway serve ...`` or a Python
    running the ``gateway`` script; None for any other command."""
    words = [word.decode("utf-8", "surrogateescape") for word in cmdline.split(b"\0") if word]
    for index, word in enumerate(words[:-1]):
        named = Path(word).name == "gateway" or (word == "gateway" and words[index - 1] == "-m")
        if named and words[index + 1] == "serve":
            return words[index + 2 :]
    return None


def _flags_of(pid: int) -> tuple[dict[str, object], Path | None]:
    """The listener flags of process ``pid``'s ``gateway serve``, and its working folder."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError as exc:
        raise HealthError(f"process {pid}: {exc.strerror or exc}") from exc
    argv = serve_flags(cmdline)
    if argv is None:
        raise HealthError(f"process {pid} is not a `gateway serve`")
    parser = argparse.ArgumentParser(add_help=False)
    add_arguments(parser)
    known, _ = parser.parse_known_args(argv)
    folder: Path | None = None
    with contextlib.suppress(OSError):  # its relative paths are relative to its folder
        folder = Path(os.readlink(f"/proc/{pid}/cwd"))
    return vars(known), folder


def _config(args: argparse.Namespace, environ: Mapping[str, str]) -> GatewayConfig:
    flags: dict[str, object] = vars(args)
    if args.pid is None:
        return load_config(flags, environ)
    served, folder = _flags_of(args.pid)
    merged = {**served, **{k: v for k, v in flags.items() if v is not None}}
    here = os.getcwd()
    try:
        if folder is not None:
            os.chdir(folder)
        return load_config(merged, environ)
    finally:
        os.chdir(here)


def targets(config: GatewayConfig) -> list[tuple[str, str, int]]:
    """``(scheme, host, port)`` of every listener to ask: the main one, and the HTTPS one of
    ``tls_listen``; an every-address listener is asked on loopback."""
    main = ("https" if config.main_is_tls else "http", *config.listen)
    found = [main] + ([("https", *config.tls_listen)] if config.tls_listen is not None else [])
    return [(scheme, _EVERY_ADDRESS.get(host, host), port) for scheme, host, port in found]


def ask(scheme: str, host: str, port: int, timeout: float) -> None:
    """``GET /healthz``; raises :class:`HealthError` unless it answers 200."""
    where = f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}/healthz"
    connection: http.client.HTTPConnection
    if scheme == "https":
        context = ssl.create_default_context()
        context.check_hostname = False  # see the module's docstring
        context.verify_mode = ssl.CERT_NONE
        connection = http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    else:
        connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", "/healthz", headers={"User-Agent": "gateway-healthcheck"})
        response = connection.getresponse()
        response.read(4096)
    except (OSError, http.client.HTTPException) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise HealthError(f"{where}: {reason or type(exc).__name__}") from exc
    finally:
        connection.close()
    if response.status != 200:
        raise HealthError(f"{where}: HTTP {response.status}")


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Run ``gateway healthcheck``: 0 when every listener answers, else 1 (one line why)."""
    try:
        config = _config(args, environ)
        checked = targets(config)
        for scheme, host, port in checked:
            ask(scheme, host, port, args.timeout)
    except (ConfigError, HealthError) as exc:
        print(f"gateway healthcheck: unhealthy: {exc}", file=sys.stderr)
        return EXIT_UNHEALTHY
    shown: Sequence[str] = [f"{scheme}://{host}:{port}" for scheme, host, port in checked]
    print(f"gateway healthcheck: ok ({', '.join(shown)})")
    return EXIT_HEALTHY
