"""The docs site: its generated tables match the code, it builds with ``mkdocs build --strict``
offline, every page is in the nav and reached from the README, the README's links resolve, and
the commands it tells a newcomer to paste run as written."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib.util
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import aiohttp
import pytest
import yaml

from gateway.config import options_serving
from gateway.config.options import GROUPS, OPTIONS
from tests.docs_pages import DOCS, README, anchors, links, local_target, reachable_pages
from tests.paths import ROOT
from tests.processes import free_port, require_binary, run_to_end

GATEWAY = str(Path(sys.executable).with_name("gateway"))
MKDOCS_ENV = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # Material's notice on stderr


def _load_gen_docs() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_docs", ROOT / "scripts" / "gen_docs.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gen_docs = _load_gen_docs()


def _section(page: str, heading: str) -> str:
    text = (DOCS / page).read_text("utf-8")
    return text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


# --- Generated reference ---------------------------------------------------------------------


def test_the_generated_tables_are_what_the_script_writes() -> None:
    result = subprocess.run(
        [sys.executable, "scripts/gen_docs.py", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_changed_option_makes_the_page_stale(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the check compares with follows the option table: a new help text is a diff."""
    first = options_serving.OPTIONS[0]
    changed = dataclasses.replace(first, help="a help text the page does not have yet")
    monkeypatch.setattr(options_serving, "OPTIONS", (changed, *options_serving.OPTIONS[1:]))
    assert gen_docs.main(["--check"]) == 1
    monkeypatch.undo()
    assert gen_docs.main(["--check"]) == 0


def test_the_options_page_has_every_option_under_its_group() -> None:
    generated = (DOCS / "configuration.md").read_text("utf-8").split("BEGIN GENERATED options")[1]
    for group in GROUPS:
        table = generated.split(f"### {group.TITLE}\n", 1)[1].split("\n### ", 1)[0]
        for option in group.OPTIONS:
            if option.file_only:  # no flag, no variable: the file key alone
                assert f"| — | — | `{option.name}` (file only" in table, option.name
                continue
            row = f"| `{option.flag}"
            assert row in table and f"`{option.env}`" in table, (group.TITLE, option.name)
            assert str(option.help.split()[0]) in table
    flagged = [option for option in OPTIONS if not option.file_only]
    assert len(re.findall(r"^\| `--", generated, re.M)) == len(flagged) + 1  # and --config


def test_the_errors_page_has_every_error_class() -> None:
    generated = (DOCS / "errors.md").read_text("utf-8").split("BEGIN GENERATED error-codes")[1]
    classes = list(gen_docs._error_classes(gen_docs.errors.GatewayError))
    assert len(classes) >= 14
    for cls in classes:
        assert f"| {cls.code} | {cls.status} | `{cls.__name__}` |" in generated, cls


def test_the_markers_must_be_there_once() -> None:
    with pytest.raises(SystemExit, match="exactly one pair of markers"):
        gen_docs.fill("prose without markers", "options", "table")
    begin, end = gen_docs.BEGIN.format(name="x"), gen_docs.END.format(name="x")
    page = f"before\n{begin}\nold\n{end}\nafter\n"
    assert gen_docs.fill(page, "x", "new") == f"before\n{begin}\nnew\n{end}\nafter\n"


# --- The site --------------------------------------------------------------------------------


def _nav_pages() -> list[str]:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text("utf-8"))
    pages: list[str] = []

    def walk(items: list[object]) -> None:
        for item in items:
            value = next(iter(item.values())) if isinstance(item, dict) else item
            if isinstance(value, list):
                walk(value)
            else:
                pages.append(str(value))

    walk(config["nav"])
    return pages


def _mkdocs_build(project: Path, site: Path) -> subprocess.CompletedProcess[str]:
    """``mkdocs build --strict``; where it may (as root), inside a network namespace of its own
    with no network at all, so that a build that fetches anything fails."""
    command = [str(Path(sys.executable).with_name("mkdocs")), "build", "--strict", "-d", str(site)]
    offline = ["unshare", "--net"]
    if shutil.which("unshare") and subprocess.run([*offline, "true"], check=False).returncode == 0:
        command = [*offline, *command]
    return subprocess.run(
        command, cwd=project, env=MKDOCS_ENV, capture_output=True, text=True, check=False
    )


def test_the_site_builds_strict_and_offline(tmp_path: Path) -> None:
    result = _mkdocs_build(ROOT, tmp_path / "site")
    assert result.returncode == 0, result.stderr
    for page in _nav_pages():
        html = (
            tmp_path / "site" / ("index.html" if page == "index.md" else f"{page[:-3]}/index.html")
        )
        assert html.is_file(), page
    built = "".join(p.read_text("utf-8") for p in (tmp_path / "site").rglob("*.html"))
    assert "fonts.googleapis.com" not in built  # the pages load nothing from elsewhere either


def test_a_broken_link_fails_the_build(tmp_path: Path) -> None:
    shutil.copytree(DOCS, tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    page = tmp_path / "docs" / "rules.md"
    page.write_text(page.read_text("utf-8") + "\nSee [nowhere](errors.md#no-such-heading).\n")
    result = _mkdocs_build(tmp_path, tmp_path / "site")
    assert result.returncode != 0 and "no-such-heading" in result.stderr, result.stderr


def test_every_page_is_in_the_nav_and_reached_from_the_readme() -> None:
    pages = sorted(p.name for p in DOCS.glob("*.md"))
    assert sorted(_nav_pages()) == pages, "docs/*.md and mkdocs.yml's nav differ"
    reached = {p.name for p in reachable_pages() if p.parent == DOCS.resolve()}
    assert reached == set(pages)
    for name in ("configuration", "rules", "errors", "https-front-doors", "deploy"):
        assert f"{name}.md" in pages, name


def test_the_readmes_links_lead_somewhere() -> None:
    """mkdocs checks the pages' links; the README, outside the site, is checked here."""
    for target in links(README.read_text("utf-8")):
        found = local_target(README, target)
        if found is None:
            continue
        path, anchor = found
        assert path.exists(), target
        if anchor:
            assert anchor in anchors(path), target


# --- Commands as written ---------------------------------------------------------------------


def _commands(markdown: str) -> list[str]:
    """The shell commands of the ```sh blocks, continuation lines joined, comments left out."""
    commands: list[str] = []
    for block in re.findall(r"```sh\n(.*?)```", markdown, re.S):
        joined = block.replace("\\\n", " ")
        commands += [line.strip() for line in joined.splitlines() if line.strip()]
    return [c.split("  #", 1)[0].strip() for c in commands if not c.startswith("#")]


def _with_free_ports(commands: list[str]) -> tuple[list[str], dict[int, int]]:
    ports = sorted({int(p) for c in commands for p in re.findall(r"127\.0\.0\.1:(\d+)", c)})
    mapping = {port: free_port() for port in ports}
    swap = lambda m: f"127.0.0.1:{mapping[int(m.group(1))]}"  # noqa: E731
    return [re.sub(r"127\.0\.0\.1:(\d+)", swap, c) for c in commands], mapping


async def _wait_listening(port: int, server: subprocess.Popen[bytes], log: Path) -> None:
    for _ in range(150):
        assert server.poll() is None, log.read_text()
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            await asyncio.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}: {log.read_text()}")


@pytest.fixture
def servers() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for server in started:
        server.terminate()
    for server in started:
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


async def _run_as_written(
    commands: list[str], cwd: Path, servers: list[subprocess.Popen[bytes]]
) -> list[str]:
    """Run each command in ``cwd`` as a shell would, ``gateway`` being this checkout's: servers
    (``gateway serve``/``simulate``) in the background until they listen, the rest to their end.
    What the others printed, in order."""
    env = {**os.environ, "PATH": f"{Path(GATEWAY).parent}:{os.environ['PATH']}"}
    printed: list[str] = []
    for command in commands:
        argv = shlex.split(command)
        if argv[:1] == ["gateway"] and argv[1] in ("serve", "simulate"):
            log = cwd / f"server-{len(servers)}.log"
            with log.open("wb") as sink:
                servers.append(subprocess.Popen(argv, cwd=cwd, env=env, stdout=sink, stderr=sink))
            listen = argv[argv.index("--listen") + 1]
            await _wait_listening(int(listen.rsplit(":", 1)[1]), servers[-1], log)
            for other in re.findall(r"--proxy-listen 127\.0\.0\.1:(\d+)", command):
                await _wait_listening(int(other), servers[-1], log)
        else:
            code, out, err = await run_to_end(["bash", "-c", command], cwd=cwd, env=env, timeout=30)
            assert code == 0, f"{command}\n{out}{err}"
            printed.append(out)
    return printed


@pytest.mark.upstream
async def test_both_front_doors_run_as_written(
    tmp_path: Path, servers: list[subprocess.Popen[bytes]]
) -> None:
    """The page's commands, pasted in order (its ports swapped for free ones): the simulator,
    the CA, the proxy door, the TLS listener, and a curl through each answers a page whose URLs
    lead back through the same door."""
    require_binary("curl", "Debian's curl (scripts/install-system-deps.sh)")
    written = _commands(_section("https-front-doors.md", "Try both doors on one machine"))
    assert [c.split()[:2] for c in written] == [
        ["gateway", "simulate"],
        ["gateway", "tls"],
        ["gateway", "serve"],
        ["gateway", "tls"],
        ["gateway", "serve"],
        ["curl", "-s"],
        ["curl", "-s"],
        ["curl", "-s"],
    ]
    for serve in (c for c in written if c.startswith("gateway serve")):
        for flag in ("--marketplace-upstream", "--api-upstream"):
            assert f"{flag} http://127.0.0.1:8081" in serve, (flag, serve)
    proxy_port = re.findall(r"--proxy-listen 127\.0\.0\.1:(\d+)", " ".join(written))
    tls_port = re.findall(r"--listen 127\.0\.0\.1:(\d+)\s+--tls-cert", " ".join(written))
    assert proxy_port and tls_port and proxy_port != tls_port
    assert "0.0.0.0" not in " ".join(written)

    commands, _ = _with_free_ports(written)
    printed = await _run_as_written(commands, tmp_path, servers)
    pages = [json.loads(out) for out in printed if out.startswith("{")]
    assert len(pages) == 2, printed
    assert 'front_door="proxy"' in printed[-1] and "gateway_requests_total" in printed[-1]
    for page in pages:
        assert len(page["available_add_ons"]) == 2
        for url in (page["meta"]["url"], page["meta"]["next_page_url"]):
            assert url.startswith("https://preview.twilio.com/marketplace/AvailableAddOns"), url


@pytest.mark.upstream
async def test_the_python_ca_bundle_line_works(
    tmp_path: Path, servers: list[subprocess.Popen[bytes]]
) -> None:
    """The certifi line, run with the app's Python (here the test environment's, which has
    twilio and so requests and certifi), makes a bundle that trusts the proxy door's leaves."""
    require_binary("curl", "Debian's curl (scripts/install-system-deps.sh)")
    page = (DOCS / "https-front-doors.md").read_text("utf-8")
    line = next(c for c in _commands(page) if "-m certifi" in c)
    app_python = re.search(r'"\$\((\S+) -m certifi\)"', line)
    assert app_python and "venv" in app_python.group(1)  # the app's, not the gateway's
    try_it = _commands(_section("https-front-doors.md", "Try both doors on one machine"))
    setup = [c for c in try_it if c.startswith(("gateway simulate", "gateway tls init"))]
    setup += [next(c for c in try_it if "--proxy-listen" in c)]
    curl = next(c for c in try_it if c.startswith("curl") and " -x " in c)
    bundle_line = line.replace(app_python.group(1), sys.executable)
    curl = curl.replace("--cacert ./gateway-ca/ca.pem", "--cacert bundle.pem")
    commands, _ = _with_free_ports([*setup, bundle_line, curl])
    printed = await _run_as_written(commands, tmp_path, servers)
    assert json.loads(printed[-1])["available_add_ons"]
    assert (tmp_path / "bundle.pem").read_text().count("BEGIN CERTIFICATE") > 100


# --- The report sample -----------------------------------------------------------------------


def _normalised(text: str) -> list[str]:
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "TIME", text)
    text = re.sub(r"\((?:just now|[^()]* ago)\)", "(AGO)", text)
    text = re.sub(r"127\.0\.0\.1:\d+", "HOST", text)
    return [line.rstrip() for line in text.splitlines()]


@pytest.mark.upstream
async def test_the_report_sample_is_what_a_real_run_prints(
    tmp_path: Path, servers: list[subprocess.Popen[bytes]]
) -> None:
    """The run the page describes, replayed: every line of its sample (times and ports aside)
    comes out in that order, `unauthenticated` included."""
    section = _section("tracking-the-migration.md", "Migration report")
    sample = section.split("```\n$ gateway report\n", 1)[1].split("```", 1)[0]
    assert "unauthenticated: 2" in sample and "anonymous" not in sample
    simulator, gateway = free_port(), free_port()
    upstream = f"http://127.0.0.1:{simulator}"
    billing, other = "AC" + "1" * 32, "AC" + "3" * 32
    await _run_as_written(
        [
            f"gateway simulate --listen 127.0.0.1:{simulator}",
            f"gateway serve --listen 127.0.0.1:{gateway} --marketplace-upstream {upstream} "
            f"--api-upstream {upstream} --consumer-names {billing}=billing-app",
        ],
        tmp_path,
        servers,
    )
    base = f"http://127.0.0.1:{gateway}/marketplace"
    calls: list[tuple[str | None, str]] = [(billing, "InstalledAddOns")] * 9
    calls += [(other, "InstalledAddOns")] * 3 + [(None, "InstalledAddOns")] * 2
    calls += [(billing, "AvailableAddOns")] * 3
    async with aiohttp.ClientSession() as session:
        for sid, path in calls:
            auth = {"Authorization": aiohttp.encode_basic_auth(sid, "any-token")} if sid else {}
            async with session.get(f"{base}/{path}", headers=auth) as response:
                assert response.status == (401 if sid is None else 200)
    code, out, err = await run_to_end(
        [GATEWAY, "report", "--metrics-url", f"http://127.0.0.1:{gateway}/metrics"],
        cwd=tmp_path,
        env=dict(os.environ),
        timeout=30,
    )
    assert code == 0, err
    real = iter(_normalised(out))
    for line in _normalised(sample):
        if line != "…":
            assert any(seen == line for seen in real), f"not printed (in this order): {line}"
