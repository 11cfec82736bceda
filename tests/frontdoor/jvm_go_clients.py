"""Building and running the Java and Go clients of tests/clients/java and tests/clients/go.

Each is compiled once per test session into a temporary folder (javac, and go build with its
own build cache and no module proxy, so nothing leaves the machine). The Java trust store is
made by the keytool lines that ``gateway tls init`` prints (:func:`java_trust_lines`), run as
printed. Both programs print one tab-separated line per exchange (see their sources).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.tools.trust import JAVA_STORE, JAVA_STORE_PASSWORD, java_trust_commands
from tests.processes import run_to_end

CLIENTS = Path(__file__).resolve().parents[1] / "clients"
JAVA_SOURCE = CLIENTS / "java" / "MarketplaceClient.java"
GO_SOURCE = CLIENTS / "go" / "marketplace_client.go"
TIMEOUT = 60.0
HINT = "run scripts/install-system-deps.sh (Debian's default-jdk-headless and golang-go)"
# Short-lived JVMs: the client compiler only and the serial collector start faster and use
# less CPU on a shared machine; neither changes TLS or certificate path validation.
FAST_START = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-Xshare:auto")


def require(tool: str) -> str:
    """The path of ``tool``; fail under CI (scripts/test.sh installs it), skip elsewhere."""
    found = shutil.which(tool)
    if found is None:
        message = f"no `{tool}` on PATH: {HINT}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def _build(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    result = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=180, check=False
    )
    assert result.returncode == 0, result.stderr


@dataclass(frozen=True)
class Exchange:
    method: str
    status: int
    url: str
    body: str


@dataclass(frozen=True)
class Outcome:
    """What a client did with one URL in ``probe`` mode."""

    accepted: bool
    detail: str  # the status when accepted, the error chain when rejected


def exchanges(output: str) -> list[Exchange]:
    found = []
    for line in output.splitlines():
        kind, method, status, url, body = line.split("\t", 4)
        assert kind == "EXCHANGE", line
        found.append(Exchange(method, int(status), url, body))
    return found


def outcomes(output: str) -> dict[str, Outcome]:
    found = {}
    for line in output.splitlines():
        kind, url, detail = line.split("\t", 2)
        assert kind in ("ACCEPTED", "REJECTED"), line
        found[url] = Outcome(kind == "ACCEPTED", detail)
    return found


@dataclass(frozen=True)
class JavaClient:
    classes: Path
    java: str

    @property
    def home(self) -> Path:
        """JAVA_HOME of the ``java`` on PATH (…/bin/java, links resolved)."""
        return Path(os.path.realpath(self.java)).parents[1]

    @classmethod
    def build(cls, folder: Path) -> JavaClient:
        javac, java = require("javac"), require("java")
        folder.mkdir(parents=True, exist_ok=True)
        _build([javac, "-d", str(folder), str(JAVA_SOURCE)], folder)
        return cls(folder, java)

    def trust_store(self, folder: Path, root: Path, *, public_cas: bool = True) -> Path:
        """The PKCS12 store made by the printed keytool lines: the JDK's CAs (unless not
        ``public_cas``: ``root`` alone, one keytool run less) and ``root``."""
        folder.mkdir(parents=True, exist_ok=True)
        commands = java_trust_commands(str(root))[:2]
        script = "\n".join(commands if public_cas else commands[1:])
        env = {
            "PATH": f"{self.home / 'bin'}:/usr/bin:/bin",
            "JAVA_HOME": str(self.home),
            "JAVA_TOOL_OPTIONS": " ".join(FAST_START),
        }
        _build(["bash", "-euo", "pipefail", "-c", script], folder, env)
        return folder / JAVA_STORE

    async def run(self, *args: str, properties: dict[str, str], env: dict[str, str]) -> str:
        flags = [f"-D{name}={value}" for name, value in properties.items()]
        argv = [
            self.java,
            *FAST_START,
            *flags,
            "-cp",
            str(self.classes),
            "MarketplaceClient",
            *args,
        ]
        rc, out, err = await run_to_end(argv, cwd=self.classes, env=env, timeout=TIMEOUT)
        assert rc == 0, (out, err)
        return out


def java_trust_properties(store: Path) -> dict[str, str]:
    """The -D flags of the printed ``java`` line, for the store made by :meth:`trust_store`."""
    return {
        "javax.net.ssl.trustStore": str(store),
        "javax.net.ssl.trustStoreType": "PKCS12",
        "javax.net.ssl.trustStorePassword": JAVA_STORE_PASSWORD,
    }


@dataclass(frozen=True)
class GoClient:
    binary: Path

    @classmethod
    def build(cls, folder: Path) -> GoClient:
        go = require("go")
        folder.mkdir(parents=True, exist_ok=True)
        env = {
            "PATH": f"{Path(go).parent}:/usr/bin:/bin",
            "HOME": str(folder),
            "GOCACHE": str(folder / "cache"),
            "GOPATH": str(folder / "path"),
            "GOPROXY": "off",  # the standard library only: nothing to download
            "GOFLAGS": "-mod=mod",
            "GOTOOLCHAIN": "local",
        }
        binary = folder / "marketplace_client"
        _build([go, "build", "-o", str(binary), str(GO_SOURCE)], folder, env)
        return cls(binary)

    async def run(self, *args: str, env: dict[str, str]) -> str:
        argv = [str(self.binary), *args]
        rc, out, err = await run_to_end(argv, cwd=self.binary.parent, env=env, timeout=TIMEOUT)
        assert rc == 0, (out, err)
        return out
