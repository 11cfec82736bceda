"""gateway.rewrite.link_map: which URLs are the upstream's and where they lead on the gateway."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from gateway.config.rules import load_rules
from gateway.rewrite import link_map
from gateway.rewrite.link_map import LinkRewriter, PathMap
from gateway.rewrite.response_rewrite import rewrite_body
from gateway.simulator import create_simulator_app, load_seed
from tests.conftest import AUTH_HEADER as AUTH
from tests.paths import ROOT
from tests.processes import free_port, start_gateway, wait_ready
from tests.timing import best_of, deadline, growth, large_blocks_from_the_heap

PROJECT = ROOT
PREVIEW_RULES = [r for r in load_rules().rules if r.deprecated and r.upstream == "marketplace"]
V1 = "https://marketplace.twilio.com"
GW = "https://gw.example"
CATALOGUE = [add_on.sid for add_on in load_seed().available_add_ons]
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@pytest.mark.parametrize(
    ("path", "mapped"),
    [
        ("/v1/InstalledAddOns", "/marketplace/InstalledAddOns"),
        ("/v1/InstalledAddOns/XE1", "/marketplace/InstalledAddOns/XE1"),
        ("/v1/InstalledAddOns/X%2A/Extensions", "/marketplace/InstalledAddOns/X%2A/Extensions"),
        ("/v1/AvailableAddOns/XB/Extensions/XF", "/marketplace/AvailableAddOns/XB/Extensions/XF"),
        ("/v1/InstalledAddOns/XE1/Usage", "/v1/InstalledAddOns/XE1/Usage"),  # no preview twin
        ("/v1/InstalledAddOns/XE!1", "/v1/InstalledAddOns/XE!1"),  # routing would refuse "!"
        ("/v1/InstalledAddOns/XE%zz", "/v1/InstalledAddOns/XE%zz"),
        ("/v1/InstalledAddOns/", "/v1/InstalledAddOns/"),
        ("/v1/Listings", "/v1/Listings"),
        ("/v2/InstalledAddOns", "/v2/InstalledAddOns"),
    ],
)
def test_path_map_follows_the_deprecated_rules(path: str, mapped: str) -> None:
    path_map = PathMap.build(PREVIEW_RULES)
    assert path_map.swap == ("/v1", "/marketplace")
    assert path_map.map(path) == mapped
    tails = re.compile("/v1" + path_map.tails_regex())
    assert (tails.fullmatch(path) is not None) == (mapped != path)


# Tails after /v1/InstalledAddOns/{segment}: ones a deprecated rule maps, and ones none does
# (v1's links.usage), which made the old segment regex backtrack exponentially.
SEGMENT_TAILS = [("", True), ("/Extensions", True), ("/Usage", False), ("/Extensions/XF1/x", False)]


@pytest.mark.usefixtures("rewrite_path")
@pytest.mark.parametrize(("tail", "maps"), SEGMENT_TAILS, ids=["own", "ext", "usage", "deep"])
def test_rewrite_time_is_linear_in_a_url_segment(tail: str, maps: bool) -> None:
    """Segments of 34, 1,000 and 100,000 characters: each rewrite under 50 ms, and the
    longest under 100 times the 1,000-character one (best of several runs)."""
    rewriter = LinkRewriter.build((V1,), PREVIEW_RULES)
    large_blocks_from_the_heap()  # the allocator as in a serving process
    runs = {}
    for length in (34, 1_000, 100_000):
        segment = ("XE" + "0123456789abcdef" * (length // 16 + 1))[:length]
        url = f"{V1}/v1/InstalledAddOns/{segment}{tail}"
        body = orjson.dumps({"sid": segment, "links": {"usage": url}})

        def run(body: bytes = body) -> bytes | None:
            return rewrite_body(body, "application/json", rewriter, GW)

        with deadline(5, f"a {length}-character segment followed by {tail!r}"):
            out = run()
            seconds = best_of(run)
        assert out is not None and len(segment) == length
        mapped = f"{GW}/marketplace" if maps else f"{GW}/v1"
        assert orjson.loads(out)["links"]["usage"] == f"{mapped}/InstalledAddOns/{segment}{tail}"
        assert seconds < 0.05, (length, seconds)
        runs[length] = run
    small, large = growth(runs[1_000], runs[100_000], 100)
    assert large < 100 * small, (small, large)


async def test_a_gateway_in_pure_python_answers_usage_links_promptly(
    aiohttp_server: Callable[..., Awaitable[TestServer]], tmp_path: Path
) -> None:
    """A real ``gateway serve`` without the accelerator, before the simulator, whose installed
    add-ons carry v1's links.usage: every answer comes at once, and so does /healthz asked at
    the same time. Then installed add-ons whose SID segment is 1,000 and 100,000 characters
    long (the simulator answers them when asked with ``Length``)."""

    @web.middleware
    async def long_segments(request: web.Request, handler: Handler) -> web.StreamResponse:
        if "Length" not in request.query:
            return await handler(request)
        length = int(request.query["Length"])
        segment = ("XE" + "0123456789abcdef" * (length // 16 + 1))[:length]
        url = f"{origin}/v1/InstalledAddOns/{segment}"
        links = {"extensions": f"{url}/Extensions", "usage": f"{url}/Usage"}
        return web.json_response({"sid": segment, "url": url, "links": links})

    simulator = create_simulator_app()
    simulator.middlewares.append(long_segments)
    origin = str((await aiohttp_server(simulator)).make_url("")).rstrip("/")
    port = free_port()
    process = start_gateway(
        origin, port, env={link_map.NO_EXTENSIONS_ENV: "1"}, log=tmp_path / "gateway.log"
    )
    base = f"http://127.0.0.1:{port}"
    timeout = aiohttp.ClientTimeout(total=5)
    try:
        await wait_ready(base, process)
        async with aiohttp.ClientSession(
            timeout=timeout, headers={"Authorization": AUTH}
        ) as client:

            async def timed(method: str, url: str, **kw: Any) -> tuple[float, Any]:
                started = time.monotonic()
                async with client.request(method, url, **kw) as response:
                    assert response.status < 300, await response.text()
                    body = await response.json()
                return time.monotonic() - started, body

            async def with_health(method: str, url: str, **kw: Any) -> Any:
                call, probe = timed(method, url, **kw), timed("GET", f"{base}/healthz")
                (seconds, body), (health, _) = await asyncio.gather(call, probe)
                assert seconds < 1 and health < 1, (url, seconds, health)
                return body

            form = {"AvailableAddOnSid": CATALOGUE[0], "AcceptTermsOfService": "true"}
            form["Configuration"] = '{"bad_words": true}'
            created = await with_health("POST", f"{base}/marketplace/InstalledAddOns", data=form)
            own = f"{base}/marketplace/InstalledAddOns/{created['sid']}"
            usage = f"{base}/v1/InstalledAddOns/{created['sid']}/Usage"  # no preview twin
            assert created["links"]["usage"] == usage and created["url"] == own
            assert (await with_health("GET", own))["links"]["usage"] == usage
            page = await with_health("GET", f"{base}/marketplace/InstalledAddOns")
            assert [item["links"]["usage"] for item in page["installed_add_ons"]] == [usage]
            billed = {"billable_items": [{"sid": "BI" + "c" * 32, "quantity": 1}]}
            await with_health("POST", usage, json=billed)  # the link leads back through us

            for length in (1_000, 100_000):
                body = await with_health("GET", f"{own}?Length={length}")
                segment = body["sid"]
                assert len(segment) == length
                assert body["links"] == {
                    "extensions": f"{base}/marketplace/InstalledAddOns/{segment}/Extensions",
                    "usage": f"{base}/v1/InstalledAddOns/{segment}/Usage",
                }
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:  # a gateway pinned in a regex heeds no SIGTERM
            process.kill()
            process.wait(10)


def test_path_map_templates_for_the_accelerator() -> None:
    templates = PathMap.build(PREVIEW_RULES).templates()
    assert (b"/v1/InstalledAddOns/", None, b"/Extensions/", None) in templates
    assert (b"/v1/AvailableAddOns",) in templates
    assert PathMap.build([]).templates() == ()


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (f"{V1}/v1/InstalledAddOns/XE1", f"{GW}/marketplace/InstalledAddOns/XE1"),
        (f"{V1}/v1/InstalledAddOns?P=1&T=a%3D=", f"{GW}/marketplace/InstalledAddOns?P=1&T=a%3D="),
        (f"{V1}/v1/InstalledAddOns/XE1/Usage", f"{GW}/v1/InstalledAddOns/XE1/Usage"),
        (V1, f"{GW}/"),
        (f"{V1}?a=1", f"{GW}/?a=1"),
        (f"{V1}.evil/v1/InstalledAddOns", f"{V1}.evil/v1/InstalledAddOns"),
        (f"{V1}@evil/v1", f"{V1}@evil/v1"),
        (
            "http://marketplace.twilio.com/v1/InstalledAddOns",
            "http://marketplace.twilio.com/v1/InstalledAddOns",
        ),
        ("/v1/InstalledAddOns", "/v1/InstalledAddOns"),
    ],
)
def test_url(value: str, expected: str) -> None:
    assert LinkRewriter.build((V1,), PREVIEW_RULES).url(value, GW) == expected


def test_the_longest_prefix_at_a_boundary_wins() -> None:
    rewriter = LinkRewriter.build(("http://h", "http://h/v1"), PREVIEW_RULES)
    assert rewriter.prefixes == ("http://h/v1", "http://h")
    # under "http://h/v1" the path is /InstalledAddOns: not a deprecated target
    assert rewriter.url("http://h/v1/InstalledAddOns", GW) == f"{GW}/InstalledAddOns"
    assert rewriter.url("http://h/v1x/InstalledAddOns", GW) == f"{GW}/v1x/InstalledAddOns"
    assert rewriter.substitutions is None  # nested prefixes: parse-and-prove cannot be exact


@pytest.mark.parametrize(
    ("body", "may"),
    [
        (b'{"url":"https://marketplace.twilio.com/v1"}', True),
        (b'{"url":"https:\\/\\/marketplace.twilio.com\\/v1"}', True),
        (b'{"url":"https://marketplace.twilio.com.evil"}', True),  # cheap check: may, not is
        (b'{"url":"\\u0068ttps://marketplace.twilio.com/v1"}', True),
        (b'{"url":"https://marketplace.twilio\\u002ecom/v1"}', True),
        (b'{"url":"https://example.com/v1","name":"caf\\u00e9"}', False),  # not ASCII: no URL
        (b'{"url":"https://example.com/v1"}', False),
    ],
)
def test_may_hold_upstream_urls(body: bytes, may: bool) -> None:
    assert LinkRewriter.build((V1,), []).may_hold_upstream_urls(body) is may


@pytest.mark.parametrize(
    "prefix", ['https://a"b', "https://a\\b", "https://é.example", "http://a\nb"]
)
def test_prefixes_that_cannot_be_matched_in_json_bytes_are_refused(prefix: str) -> None:
    with pytest.raises(ValueError, match="upstream URL prefix"):
        LinkRewriter.build((prefix,), [])


def test_asking_for_the_accelerator_when_it_is_not_there(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(link_map.NO_EXTENSIONS_ENV, "1")
    assert link_map.load_accelerator() is None
    with pytest.raises(RuntimeError, match="not available"):
        LinkRewriter.build((V1,), [], accelerate=True)
    assert LinkRewriter.build((V1,), [], accelerate=False).compiled is None


def test_the_environment_switch_turns_the_accelerator_off_for_the_whole_process() -> None:
    code = "import gateway.rewrite.link_map as m; print(m.ACCELERATOR is None)"
    for value, off in (("1", "True"), ("", str(link_map.load_accelerator() is None))):
        env = {**os.environ, link_map.NO_EXTENSIONS_ENV: value}
        result = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        assert result.stdout.strip() == off


def test_ci_runs_the_compiled_path_too() -> None:
    """A CI run with the accelerator silently missing would test the pure path only."""
    if not os.environ.get("CI") or os.environ.get(link_map.NO_EXTENSIONS_ENV):
        pytest.skip("only checked in CI (CI=true), where the build must have a C compiler")
    assert link_map.ACCELERATOR is not None, "gateway/rewrite/_rewrite_accel.c was not built"


@pytest.mark.slow
def test_without_a_compiler_the_wheel_builds_installs_and_runs_in_pure_python(
    tmp_path: Path,
) -> None:
    env = {**os.environ, "CC": "false", "LDSHARED": "false"}
    env.pop(link_map.NO_EXTENSIONS_ENV, None)
    out, site = tmp_path / "dist", tmp_path / "site"

    def pip(*args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "pip", *args],
            env=env, capture_output=True, text=True, check=False, timeout=300,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout + result.stderr

    source = tmp_path / "src"  # a copy: no build/ left in the checkout, no in-place build used
    ignore = shutil.ignore_patterns("__pycache__", "*.so", "build")
    for name in ("gateway", "rewrite_rules", "specs"):  # what the wheel packages
        shutil.copytree(PROJECT / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "setup.py", "README.md"):
        shutil.copy2(PROJECT / name, source / name)
    built = pip("wheel", str(source), "--no-deps", "-v", "-w", str(out))
    assert "the optional C accelerator was not built" in built
    (wheel,) = out.glob("*.whl")
    pip("install", "--no-deps", "-q", "--target", str(site), str(wheel))
    assert [p.name for p in site.rglob("_rewrite_accel*")] == ["_rewrite_accel.pyi"]
    doc = b'{"url":"https://marketplace.twilio.com/v1/X","n":1.50}'
    code = (  # without the editable install's finder, which would find the checkout's build
        "import sys; sys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in repr(f)];"
        "import gateway, gateway.rewrite.link_map as m, gateway.rewrite.response_rewrite as r;"
        "w = m.LinkRewriter.build(('https://marketplace.twilio.com',), []);"
        f"print(gateway.__file__, m.ACCELERATOR, r.rewrite_body({doc!r}, 'application/json', w,"
        " 'https://gw'))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env={**env, "PYTHONPATH": str(site)},
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.startswith(str(site))
    expected = doc.replace(b"https://marketplace.twilio.com", b"https://gw")
    assert run.stdout.split(" ", 2)[1:] == ["None", f"{expected!r}\n"]
