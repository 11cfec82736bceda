"""The trust lines ``gateway tls init`` prints: absolute paths, quoted for the shell, and the
Java lines that tests/frontdoor/test_clients_jvm_go.py runs."""

from __future__ import annotations

import shlex
from pathlib import Path

from gateway.tools.trust import java_trust_commands, java_trust_lines, trust_instructions
from tests.paths import ROOT


def test_paths_are_quoted_for_the_shell() -> None:
    root, key = Path("/srv/my ca/ca.pem"), Path("/srv/my ca/ca-key.pem")
    text = trust_instructions(root, key, ["preview.twilio.com"])
    assert "NODE_EXTRA_CA_CERTS='/srv/my ca/ca.pem'\n" in text
    assert "--proxy-ca-cert '/srv/my ca/ca.pem' --proxy-ca-key '/srv/my ca/ca-key.pem'" in text
    for line in java_trust_lines("'/srv/my ca/ca.pem'"):
        assert line in text


def test_the_java_lines_are_three_commands() -> None:
    joined = "\n".join(java_trust_lines("/ca.pem")).replace("\\\n", " ")
    commands = [shlex.split(line, comments=True) for line in joined.splitlines()]
    assert [c[:2] for c in commands] == [
        ["keytool", "-importkeystore"],
        ["keytool", "-importcert"],
        ["java", "-Djavax.net.ssl.trustStore=$PWD/gateway-trust.p12"],
    ]
    assert "-Djavax.net.ssl.trustStorePassword=changeit" in commands[2]


def test_the_docs_show_the_java_lines_that_are_printed_and_tested() -> None:
    page = (ROOT / "docs" / "https-front-doors.md").read_text("utf-8")
    assert "\n".join(java_trust_commands("./gateway-ca/ca.pem", "gateway", 3128)) in page
