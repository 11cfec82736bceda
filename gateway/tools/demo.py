"""``gateway simulate`` and ``gateway demo``: the simulator alone, or simulator + gateway.

Kept apart from :mod:`gateway.cli` because it is the one place, besides tests, that wires the
simulator subpackage to the gateway core.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from gateway.access_log import configure_logging
from gateway.config import load_config
from gateway.options import parse_listen
from gateway.tools.walkthrough import DEMO_ACCOUNT, DEMO_TOKEN, run_walkthrough
from gateway.upstreams import NAMES as UPSTREAM_NAMES


def add_simulate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--listen", default="127.0.0.1:8081", metavar="HOST:PORT", help="default 127.0.0.1:8081"
    )
    parser.add_argument(
        "--seed", metavar="FILE", default=None, help="seed JSON replacing the built-in data"
    )
    parser.add_argument(
        "--url-base",
        metavar="URL",
        default=None,
        help="origin written into absolute URLs, e.g. https://marketplace.twilio.com "
        "(default: the request's own scheme and Host)",
    )


def add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--listen",
        default="127.0.0.1:8080",
        metavar="HOST:PORT",
        help="gateway address (default 127.0.0.1:8080; port 0 picks a free one)",
    )
    parser.add_argument(
        "--simulator-listen",
        default="127.0.0.1:8081",
        metavar="HOST:PORT",
        help="simulator address (default 127.0.0.1:8081; port 0 picks a free one)",
    )
    parser.add_argument(
        "--seed", metavar="FILE", default=None, help="seed JSON replacing the built-in data"
    )
    parser.add_argument(
        "--walkthrough",
        action="store_true",
        help="run a scripted legacy-client session, print each call and response, then exit",
    )


def _simulator_app(seed_path: str | None, url_base: str | None) -> tuple[web.Application, str]:
    """The simulator app and the SID of the first add-on in its catalogue."""
    from gateway.simulator import create_simulator_app, load_seed

    seed = load_seed(seed_path)
    return create_simulator_app(seed, url_base=url_base), seed.available_add_ons[0].sid


async def _start(
    app: web.Application, host: str, port: int, runner_class: type[web.AppRunner] = web.AppRunner
) -> tuple[web.AppRunner, int]:
    runner = runner_class(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    # the bound port matters when port 0 was asked for
    return runner, int(runner.addresses[0][1])


async def _wait_for_stop() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    await stop.wait()


async def _simulate(args: argparse.Namespace) -> int:
    host, port = parse_listen(args.listen)
    app, _ = _simulator_app(args.seed, args.url_base)
    runner, bound = await _start(app, host, port)
    print(f"Marketplace v1 simulator on http://{host}:{bound} (Ctrl-C to stop)", flush=True)
    try:
        await _wait_for_stop()
    finally:
        await runner.cleanup()
    return 0


def _examples(gateway_url: str, simulator_url: str, add_on_sid: str) -> str:
    auth = f"{DEMO_ACCOUNT}:{DEMO_TOKEN}"
    return f"""
Simulator (Marketplace v1): {simulator_url}
Gateway (legacy base URL):  {gateway_url}

Try the deprecated Preview API through the gateway:
  curl -u {auth} '{gateway_url}/marketplace/AvailableAddOns?PageSize=2'
  curl -u {auth} '{gateway_url}/marketplace/InstalledAddOns'
  curl -i -u {auth} '{gateway_url}/marketplace/AvailableAddOns/{add_on_sid}'
  curl -u {auth} '{gateway_url}/metrics'

With the official twilio client (pip install twilio):
  from twilio.rest import Client
  client = Client("{DEMO_ACCOUNT}", "{DEMO_TOKEN}")
  client.preview.base_url = "{gateway_url}"
  for add_on in client.preview.marketplace.available_add_ons.list(page_size=2):
      print(add_on.sid, add_on.friendly_name)

Any password works for an AC... username. Ctrl-C stops both servers.
"""


async def _demo(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    sim_host, sim_port = parse_listen(args.simulator_listen)
    gw_host, gw_port = parse_listen(args.listen)
    if args.walkthrough:
        sim_port = gw_port = 0
    sim_app, add_on_sid = _simulator_app(args.seed, None)
    sim_runner, sim_bound = await _start(sim_app, sim_host, sim_port)
    simulator_url = f"http://{sim_host}:{sim_bound}"
    # Every upstream of the table at the simulator; everything else as configured.
    flags = {f"{name}_upstream": simulator_url for name in UPSTREAM_NAMES}
    config = load_config({**flags, "listen": f"{gw_host}:{gw_port}"}, environ)
    # Imported here to keep the metric declarations out of the other verbs.
    from gateway.app import create_app
    from gateway.server import GatewayRunner

    gw_runner, gw_bound = await _start(create_app(config), gw_host, gw_port, GatewayRunner)
    gateway_url = f"http://{gw_host}:{gw_bound}"
    try:
        if args.walkthrough:
            return await run_walkthrough(gateway_url)
        print(_examples(gateway_url, simulator_url, add_on_sid), flush=True)
        configure_logging(config.log_level)  # the access log shows each call as it passes
        await _wait_for_stop()
        return 0
    finally:
        await gw_runner.cleanup()
        await sim_runner.cleanup()


def run_verb(args: Any, environ: Mapping[str, str]) -> int:
    """Run ``simulate`` or ``demo`` to completion."""
    if args.verb == "simulate":
        return asyncio.run(_simulate(args))
    return asyncio.run(_demo(args, environ))
