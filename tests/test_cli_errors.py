"""Command-line mistakes a user makes first: each is one clear line and exit status 2, never a
traceback, and argparse's own usage errors end on a line naming the flag."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from gateway.cli import main
from tests.processes import run_gateway


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of ``gateway ARGV`` with an empty environment."""
    try:
        status = main(argv, {})
    except SystemExit as exc:  # argparse's usage errors
        status = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return status, out, err


def gateway(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """A real ``python -m gateway`` process, without the GATEWAY_* variables of this one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    if cwd is None:
        return run_gateway(*args, env=env)
    return run_gateway(*args, env=env, cwd=cwd)


def assert_one_line(result: subprocess.CompletedProcess[str], line: str) -> None:
    assert (result.returncode, result.stdout, result.stderr) == (2, "", line + "\n")


def test_rules_explain_with_an_unparsable_url(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(["rules", "explain", "GET", "http://[bad"], capsys)
    assert (status, out, err) == (2, "", "gateway: URL 'http://[bad': Invalid IPv6 URL\n")


def test_a_config_file_that_is_not_utf8_at_start_up(tmp_path: Path) -> None:
    config = tmp_path / "gateway.toml"
    config.write_bytes(b'\xff[gateway]\nlisten = "127.0.0.1:0"\n')
    assert_one_line(
        gateway("serve", "--config", str(config)),
        f"gateway: config file {config}: not UTF-8 text (byte 0xff at offset 0); save it as UTF-8",
    )


def test_a_missing_tls_certificate_is_named(tmp_path: Path) -> None:
    (tmp_path / "k.pem").write_text("key")
    result = gateway("serve", "--tls-cert", "/missing.pem", "--tls-key", "k.pem", cwd=tmp_path)
    assert_one_line(result, "gateway: flag --tls-cert: /missing.pem: no such file or directory")


def test_a_missing_ca_bundle_is_named_not_a_traceback() -> None:
    result = gateway("serve", "--listen", "127.0.0.1:0", "--ca-bundle", "/missing/ca.pem")
    assert_one_line(result, "gateway: flag --ca-bundle: /missing/ca.pem: no such file or directory")


def test_a_ca_bundle_that_holds_no_certificate_is_named_not_a_traceback(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle.pem"
    bundle.write_text("not a certificate\n")
    result = gateway("serve", "--listen", "127.0.0.1:0", "--ca-bundle", str(bundle))
    assert_one_line(
        result,
        f"gateway: ca_bundle {bundle}: not a bundle of PEM CA certificates "
        "(NO_CERTIFICATE_OR_CRL_FOUND)",
    )


def test_relative_rules_in_a_config_file_are_read_beside_it(tmp_path: Path) -> None:
    folder = tmp_path / "etc"
    (folder / "myrules").mkdir(parents=True)
    (folder / "myrules" / "one.toml").write_text(
        '[[rule]]\nname = "only_one"\nmethods = ["GET"]\nfrom = "/marketplace/AvailableAddOns"\n'
        'to = "/v1/AvailableAddOns"\nupstream = "marketplace"\ndeprecated = true\n'
    )
    (folder / "gateway.toml").write_text('[gateway]\nrules = "myrules"\n')
    result = gateway("rules", "check", "--config", "etc/gateway.toml", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"1 rules OK ({folder / 'myrules'})" in result.stdout
    (folder / "gateway.toml").write_text('[gateway]\nrules = "nope"\n')
    result = gateway("rules", "check", "--config", "etc/gateway.toml", cwd=tmp_path)
    assert_one_line(
        result,
        f"gateway: config file etc/gateway.toml, key rules: {folder / 'nope'}: no such file or "
        "directory (a relative path in a config file is relative to its folder)",
    )


# --- argparse's usage errors: its own behaviour, the flag named on the last line ---------------


@pytest.mark.parametrize(
    ("argv", "last_line"),
    [
        (["serve", "--bogus"], "gateway serve: error: unrecognized arguments: --bogus"),
        (["serve", "--listen"], "gateway serve: error: argument --listen: expected one argument"),
        (
            ["rules", "explain", "GET", "/x", "--nope", "1"],
            "gateway rules explain: error: unrecognized arguments: --nope 1",
        ),
        (
            ["report", "--format", "xml"],
            "gateway report: error: argument --format: invalid choice: 'xml' "
            "(choose from 'text', 'json')",
        ),
        (
            ["scan", ".", "--max-bytes", "lots"],
            "gateway scan: error: argument --max-bytes: expected a size like 512K or 1M, "
            "got 'lots'",
        ),
        (
            ["tls", "init", "--days", "many", "x"],
            "gateway tls init: error: argument --days: invalid int value: 'many'",
        ),
        (["demo", "--wat"], "gateway demo: error: unrecognized arguments: --wat"),
    ],
)
def test_a_usage_error_ends_on_a_line_naming_the_flag(
    argv: list[str], last_line: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(argv, capsys)
    assert (status, out) == (2, "")
    lines = err.splitlines()
    assert lines[0].startswith(f"usage: gateway {argv[0]}")  # the verb's usage, not the top's
    assert lines[-1] == last_line
