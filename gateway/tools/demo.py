"""``gateway simulate`` and ``gateway demo``: the simulator alone, or simulator + gateway.

Kept apart from :mod:`gateway.cli` because it is the one place, besides tests, that wires the
simulator subpackage to the gateway core.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web

from gateway.config.parsers import parse_http_url, parse_listen
from gateway.config.settings import ConfigError, GatewayConfig, load_config
from gateway.config.upstreams import NAMES as UPSTREAM_NAMES
from gateway.frontdoor.names import CA_DAYS
from gateway.serving.listen import address, listen_error
from gateway.telemetry.access_log import configure_logging
from gateway.tools.demo_consumers import banner, demo_policy, make_calls, with_demo_policy
from gateway.tools.tls import write_ca
from gateway.tools.walkthrough import DEMO_ACCOUNT, DEMO_TOKEN, run_walkthrough

if TYPE_CHECKING:  # the listener declares metrics; only the running demo imports it
    from gateway.frontdoor.listener import ProxyFrontDoor


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
        default=None,
        metavar="HOST:PORT",
        help="gateway address (default 127.0.0.1:8080, or a free port with --walkthrough; "
        "port 0 picks a free one)",
    )
    parser.add_argument(
        "--simulator-listen",
        default=None,
        metavar="HOST:PORT",
        help="simulator address (default 127.0.0.1:8081, or a free port with --walkthrough; "
        "port 0 picks a free one)",
    )
    parser.add_argument(
        "--proxy-listen",
        default="127.0.0.1:8082",
        metavar="HOST:PORT",
        help="the proxy front door, for clients that cannot change their base URL "
        "(default 127.0.0.1:8082; port 0 picks a free one)",
    )
    parser.add_argument(
        "--seed", metavar="FILE", default=None, help="seed JSON replacing the built-in data"
    )
    parser.add_argument(
        "--walkthrough",
        action="store_true",
        help="run a scripted legacy-client session, print each call and response, then exit",
    )


def _listen(flag: str, text: str) -> tuple[str, int]:
    try:
        return parse_listen(text)
    except ValueError as exc:
        raise ConfigError(f"flag {flag}: {exc}") from None


def _simulator_app(seed_path: str | None, url_base: str | None) -> tuple[web.Application, str]:
    """The simulator app and the SID of the first add-on in its catalogue."""
    from gateway.simulator import create_simulator_app, load_seed

    try:
        seed = load_seed(seed_path)  # a missing or invalid file says so in one sentence
    except ValueError as exc:
        raise ConfigError(f"flag --seed: {exc}") from None
    if url_base is not None:
        try:
            url_base = parse_http_url(url_base)
        except ValueError as exc:
            raise ConfigError(f"flag --url-base: {exc}") from None
    return create_simulator_app(seed, url_base=url_base), seed.available_add_ons[0].sid


async def _start(
    stack: contextlib.AsyncExitStack,
    app: web.Application,
    host: str,
    port: int,
    runner_class: type[web.AppRunner] = web.AppRunner,
) -> int:
    """Serve ``app`` on ``host:port`` until ``stack`` closes; the port really bound."""
    # Here, not at the top: cli builds its parser from this module for every command, and the
    # --workers supervisor must load no metric declarations (the site's counters).
    from gateway.serving.site import start_site

    runner = runner_class(app, access_log=None)
    await runner.setup()
    stack.push_async_callback(runner.cleanup)
    return await start_site(runner, host, port)  # ListenError names the address


async def _wait_for_stop() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    await stop.wait()


async def _simulate(args: argparse.Namespace) -> int:
    host, port = _listen("--listen", args.listen)
    app, _ = _simulator_app(args.seed, args.url_base)
    async with contextlib.AsyncExitStack() as stack:
        bound = await _start(stack, app, host, port)
        print(
            f"Marketplace v1 simulator on http://{address(host, bound)} (Ctrl-C to stop)",
            flush=True,
        )
        await _wait_for_stop()
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


PYTHON_SNIPPET = (
    "from twilio.rest import Client; "
    "print([a.sid for a in Client().preview.marketplace.available_add_ons.list(limit=3)])"
)


def _proxy_examples(proxy_url: str, ca: Path) -> str:
    auth = f"{DEMO_ACCOUNT}:{DEMO_TOKEN}"
    return f"""
Proxy front door (for apps that cannot change their base URL): {proxy_url}
It intercepts https://preview.twilio.com with a throwaway CA ({ca}, deleted at exit)
and tunnels nothing else. Paste into a shell, then run the app unmodified:
  export HTTPS_PROXY={proxy_url} HTTP_PROXY={proxy_url}
  export REQUESTS_CA_BUNDLE={ca} NODE_EXTRA_CA_CERTS={ca}
  export TWILIO_ACCOUNT_SID={DEMO_ACCOUNT} TWILIO_AUTH_TOKEN={DEMO_TOKEN}
  curl -x {proxy_url} --cacert {ca} -u {auth} 'https://preview.twilio.com/marketplace/AvailableAddOns?PageSize=2'
  python3 -c '{PYTHON_SNIPPET}'
  twilio api:preview:marketplace:available-add-ons:list   (twilio-cli)
"""


async def _demo(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    # --walkthrough runs and exits: free ports unless an address is given.
    free = "127.0.0.1:0"
    sim_default = free if args.walkthrough else "127.0.0.1:8081"
    gw_default = free if args.walkthrough else "127.0.0.1:8080"
    sim_host, sim_port = _listen("--simulator-listen", args.simulator_listen or sim_default)
    gw_host, gw_port = _listen("--listen", args.listen or gw_default)
    sim_app, add_on_sid = _simulator_app(args.seed, None)
    # Imported here to keep the metric declarations out of the other verbs.
    from gateway.app import create_app
    from gateway.serving.server import GatewayRunner
    from gateway.serving.site import start_site

    ca_dir = Path(tempfile.mkdtemp(prefix="gateway-demo-ca-"))
    try:
        async with contextlib.AsyncExitStack() as stack:
            sim_bound = await _start(stack, sim_app, sim_host, sim_port)
            simulator_url = f"http://{address(sim_host, sim_bound)}"
            # Every upstream of the table at the simulator; everything else as configured.
            flags = {f"{name}_upstream": simulator_url for name in UPSTREAM_NAMES}
            config = load_config({**flags, "listen": address(gw_host, gw_port)}, environ)
            policy = demo_policy(datetime.now(UTC))
            if not args.walkthrough:
                config = with_demo_policy(config, policy)
            gw_runner = GatewayRunner(create_app(config), access_log=None)
            await gw_runner.setup()
            stack.push_async_callback(gw_runner.cleanup)
            gw_bound = await start_site(gw_runner, gw_host, gw_port)
            gateway_url = f"http://{address(gw_host, gw_bound)}"
            if args.walkthrough:
                return await run_walkthrough(gateway_url)
            door, proxy_url = await _start_proxy(config, gw_runner, ca_dir, args.proxy_listen)
            stack.callback(door.close)
            await make_calls(gateway_url, policy)
            examples = _examples(gateway_url, simulator_url, add_on_sid)
            intro, _, closing = examples.rpartition("\nAny password works")
            text = intro + _proxy_examples(proxy_url, ca_dir / "ca.pem")
            text += banner(gateway_url, policy) + "\nAny password works"
            print(text + closing, flush=True)
            configure_logging(config.log_level)  # the access log shows each call as it passes
            await _wait_for_stop()
            return 0
    finally:
        shutil.rmtree(ca_dir, ignore_errors=True)


async def _start_proxy(
    config: GatewayConfig, runner: web.AppRunner, ca_dir: Path, listen: str
) -> tuple[ProxyFrontDoor, str]:
    """The proxy front door on ``listen`` with a throwaway CA in ``ca_dir``, and its URL."""
    from gateway.frontdoor.listener import start_proxy
    from gateway.frontdoor.startup import prepare

    host, port = _listen("--proxy-listen", listen)
    ca = write_ca(ca_dir, ["preview.twilio.com"], CA_DAYS, force=False)  # as `gateway tls init`
    proxied = replace(
        config,
        proxy_listen=(host, port),
        proxy_ca_cert=ca.root,
        proxy_ca_key=ca.key,
        proxy_tunnel_hosts=(),  # the demo never connects anywhere but the simulator
    )
    settings = prepare(proxied).proxy
    assert settings is not None and runner.server is not None
    try:
        door, bound = await start_proxy(runner.server, settings, host, port)
    except OSError as exc:
        raise listen_error(host, port, exc) from exc
    return door, f"http://{address(host, bound)}"


def run_verb(args: Any, environ: Mapping[str, str]) -> int:
    """Run ``simulate`` or ``demo`` to completion."""
    if args.verb == "simulate":
        return asyncio.run(_simulate(args))
    return asyncio.run(_demo(args, environ))
