"""Project layout: tests mirror gateway/'s parts, the parts import each other one way only (the
import-linter contracts in pyproject.toml), modules stay small, a small public surface, and
nothing reaches outside the repository."""

from __future__ import annotations

import fnmatch
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import grimp
import pytest

import gateway

PROJECT = Path(__file__).resolve().parents[1]
PACKAGE = PROJECT / "gateway"
TESTS = PROJECT / "tests"

# The parts of gateway/ whose modules each have a tests/<part>/test_<module>.py. The front doors
# and the simulator are tested by behaviour in tests/frontdoor/ and tests/simulator/.
MIRRORED_PARTS = ("config", "serving", "rewrite", "migration", "telemetry", "tools", "transport")

# Modules without a test file of their own, and why. Keep this list short.
NO_OWN_TEST_FILE = {
    "__init__": "its public surface is checked by test_public_surface_is_exactly_all below",
    "__main__": "two lines; run by test_cli.test_python_dash_m_gateway_help",
    "models": "frozen value types without behaviour; built and compared in test_routing and "
    "test_request_rewrite",
    "tools/walkthrough": "the scripted session of gateway demo --walkthrough, run by "
    "tests/tools/test_demo",
    "tools/scan_patterns": "the language patterns of gateway scan, each exercised through "
    "scan.scan_text in tests/tools/test_scan",
    "config/option": "the Option type; its three spellings are checked for every option in "
    "config/test_options and against the docs in test_readme",
    "config/options_*": "the option table's groups, data only; config/test_options checks that "
    "each option sits in exactly one and --help shows it under the group's title",
}

PUBLIC_SURFACE = ["GatewayConfig", "__version__", "create_app", "load_config"]
MAX_MODULE_LINES = 400  # docs/design: aim under ~300, split before 400


def mirrored_modules() -> list[str]:
    """Modules of the root and of the mirrored parts, as paths relative to gateway/."""
    found = [path.stem for path in PACKAGE.glob("*.py")]
    for part in MIRRORED_PARTS:
        found += [f"{part}/{p.stem}" for p in (PACKAGE / part).glob("*.py") if p.stem != "__init__"]
    return sorted(found)


def _allowed_without_test_file(module: str) -> bool:
    return any(fnmatch.fnmatchcase(module, pattern) for pattern in NO_OWN_TEST_FILE)


def _test_file(module: str) -> Path:
    folder, _, name = module.rpartition("/")
    return TESTS / folder / f"test_{name}.py"


@pytest.mark.parametrize("module", mirrored_modules())
def test_every_module_has_a_test_file_or_a_reason(module: str) -> None:
    test_file = _test_file(module)
    assert test_file.is_file() or _allowed_without_test_file(module), (
        f"gateway/{module}.py has no {test_file.relative_to(PROJECT)}; write one, or add it to "
        "NO_OWN_TEST_FILE in tests/test_layout.py with the reason"
    )


def test_allow_list_holds_only_real_modules_without_test_files() -> None:
    for pattern in NO_OWN_TEST_FILE:
        matched = [m for m in [*mirrored_modules(), "__init__"] if fnmatch.fnmatchcase(m, pattern)]
        assert matched, pattern
        for module in matched:
            assert not _test_file(module).exists(), f"{module} has tests now; unlist it"
    assert len(NO_OWN_TEST_FILE) <= 7


def test_every_part_is_a_package_that_says_what_it_may_import() -> None:
    for part in (*MIRRORED_PARTS, "frontdoor", "simulator"):
        init = PACKAGE / part / "__init__.py"
        doc = init.read_text("utf-8")
        assert doc.startswith('"""'), part
        assert (TESTS / part / "__init__.py").is_file(), part
    for part in ("config", "serving", "rewrite", "migration", "telemetry", "transport"):
        assert "import" in (PACKAGE / part / "__init__.py").read_text("utf-8"), part


@pytest.mark.parametrize(
    "module", sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")), ids=str
)
def test_every_module_stays_small(module: str) -> None:
    """Core, tools and simulator alike."""
    lines = len((PACKAGE / module).read_text("utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"gateway/{module} has {lines} lines; split it"


# --- One-way imports -------------------------------------------------------------------------


def _lint_imports(package_parent: Path) -> tuple[int, str]:
    """Run import-linter with pyproject.toml's contracts over the gateway/ in ``package_parent``."""
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    run = "import sys; from importlinter.cli import lint_imports_command as c; sys.exit(c())"
    command = [sys.executable, "-c", run, "--no-cache", "--config", str(PROJECT / "pyproject.toml")]
    result = subprocess.run(
        command, cwd=package_parent, env=env, capture_output=True, text=True, check=False
    )
    return result.returncode, result.stdout + result.stderr


def _contracts() -> list[dict[str, object]]:
    pyproject = tomllib.loads((PROJECT / "pyproject.toml").read_text("utf-8"))
    contracts: list[dict[str, object]] = pyproject["tool"]["importlinter"]["contracts"]
    return contracts


def test_the_import_contracts_hold() -> None:
    code, output = _lint_imports(PROJECT)
    assert code == 0 and "0 broken" in output, output


# One planted module per contract, each breaking exactly that contract: (contract id, file under
# gateway/, its source).
PLANTED = [
    ("face", "serving/planted_face.py", "import gateway\n"),
    ("parts", "migration/planted_cycle.py", "from gateway.routes import Route\n"),
    ("config", "config/planted_config.py", "from gateway.serving import headers\n"),
    ("rewrite", "rewrite/planted_rewrite.py", "from gateway.telemetry import metrics\n"),
    ("tracking", "telemetry/planted_tracking.py", "from gateway.serving import server\n"),
    ("transport", "transport/planted_transport.py", "from gateway.frontdoor import names\n"),
    ("tools", "proxy_planted.py", "def f():\n    from gateway.tools import scan\n"),
    ("simulator", "frontdoor/planted_simulator.py", "import gateway.simulator.store\n"),
]


def test_every_contract_is_planted_once() -> None:
    assert sorted(p[0] for p in PLANTED) == sorted(str(c["id"]) for c in _contracts())


def test_each_contract_fires_on_a_planted_import(tmp_path: Path) -> None:
    """A copy of gateway/ with one planted import per contract: each contract reports its own."""
    copy = tmp_path / "gateway"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    for _, file, source in PLANTED:
        (copy / file).write_text(source, "utf-8")
    code, output = _lint_imports(tmp_path)
    assert code != 0
    broken = {str(c["name"]) for c in _contracts()}
    flat = " ".join(output.split())
    for contract in _contracts():
        name = " ".join(str(contract["name"]).split())
        assert f"{name} BROKEN" in flat, (contract["id"], output)
    assert f"Contracts: 0 kept, {len(broken)} broken" in flat, output


def test_the_forbidden_lists_name_every_part_they_must() -> None:
    """A new top-level module or part of gateway/ must be placed in the contracts: every one is
    either allowed to the source by name below or forbidden to it in pyproject.toml."""
    tops = {p.stem for p in PACKAGE.glob("*.py")} | {
        p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()
    }
    tops -= {"__init__", "__main__"}
    allowed = {
        "config": {"config", "errors", "version"},
        "rewrite": {"rewrite", "config", "errors", "models", "version"},
        "transport": {  # serving.server (aiohttp's private API) reaches telemetry and migration
            "transport",
            "config",
            "serving",
            "rewrite",
            "telemetry",
            "migration",
            "errors",
            "models",
            "version",
        },
        "tracking": {
            "migration",
            "telemetry",
            "config",
            "errors",
            "models",
            "version",
            "routes",
            "routing",
            "request_rewrite",
            "rewrite",
        },
    }
    by_id = {str(c["id"]): c for c in _contracts()}
    for contract_id, own in allowed.items():
        forbidden = {
            str(m).removeprefix("gateway.") for m in by_id[contract_id]["forbidden_modules"]
        }
        assert tops - own == forbidden, contract_id


def test_no_import_loop_among_gateway_modules() -> None:
    """Module level, lazy and type-checking imports included (grimp's graph)."""
    graph = grimp.build_graph("gateway", cache_dir=None)
    loops = [
        (module, other)
        for module in graph.modules
        for other in graph.find_modules_directly_imported_by(module)
        if graph.chain_exists(importer=other, imported=module)
    ]
    assert loops == []


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
    from gateway.config.settings import GatewayConfig as ConfigClass
    from gateway.config.settings import load_config as config_load

    assert (create_app, GatewayConfig, load_config) == (app_create_app, ConfigClass, config_load)
    assert __version__ == "0.1.0"
    with pytest.raises(AttributeError):
        gateway.no_such_name  # noqa: B018


def test_importing_a_pure_module_does_not_start_the_server_stack() -> None:
    code = (
        "import sys, gateway.config.rules, gateway.routing, gateway.rewrite.response_rewrite; "
        "print(sorted(m for m in ('gateway.app', 'gateway.simulator', 'aiohttp.web') "
        "if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=PROJECT, capture_output=True, text=True, check=False
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "[]\n", "")


# --- The repository is self-contained ------------------------------------------------------
# Nothing may read from beside the checkout (a fresh clone has nothing there), benchmarks/
# included: its harness lives in benchmarks/harness/.

_SKIP_DIRS = {".git", ".venv", "build", "dist", "node_modules", "__pycache__"}
_CHECKED_SUFFIXES = {
    *(".py", ".sh", ".toml", ".cfg", ".ini", ".yml", ".yaml", ".json", ""),
    *(".lua", ".tmpl", ".md"),
}
# (a quoted word used as a subscript, such as a key of speedscope's profile document, is a key,
# not a folder)
_OUTSIDE_NAME = re.compile(
    r"""(?<![\w-])shared/(?:specs|docs|bench|hooks)\b|(?<!\[)["']shared["'](?!\])"""
)
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
        ("see ../" + "sha" + "red/bench/README.md for the harness", 1),
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
        ('frames = doc["' + "sha" + 'red"]["frames"]', 1),  # spelled in pieces, as above
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
