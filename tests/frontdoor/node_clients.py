"""Running the Node clients of tests/clients/ (twilio-cli, twilio-node) as real processes.

They get a fresh environment: HTTP_PROXY (what both read) pointing at the proxy front door,
NODE_EXTRA_CA_CERTS with the interception CA, credentials through twilio-cli's own variables, a
throwaway HOME, and twilio-cli's update checks, auto-update and analytics switched off so that
nothing but the calls under test leaves the process.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.processes import run_to_end

CLIENTS = Path(__file__).resolve().parents[1] / "clients"
BIN = CLIENTS / "node_modules" / ".bin"
TIMEOUT = 60.0


def require_clients() -> None:
    """Fail under CI (scripts/test.sh installs them), skip elsewhere, when they are missing."""
    missing = shutil.which("node") is None or not (BIN / "twilio").exists()
    missing = missing or not (CLIENTS / "node_modules" / "twilio" / "package.json").exists()
    if missing:
        message = "Node clients missing: run scripts/install-node-clients.sh"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)


def installed_version(package: str) -> str:
    data = json.loads((CLIENTS / "node_modules" / package / "package.json").read_text("utf-8"))
    return str(data["version"])


def node_env(home: Path, proxy_url: str, ca: Path, account: str, token: str) -> dict[str, str]:
    node = shutil.which("node")
    assert node is not None
    return {
        "PATH": os.pathsep.join([str(BIN), str(Path(node).parent), "/usr/bin", "/bin"]),
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "HTTP_PROXY": proxy_url,
        "NODE_EXTRA_CA_CERTS": str(ca),
        "TWILIO_ACCOUNT_SID": account,
        "TWILIO_AUTH_TOKEN": token,
        "TWILIO_SKIP_NEW_VERSION_CHECK": "true",
        "TWILIO_DISABLE_AUTOUPDATE": "true",
        "TWILIO_SKIP_ANALYTICS": "1",
        "NO_COLOR": "1",
    }


async def run(argv: list[str], env: dict[str, str]) -> tuple[int, str, str]:
    return await run_to_end(argv, cwd=CLIENTS, env=env, timeout=TIMEOUT)


async def twilio_cli(env: dict[str, str], *args: str) -> Any:
    """``twilio ARGS -o json``; the parsed JSON output."""
    rc, out, err = await run([str(BIN / "twilio"), *args, "-o", "json"], env)
    assert rc == 0, (args, out, err)
    return json.loads(out) if out.strip() else None
