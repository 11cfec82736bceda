"""``gateway demo``: the walkthrough exits 0; the interactive demo prints working examples and
stops cleanly on SIGINT / SIGTERM. Both run as real subprocesses (``python -m gateway``)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import threading
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from gateway.cli import main
from gateway.simulator import load_seed
from gateway.tools.walkthrough import DEMO_ACCOUNT
from tests.processes import free_port, run_to_end

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT = 20.0
STOP_TIMEOUT = 10.0
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=10)


def _env() -> dict[str, str]:
    """This environment without GATEWAY_* settings (they would change the demo's config)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env["NO_PROXY"] = "127.0.0.1,localhost"
    env["PYTHONUNBUFFERED"] = "1"
    return env


async def _run(*args: str, timeout: float) -> tuple[int, str, str]:
    argv = [sys.executable, "-m", "gateway", *args]
    return await run_to_end(argv, cwd=ROOT, env=_env(), timeout=timeout)


async def test_walkthrough_exits_zero_and_shows_the_calls() -> None:
    rc, out, err = await _run("demo", "--walkthrough", timeout=45)
    assert rc == 0, out[-3000:] + err[-3000:]
    calls = re.findall(r"^>>> (GET|POST|DELETE) (\S+)", out, re.M)
    answers = re.findall(r"^<<< (\d{3}) ", out, re.M)
    assert len(calls) == len(answers) >= 12
    origins = {f"{urlsplit(url).scheme}://{urlsplit(url).netloc}" for _, url in calls}
    assert len(origins) == 1  # every call, next pages included, went to the gateway
    paths = [urlsplit(url).path for _, url in calls]
    assert all(path.startswith("/marketplace/") for path in paths)
    assert ("POST", "201") in zip([m for m, _ in calls], answers, strict=True)
    assert ("DELETE", "204") in zip([m for m, _ in calls], answers, strict=True)
    assert "404" in answers  # the documented unknown-SID call
    assert "Deprecation: @" in out
    pages = re.search(r"=== (\d+) available add-ons over (\d+) pages", out)
    assert pages is not None
    assert int(pages[1]) == len(load_seed().available_add_ons) and int(pages[2]) >= 3
    assert "walkthrough OK" in out


class Demo:
    """A running ``gateway demo`` on free ports."""

    def __init__(self, process: asyncio.subprocess.Process, banner: str) -> None:
        self.process, self.banner = process, banner
        simulator = re.search(r"Simulator \(Marketplace v1\): (http://\S+)", banner)
        gateway = re.search(r"Gateway \(legacy base URL\):\s+(http://\S+)", banner)
        assert simulator and gateway, banner
        self.simulator_url, self.gateway_url = simulator[1], gateway[1]
        # curl [-i] -u USER:PASS 'URL'
        self.curls = re.findall(r"curl (?:-i )?-u (\S+?):(\S+) '(\S+)'", banner)


async def _start_demo() -> Demo:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway",
        "demo",
        "--listen",
        "127.0.0.1:0",
        "--simulator-listen",
        "127.0.0.1:0",
        "--proxy-listen",
        "127.0.0.1:0",
        cwd=ROOT,
        env=_env(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert process.stdout is not None
    lines: list[str] = []

    async def read_banner() -> None:
        assert process.stdout is not None
        while True:
            line = (await process.stdout.readline()).decode()
            if not line:
                raise AssertionError("demo exited before printing its examples: " + "".join(lines))
            lines.append(line)
            if "Ctrl-C stops both servers" in line:
                return

    try:
        await asyncio.wait_for(read_banner(), START_TIMEOUT)
    except BaseException:
        process.kill()
        await process.wait()
        raise
    return Demo(process, "".join(lines))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
async def test_demo_prints_working_examples_and_stops_on_signal(signum: signal.Signals) -> None:
    demo = await _start_demo()
    try:
        assert demo.simulator_url != demo.gateway_url
        for url in (demo.simulator_url, demo.gateway_url):
            assert not url.endswith(":0")  # the bound port is printed, not the asked-for 0
        assert len(demo.curls) == 4, demo.banner
        seed = load_seed()
        catalogue = {a.sid for a in seed.available_add_ons}
        async with aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session:
            for user, password, url in demo.curls:
                assert url.startswith(demo.gateway_url + "/"), url
                path = urlsplit(url).path
                for sid in re.findall(r"XB[0-9a-fA-F]{32}", path):
                    assert sid in catalogue, f"demo example names {sid}, not in the default seed"
                auth = aiohttp.encode_basic_auth(user, password)
                async with session.get(url, headers={"Authorization": auth}) as response:
                    body = await response.text()
                    assert response.status == 200, (url, body)
                if path == "/metrics":
                    assert "gateway_requests_total" in body
                else:
                    assert path.startswith("/marketplace/")
                    assert "marketplace.twilio.com/v1/" not in body
            # the migration page it prints shows its three consumers in three stages
            page = re.search(r"Migration page: (\S+)/migration ", demo.banner)
            assert page and page[1] == demo.gateway_url
            async with session.get(demo.gateway_url + "/migration.json") as response:
                stages = {row["name"]: row["stage"] for row in (await response.json())["consumers"]}
            assert stages == {
                "billing-api": "cut_off",
                "storefront": "calling",
                "reporting-job": "exempt",
                DEMO_ACCOUNT: "unknown",  # the examples above: not on the list
            }
            async with session.get(demo.gateway_url + "/migration") as response:
                assert response.status == 200 and "<svg" in await response.text()
            sim_auth = aiohttp.encode_basic_auth(*demo.curls[0][:2])
            async with session.get(
                demo.simulator_url + "/v1/AvailableAddOns", headers={"Authorization": sim_auth}
            ) as response:
                assert response.status == 200

        # the printed twilio snippet works against the printed gateway
        account = re.search(r'Client\("(AC\w{32})", "([^"]+)"\)', demo.banner)
        base_url = re.search(r'client\.preview\.base_url = "(\S+)"', demo.banner)
        assert account and base_url and base_url[1] == demo.gateway_url
        client = Client(account[1], account[2], http_client=TwilioHttpClient(timeout=10))
        client.preview.base_url = base_url[1]
        add_ons = await asyncio.wait_for(
            asyncio.to_thread(
                lambda: client.preview.marketplace.available_add_ons.list(page_size=2)
            ),
            20,
        )
        assert {a.sid for a in add_ons} == catalogue

        demo.process.send_signal(signum)
        rc = await asyncio.wait_for(demo.process.wait(), STOP_TIMEOUT)
        assert rc == 0
        assert not Path(re.findall(r"--cacert (\S+)", demo.banner)[0]).exists()
    finally:
        if demo.process.returncode is None:
            demo.process.kill()
            await demo.process.wait()


async def test_demo_prints_the_proxy_way_and_it_works() -> None:
    """The printed exports and curl line run an unmodified client through the proxy."""
    demo = await _start_demo()
    try:
        exports = dict(
            re.findall(r"(\w+)=(\S+)", " ".join(re.findall(r"export (.+)", demo.banner)))
        )
        proxy, ca = exports["HTTPS_PROXY"], exports["REQUESTS_CA_BUNDLE"]
        assert exports["HTTP_PROXY"] == proxy and exports["NODE_EXTRA_CA_CERTS"] == ca
        assert not proxy.endswith(":0") and Path(ca).is_file()
        curl_line = re.search(r"curl -x (\S+) --cacert (\S+) -u (\S+) '(\S+)'", demo.banner)
        assert curl_line and (curl_line[1], curl_line[2]) == (proxy, ca)
        process = await asyncio.create_subprocess_exec(
            "curl", "-sS", "--max-time", "10", "-x", proxy, "--cacert", ca, "-u", curl_line[3],
            curl_line[4], stdout=asyncio.subprocess.PIPE, env={"PATH": "/usr/bin:/bin"},
        )  # fmt: skip
        out, _ = await asyncio.wait_for(process.communicate(), 20)
        assert process.returncode == 0
        body = json.loads(out)
        assert body["meta"]["next_page_url"].startswith("https://preview.twilio.com/marketplace/")
        # twilio-python, base URL untouched, with exactly the printed environment
        env = {**os.environ, **exports}
        env.pop("NO_PROXY", None)
        snippet = re.search(r"python3 -c '(.+)'", demo.banner)
        assert snippet
        run = await asyncio.create_subprocess_exec(
            sys.executable, "-c", snippet[1], env=env, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out, err = await asyncio.wait_for(run.communicate(), 30)
        assert run.returncode == 0, err
        assert out.decode().count("XB") == 3
    finally:
        demo.process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(demo.process.wait(), STOP_TIMEOUT) == 0


# --- clean exit-2 errors, as `gateway serve` gives them ---------------------------------------


def _main(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``gateway ARGV`` in a worker thread, bounded: a command that would serve instead of
    refusing fails the test rather than hanging it."""
    outcome: list[int | BaseException] = []

    def target() -> None:
        try:
            outcome.append(main(argv, {}))
        except BaseException as exc:  # handed to the test's thread below
            outcome.append(exc)

    thread = threading.Thread(target=target, daemon=True)  # a daemon never blocks the exit
    thread.start()
    thread.join(30)
    assert not thread.is_alive(), f"gateway {' '.join(argv)} kept running instead of refusing"
    [status] = outcome
    if isinstance(status, BaseException):
        raise status
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize("verb", ["simulate", "demo"])
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--listen", "8080"], "flag --listen: expected HOST:PORT, got '8080'"),
        (["--listen", "127.0.0.1:http"], "flag --listen: expected HOST:PORT, got '127.0.0.1:http'"),
        (["--listen", "127.0.0.1:99999"], "flag --listen: port out of range in '127.0.0.1:99999'"),
        (
            ["--seed", "/nonexistent/seed.json"],
            "flag --seed: cannot read simulator seed /nonexistent/seed.json: "
            "No such file or directory",
        ),
    ],
    ids=["no-port", "port-not-a-number", "port-out-of-range", "missing-seed"],
)
def test_bad_arguments_are_one_line_and_exit_2(
    verb: str, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = _main([verb, *args], capsys)
    assert (status, out) == (2, "")
    assert err.startswith(f"gateway: {message}") and err.count("\n") == 1, err


@pytest.mark.parametrize("verb", ["simulate", "demo"])
def test_an_invalid_seed_is_one_line_and_exit_2(
    verb: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for text, problem in (("{not json", "not valid JSON"), ("{}", "available_add_ons")):
        seed = tmp_path / "seed.json"
        seed.write_text(text, "utf-8")
        status, out, err = _main([verb, "--seed", str(seed)], capsys)
        assert (status, out) == (2, "")
        assert err.startswith(f"gateway: flag --seed: invalid simulator seed {seed}: ")
        assert problem in err and err.count("\n") == 1, err


def test_simulate_refuses_a_bad_url_base(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = _main(["simulate", "--url-base", "ftp://x"], capsys)
    assert (status, out) == (2, "")
    assert err == "gateway: flag --url-base: expected an absolute http(s) URL, got 'ftp://x'\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["simulate", "--listen", "{busy}"],
        ["demo", "--listen", "{busy}", "--simulator-listen", "127.0.0.1:0"],
        ["demo", "--listen", "127.0.0.1:0", "--simulator-listen", "{busy}"],
        ["demo", "--walkthrough", "--listen", "{busy}"],
    ],
    ids=["simulate", "demo-gateway-port", "demo-simulator-port", "walkthrough"],
)
def test_a_busy_port_is_one_line_naming_the_address_and_exit_2(
    argv: list[str], busy_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    busy = f"127.0.0.1:{busy_port}"
    status, out, err = _main([arg.replace("{busy}", busy) for arg in argv], capsys)
    assert (status, out) == (2, "")
    assert err == f"gateway: cannot listen on {busy}: the address is already in use\n"


async def test_walkthrough_honours_listen() -> None:
    port = free_port()
    rc, out, err = await _run("demo", "--walkthrough", "--listen", f"127.0.0.1:{port}", timeout=45)
    assert rc == 0, out[-3000:] + err[-3000:]
    urls = re.findall(r"^>>> (?:GET|POST|DELETE) (\S+)", out, re.M)
    assert len(urls) >= 12
    assert {f"{urlsplit(url).netloc}" for url in urls} == {f"127.0.0.1:{port}"}
