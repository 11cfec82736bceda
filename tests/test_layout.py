"""Project layout: tests mirror gateway/, the request path never imports the simulator or the
tools, modules stay small, a small public surface, and nothing reaches outside the repository."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import gateway

PROJECT = Path(__file__).resolve().parents[1]
PACKAGE = PROJECT / "gateway"
TESTS = PROJECT / "tests"

# Modules without a tests/test_<name>.py of their own, and why. Keep this list short.
NO_OWN_TEST_FILE = {
    "__init__": "its public surface is checked by test_public_surface_is_exactly_all below",
    "__main__": "two lines; run by test_cli.test_python_dash_m_gateway_help",
    "models": "frozen value types without behaviour; built and compared in test_routing and "
    "test_request_rewrite",
    "tools/walkthrough": "the scripted session of gateway demo --walkthrough, run by "
    "tests/tools/test_demo",
    "tools/scan_patterns": "the language patterns of gateway scan, each exercised through "
    "scan.scan_text in tests/tools/test_scan",
    "options": "the option table and its value parsers; every option is parsed in test_config "
    "and every spelling checked against the README in test_readme",
}

PUBLIC_SURFACE = ["GatewayConfig", "__version__", "create_app", "load_config"]
MAX_MODULE_LINES = 400  # docs/design: aim under ~300, split before 400


def mirrored_modules() -> list[str]:
    """Modules of the core and of gateway/tools/, as paths relative to gateway/ (no suffix)."""
    found = [path.stem for path in PACKAGE.glob("*.py")]
    found += [f"tools/{p.stem}" for p in (PACKAGE / "tools").glob("*.py") if p.stem != "__init__"]
    return sorted(found)


def _test_file(module: str) -> Path:
    folder, _, name = module.rpartition("/")
    return TESTS / folder / f"test_{name}.py"


@pytest.mark.parametrize("module", mirrored_modules())
def test_every_module_has_a_test_file_or_a_reason(module: str) -> None:
    test_file = _test_file(module)
    assert test_file.is_file() or module in NO_OWN_TEST_FILE, (
        f"gateway/{module}.py has no {test_file.relative_to(PROJECT)}; write one, or add it to "
        "NO_OWN_TEST_FILE in tests/test_layout.py with the reason"
    )


def test_allow_list_holds_only_real_modules_without_test_files() -> None:
    for module in NO_OWN_TEST_FILE:
        assert (PACKAGE / f"{module}.py").is_file(), module
        assert not _test_file(module).exists(), f"{module} has tests now; unlist it"
    assert len(NO_OWN_TEST_FILE) <= 6


@pytest.mark.parametrize(
    "module", sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")), ids=str
)
def test_every_module_stays_small(module: str) -> None:
    """Core, tools and simulator alike."""
    lines = len((PACKAGE / module).read_text("utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"gateway/{module} has {lines} lines; split it"


def _ruff_findings(source: str, filename: str) -> list[str]:
    command = [sys.executable, "-m", "ruff", "check", "--select", "TID251"]
    command += ["--output-format", "concise", "--stdin-filename", filename, "-"]
    result = subprocess.run(
        command, input=source, cwd=PROJECT, capture_output=True, text=True, check=False
    )
    return [line for line in result.stdout.splitlines() if "TID251" in line]


BANNED_FORMS = [
    "import gateway.simulator",
    "from gateway.simulator.store import Store",
    "from gateway import simulator",
    "from gateway.tools import scan",
    "import gateway.tools.report",
    "def f():\n    from gateway.tools.demo import run_verb\n",
]


@pytest.mark.parametrize("source", BANNED_FORMS)
def test_ruff_bans_the_simulator_and_the_tools_from_the_request_path(source: str) -> None:
    """The import boundary is ruff's TID251 rule (run on the whole tree by test_quality)."""
    assert _ruff_findings(source + "\n", "gateway/proxy.py") != []


@pytest.mark.parametrize("source", BANNED_FORMS)
def test_the_tools_the_cli_and_the_tests_may_import_them(source: str) -> None:
    for filename in ("gateway/tools/probe.py", "gateway/cli.py", "tests/test_probe.py"):
        assert _ruff_findings(source + "\n", filename) == [], filename


def test_public_surface_is_exactly_all() -> None:
    assert gateway.__all__ == PUBLIC_SURFACE
    public = sorted(name for name in dir(gateway) if not name.startswith("_"))
    # Submodules imported so far show up as attributes; anything else must be in __all__.
    stray = [
        name
        for name in public
        if name not in gateway.__all__
        and not (PACKAGE / f"{name}.py").is_file()
        and not (PACKAGE / name).is_dir()
    ]
    assert stray == []
    from gateway import GatewayConfig, __version__, create_app, load_config
    from gateway.app import create_app as app_create_app
    from gateway.config import GatewayConfig as ConfigClass
    from gateway.config import load_config as config_load

    assert (create_app, GatewayConfig, load_config) == (app_create_app, ConfigClass, config_load)
    assert __version__ == "0.1.0"
    with pytest.raises(AttributeError):
        gateway.no_such_name  # noqa: B018


def test_importing_a_pure_module_does_not_start_the_server_stack() -> None:
    code = (
        "import sys, gateway.rules, gateway.routing, gateway.response_rewrite; "
        "print(sorted(m for m in ('gateway.app', 'gateway.simulator', 'aiohttp.web') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "[]\n", "")


# --- The repository is self-contained ------------------------------------------------------
# Nothing but benchmarks/ may read from beside the checkout (a fresh clone has nothing there).

_SKIP_DIRS = {".git", ".venv", "build", "dist", "node_modules", "benchmarks", "__pycache__"}
_CHECKED_SUFFIXES = {".py", ".sh", ".toml", ".cfg", ".ini", ".yml", ".yaml", ".json", ""}
_OUTSIDE_NAME = re.compile(r"""(?<![\w-])shared/(?:specs|docs|bench|hooks)\b|["']shared["']""")
_UP = re.compile(r"(?<![\w./])(?:\.\./)+")
_PARENTS_INDEX = re.compile(r"\.parents\[(\d+)\]")
_PARENT_CHAIN = re.compile(r"__file__\)(?:\.resolve\(\))?((?:\.parent)+)")
_ROOT_PARENT = re.compile(r"\b(?:ROOT|PROJECT|PROJECT_ROOT|REPO)\.parent\b")


def outside_references(text: str, depth: int) -> list[str]:
    """Places where ``text``, a file ``depth`` folders below the root, reaches past the root.

    ``Path(__file__).parents[depth]`` is the root itself; a higher index, a longer
    ``.parent`` chain, more ``../`` than ``depth``, ``ROOT.parent`` or a ``shared/`` folder is
    outside (Kustomize's ``../../base`` in deploy/kubernetes/ stays inside).
    """
    found = [m.group(0) for m in _OUTSIDE_NAME.finditer(text)]
    found += [m.group(0) for m in _UP.finditer(text) if m.group(0).count("../") > depth]
    found += [m.group(0) for m in _PARENTS_INDEX.finditer(text) if int(m.group(1)) > depth]
    found += [
        m.group(0) for m in _PARENT_CHAIN.finditer(text) if m.group(1).count(".parent") > depth + 1
    ]
    found += [m.group(0) for m in _ROOT_PARENT.finditer(text)]
    return found


def _project_files() -> list[Path]:
    files = []
    for path in PROJECT.rglob("*"):
        relative = path.relative_to(PROJECT)
        folders = relative.parts[:-1]
        if not path.is_file() or _SKIP_DIRS & set(folders):
            continue
        if any(part.startswith(".") and part != ".ci" for part in folders):
            continue  # caches; .ci/ is the project's own
        if path == Path(__file__).resolve():
            continue  # this file spells the patterns out
        if relative.parts[0] == "specs" or path.suffix not in _CHECKED_SUFFIXES:
            continue
        files.append(path)
    return files


@pytest.mark.parametrize(
    ("source", "depth"),
    [
        # (spelled in pieces so that this file itself names no folder outside the repository)
        ("SPECS = Path(__file__).resolve().parents[2] / " + '"sha' + 'red"' + ' / "specs"', 1),
        ("root = Path(__file__).resolve().parents[3]", 2),
        ("root = Path(__file__).parent.parent.parent", 1),
        ("SPECS = ROOT.parent / 'x'", 1),
        ("cat ../" + "shared/specs/x.json", 0),
        ("resources:\n  - ../../../../base", 3),
        ("open('shared/bench/run.sh')", 1),
    ],
)
def test_the_outside_reference_check_sees_every_form(source: str, depth: int) -> None:
    assert outside_references(source, depth) != []


@pytest.mark.parametrize(
    ("source", "depth"),
    [
        ("ROOT = Path(__file__).resolve().parents[1]", 1),
        ("ROOT = Path(__file__).resolve().parents[2]", 2),
        ("here = Path(__file__).resolve().parent.parent", 1),
        ('SPECS = ROOT / "specs"', 1),
        ("shared: dict[str, int] = {}", 1),
        ("resources:\n  - ../../base\n  - ../../../rewrite_rules/x.toml", 3),
    ],
)
def test_the_outside_reference_check_passes_paths_inside(source: str, depth: int) -> None:
    assert outside_references(source, depth) == []


def test_no_test_or_module_reads_outside_the_repository() -> None:
    files = _project_files()
    assert any(path.name == "spec_check.py" for path in files)  # the walk reaches tests/
    offenders = {
        str(path.relative_to(PROJECT)): refs
        for path in files
        if (
            refs := outside_references(
                path.read_text("utf-8", errors="replace"), len(path.relative_to(PROJECT).parts) - 1
            )
        )
    }
    assert offenders == {}


def test_the_specs_the_tests_use_are_in_the_repository() -> None:
    from tests.paths import SPECS

    assert SPECS.is_relative_to(PROJECT)
    names = sorted(path.name for path in SPECS.glob("*.json"))
    assert names == [
        "twilio_api_v2010_assigned_add_ons.json",
        "twilio_marketplace_v1.json",
        "twilio_preview_marketplace.json",
    ]
    assert "Apache" in (SPECS / "README.md").read_text("utf-8")


def test_serving_without_front_doors_does_not_load_cryptography() -> None:
    """``cryptography`` costs ~8 MB of RSS; only the TLS listener and the proxy need it."""
    code = "import sys, gateway.cli, gateway.lifecycle; print('cryptography' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stdout) == (0, "False\n"), result.stderr
