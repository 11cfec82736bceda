"""``gateway serve`` as a real process with both front doors, driven by curl: the proxy way
(``-x ... --cacert``), the TLS listener (DNS shape, ``--connect-to``), the CA key, which never
shows in a log line, a response or a metric, and a one-level CA from an earlier ``tls init``.
curl trusts ca.pem alone: it verifies because each leaf is served with the intermediate."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from tests.processes import free_port, gateway_output, spawn, wait_for_200

from .conftest import ACCOUNT, PREVIEW, TOKEN, write_one_level_ca

pytestmark = [
    pytest.mark.slow,
    pytest.mark.upstream,
    pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed"),
]


async def curl(*args: str) -> tuple[int, bytes, bytes]:
    process = await asyncio.create_subprocess_exec(
        "curl", "-sS", "--max-time", "20", "--noproxy", "", *args,
        env={"PATH": "/usr/bin:/bin"},  # no *_PROXY or CA variables from this environment
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, out, err


async def wait_for(url: str, *curl_args: str, process: subprocess.Popen[bytes]) -> None:
    for _ in range(150):
        assert process.poll() is None, "gateway exited early"
        rc, out, _ = await curl(*curl_args, url)
        if rc == 0 and b'"ready"' in out:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never became ready")


@pytest.fixture
def simulator() -> Iterator[str]:
    port = free_port()
    process = spawn(None, "simulate", "--listen", f"127.0.0.1:{port}")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def secret_forms(key_file: Path) -> list[bytes]:
    """Every way the CA key could leak: PEM lines, DER, hex and base64 of the raw scalar."""
    pem = key_file.read_bytes()
    lines = [line for line in pem.splitlines() if line and not line.startswith(b"-----")]
    key = serialization.load_pem_private_key(pem, None)
    der = key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    scalar = key.private_numbers().private_value.to_bytes(32, "big")  # type: ignore[union-attr]
    return [*lines, der[-40:], scalar, scalar.hex().encode(), base64.b64encode(scalar)]


async def test_curl_through_the_proxy_and_the_ca_key_never_leaks(
    simulator: str, tmp_path: Path
) -> None:
    gateway_output("tls", "init", str(tmp_path / "ca"))
    ca, key = tmp_path / "ca" / "ca.pem", tmp_path / "ca" / "ca-key.pem"
    port, proxy_port = free_port(), free_port()
    log = tmp_path / "gateway.log"
    process = spawn(
        log,
        "serve", "--listen", f"127.0.0.1:{port}",
        "--marketplace-upstream", simulator, "--api-upstream", simulator,
        "--proxy-listen", f"127.0.0.1:{proxy_port}",
        "--proxy-ca-cert", str(ca), "--proxy-ca-key", str(key),
        "--log-level", "debug",
    )  # fmt: skip
    proxy = f"http://127.0.0.1:{proxy_port}"
    answers: list[bytes] = []
    try:
        await wait_for(f"http://127.0.0.1:{port}/readyz", process=process)
        auth = ("-u", f"{ACCOUNT}:{TOKEN}")
        url = f"https://{PREVIEW}/marketplace/AvailableAddOns?PageSize=3"
        pages = 0
        while url:  # follow next_page_url through the proxy, as a client does
            rc, out, err = await curl("-x", proxy, "--cacert", str(ca), *auth, url)
            assert rc == 0, err
            answers.append(out)
            body = json.loads(out)
            assert body["meta"]["url"].startswith(f"https://{PREVIEW}/marketplace/")
            url = body["meta"]["next_page_url"]
            pages += 1
        assert pages == 3

        rc, out, err = await curl("-x", proxy, *auth, f"https://{PREVIEW}/marketplace/Nope")
        assert rc == 60 and not out  # curl does not trust the CA without --cacert
        rc, out, err = await curl("-x", proxy, "http://example.com/")
        answers.append(out)
        assert rc == 0 and json.loads(out)["code"] == 88011
        rc, out, err = await curl("-p", "-x", proxy, "--cacert", str(ca), "https://example.com/")
        assert rc == 56 and b"403" in err  # the CONNECT was refused
        rc, out, err = await curl(
            "-x", proxy, "--cacert", str(ca), "--tlsv1.2", "--tls-max", "1.2", *auth,
            f"https://{PREVIEW}/marketplace/InstalledAddOns/XE{'0' * 32}",
        )  # fmt: skip
        answers.append(out)
        assert rc == 0 and json.loads(out)["code"] == 20404

        rc, metrics, _ = await curl(f"http://127.0.0.1:{port}/metrics")
        answers.append(metrics)
        text = metrics.decode()
        # 3 pages, the untrusting curl (the CONNECT was intercepted, its handshake failed), a 404
        assert 'gateway_proxy_connects_total{outcome="intercepted"} 5.0' in text
        assert 'gateway_proxy_connects_total{outcome="refused"} 2.0' in text
        assert 'front_door="proxy",method="GET",route="preview_available_add_ons"' in text
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
    logged = log.read_bytes()
    assert b'"front_door":"proxy"' in logged  # the access log saw the intercepted requests
    assert b"TLS handshake for preview.twilio.com failed" in logged  # curl without --cacert
    for form in secret_forms(key):
        assert form not in logged
        for answer in answers:
            assert form not in answer


async def test_the_tls_listener_serves_health_and_preview_over_https(
    simulator: str, tmp_path: Path
) -> None:
    gateway_output("tls", "init", str(tmp_path))
    gateway_output("tls", "issue", str(tmp_path))
    port = free_port()
    log = tmp_path / "gateway.log"
    process = spawn(
        log,
        "serve", "--listen", f"127.0.0.1:{port}",
        "--marketplace-upstream", simulator, "--api-upstream", simulator,
        "--tls-cert", str(tmp_path / f"{PREVIEW}.pem"),
        "--tls-key", str(tmp_path / f"{PREVIEW}-key.pem"),
    )  # fmt: skip
    # DNS shape: the client dials preview.twilio.com:443 and lands on the gateway's listener.
    reach = (
        "--cacert",
        str(tmp_path / "ca.pem"),
        "--connect-to",
        f"{PREVIEW}:443:127.0.0.1:{port}",
    )
    try:
        await wait_for(f"https://{PREVIEW}/readyz", *reach, process=process)
        rc, out, _ = await curl(*reach, f"https://{PREVIEW}/healthz")
        assert (rc, json.loads(out)) == (0, {"status": "ok"})
        rc, out, err = await curl(
            *reach, "-u", f"{ACCOUNT}:{TOKEN}", f"https://{PREVIEW}/marketplace/AvailableAddOns"
        )
        assert rc == 0, err
        add_ons = json.loads(out)["available_add_ons"]
        assert (
            add_ons[0]["url"]
            == f"https://{PREVIEW}/marketplace/AvailableAddOns/{add_ons[0]['sid']}"
        )
        rc, out, _ = await curl(f"http://127.0.0.1:{port}/healthz")
        assert rc != 0 or b'"ok"' not in out  # plain HTTP is not served on a TLS listener
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
    assert f"listening on https://127.0.0.1:{port}" in log.read_text()


@pytest.mark.parametrize(
    ("workers", "loop"), [(1, "uvloop"), (1, "asyncio"), (2, "uvloop")], ids=str
)
async def test_a_one_level_ca_still_serves_with_exactly_one_warning(
    simulator: str, tmp_path: Path, workers: int, loop: str
) -> None:
    """A CA folder from the earlier, one-level ``tls init``: the proxy still intercepts with
    it (curl trusts its ca.pem), and start-up says once, however many processes load it,
    what the risk is and how to re-create it."""
    old = write_one_level_ca(tmp_path / "old-ca")
    port, proxy_port = free_port(), free_port()
    log = tmp_path / "gateway.log"
    process = spawn(
        log,
        "serve", "--listen", f"127.0.0.1:{port}", "--workers", str(workers),
        "--marketplace-upstream", simulator, "--api-upstream", simulator,
        "--proxy-listen", f"127.0.0.1:{proxy_port}",
        "--proxy-ca-cert", str(old.cert), "--proxy-ca-key", str(old.key),
        loop=loop,
    )  # fmt: skip
    try:
        await wait_for(f"http://127.0.0.1:{port}/readyz", process=process)
        auth = base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
        await wait_for_200(  # the simulator too (it may start later than the gateway)
            f"http://127.0.0.1:{port}/marketplace/AvailableAddOns",
            failure="the simulator never answered",
            headers={"Authorization": f"Basic {auth}"},
        )
        for _ in range(2 * workers):  # with workers, likely more than one of them answers
            rc, out, err = await curl(
                "-x", f"http://127.0.0.1:{proxy_port}", "--cacert", str(old.cert),
                "-u", f"{ACCOUNT}:{TOKEN}", f"https://{PREVIEW}/marketplace/AvailableAddOns",
            )  # fmt: skip
            assert rc == 0, err
            assert json.loads(out)["available_add_ons"]
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0
    text = log.read_text()
    warnings = [line for line in text.splitlines() if "one-level CA" in line]
    assert len(warnings) == 1, text
    assert "WARNING" in warnings[0] and str(old.cert) in warnings[0]
    assert f"gateway tls init {tmp_path / 'old-ca'} --force" in warnings[0]
