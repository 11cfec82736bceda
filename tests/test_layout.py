"""Project layout: tests mirror gateway/, the core never imports the simulator, a small surface."""

from __future__ import annotations

import ast
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
    "walkthrough": "the scripted session of gateway demo --walkthrough, run by test_demo",
    "options": "the option table and its value parsers; every option is parsed in test_config "
    "and every spelling checked against the README in test_readme",
}

# The only core modules that may wire the simulator in (besides gateway/simulator/ itself).
MAY_IMPORT_SIMULATOR = {"cli.py", "demo.py"}

PUBLIC_SURFACE = ["GatewayConfig", "__version__", "create_app", "load_config"]


def core_modules() -> list[str]:
    return sorted(path.stem for path in PACKAGE.glob("*.py"))


@pytest.mark.parametrize("module", core_modules())
def test_every_module_has_a_test_file_or_a_reason(module: str) -> None:
    has_tests = (TESTS / f"test_{module}.py").is_file()
    assert has_tests or module in NO_OWN_TEST_FILE, (
        f"gateway/{module}.py has no tests/test_{module}.py; write one, or add it to "
        "NO_OWN_TEST_FILE in tests/test_layout.py with the reason"
    )


def test_allow_list_holds_only_real_modules_without_test_files() -> None:
    for module in NO_OWN_TEST_FILE:
        assert (PACKAGE / f"{module}.py").is_file(), module
        assert not (TESTS / f"test_{module}.py").exists(), f"{module} has tests now; unlist it"
    assert len(NO_OWN_TEST_FILE) <= 5


def simulator_imports(source: str, filename: str = "<source>") -> list[str]:
    """Every way ``source`` reaches gateway.simulator: import forms and import_module strings."""
    found: list[str] = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            found += [
                a.name for a in node.names if a.name.split(".")[:2] == ["gateway", "simulator"]
            ]
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level == 0 and module.split(".")[:2] == ["gateway", "simulator"]:
                found.append(module)
            elif node.level == 0 and module == "gateway":
                found += [f"gateway.{a.name}" for a in node.names if a.name == "simulator"]
            elif node.level == 1 and module.split(".")[0] == "simulator":
                found.append("." + module)
            elif node.level == 1 and not module:
                found += ["." + a.name for a in node.names if a.name == "simulator"]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value.startswith("gateway.simulator"):  # importlib.import_module("...")
                found.append(node.value)
    return found


@pytest.mark.parametrize(
    "source",
    [
        "import gateway.simulator",
        "import gateway.simulator.store as s",
        "from gateway.simulator import create_simulator_app",
        "from gateway.simulator.store import Store",
        "from gateway import simulator",
        "from gateway import rules, simulator as sim",
        "from . import simulator",
        "from .simulator import create_simulator_app",
        "from .simulator.store import Store",
        "def f():\n    from gateway.simulator import x\n",
        "import importlib\nimportlib.import_module('gateway.simulator')",
    ],
)
def test_the_import_checker_sees_every_form(source: str) -> None:
    assert simulator_imports(source) != []


@pytest.mark.parametrize(
    "source",
    [
        "import gateway.rules",
        "from gateway import rules",
        "from . import routing",
        "x = 'simulator'",
    ],
)
def test_the_import_checker_ignores_other_imports(source: str) -> None:
    assert simulator_imports(source) == []


def test_core_modules_do_not_import_the_simulator() -> None:
    offenders = {
        path.name: imports
        for path in sorted(PACKAGE.glob("*.py"))
        if path.name not in MAY_IMPORT_SIMULATOR
        and (imports := simulator_imports(path.read_text("utf-8"), str(path)))
    }
    assert offenders == {}


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
_OUTSIDE_NAME = re.compile(
    r"""(?<![\w./])\.\./|(?<![\w-])shared/(?:specs|docs|bench|hooks)\b|["']shared["']"""
)
_PARENTS_INDEX = re.compile(r"\.parents\[(\d+)\]")
_PARENT_CHAIN = re.compile(r"__file__\)(?:\.resolve\(\))?((?:\.parent)+)")
_ROOT_PARENT = re.compile(r"\b(?:ROOT|PROJECT|PROJECT_ROOT|REPO)\.parent\b")


def outside_references(text: str, depth: int) -> list[str]:
    """Places where ``text``, a file ``depth`` folders below the root, reaches past the root.

    ``Path(__file__).parents[depth]`` is the root itself; a higher index, a longer
    ``.parent`` chain, ``ROOT.parent``, ``../`` or a ``shared/`` folder is outside.
    """
    found = [m.group(0) for m in _OUTSIDE_NAME.finditer(text)]
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
        ('SPECS = Path(__file__).resolve().parents[2] / "shared" / "specs"', 1),
        ("root = Path(__file__).resolve().parents[3]", 2),
        ("root = Path(__file__).parent.parent.parent", 1),
        ("SPECS = ROOT.parent / 'x'", 1),
        ("cat ../shared/specs/x.json", 0),
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
