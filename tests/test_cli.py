"""gateway.cli: help for every verb, ``rules check`` and ``rules explain`` exit codes and output."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import RULE_OPTIONS, main
from gateway.config.options import OPTIONS
from gateway.config.rules import load_rules
from tests.processes import free_port, gateway_output, run_gateway

PROJECT = Path(__file__).resolve().parents[1]
CONFIG_FLAGS = ["--config", *(option.flag for option in OPTIONS if not option.file_only)]
RULE_FLAGS = ["--config", *(f"--{name.replace('_', '-')}" for name in RULE_OPTIONS)]
XE = "XE" + "0123456789abcdef" * 2
XF = "XF" + "0123456789abcdef" * 2
AC = "AC" + "0123456789abcdef" * 2
PN = "PN" + "0123456789abcdef" * 2


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Exit status, stdout and stderr of ``gateway ARGV`` with an empty environment."""
    try:
        status = main(argv, {})
    except SystemExit as exc:  # argparse: --help, --version and usage errors
        status = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return status, out, err


def one_line(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.parametrize(
    ("argv", "used"),
    [(["rules", "check"], [*RULE_FLAGS, "--specs"]), (["rules", "explain"], RULE_FLAGS)]
    + [(["brownout", "plan"], ["--config", "--brownouts"])],
)
def test_rules_and_brownout_help_lists_only_the_options_they_use(
    argv: list[str], used: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run([*argv, "--help"], capsys)
    assert status == 0
    listed = {word for word in one_line(out).replace(",", " ").split() if word.startswith("--")}
    assert listed - {"--help"} == set(used)


@pytest.mark.parametrize(
    ("argv", "mentions"),
    [
        ([], ["serve", "rules", "simulate", "demo", "--version"]),
        (["serve"], CONFIG_FLAGS),
        (["rules"], ["check", "explain"]),
        (["rules", "check"], RULE_FLAGS),
        (["rules", "explain"], ["METHOD", "URL", *RULE_FLAGS]),
        (["simulate"], ["--listen", "--seed", "--url-base"]),
        (["demo"], ["--listen", "--simulator-listen", "--seed", "--walkthrough"]),
    ],
    ids=["gateway", "serve", "rules", "rules-check", "rules-explain", "simulate", "demo"],
)
def test_help_exits_0_and_mentions_the_flags(
    argv: list[str], mentions: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run([*argv, "--help"], capsys)
    assert (status, err) == (0, "")
    assert out.startswith("usage: gateway")
    text = one_line(out)
    missing = [flag for flag in mentions if flag not in text]
    assert missing == []


def test_every_config_option_help_names_its_env_twin(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(["serve", "--help"], capsys)
    text = one_line(out)
    flagged = [option for option in OPTIONS if not option.file_only]
    assert [option.env for option in flagged if option.env not in text] == []


def test_python_dash_m_gateway_help() -> None:
    usage = gateway_output("--help")
    assert usage.startswith("usage: gateway")
    assert "rules" in usage and "serve" in usage


def test_no_verb_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run([], capsys)
    assert status == 2
    assert "usage: gateway" in err


def test_rules_check_prints_every_rule(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(["rules", "check"], capsys)
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["RULE", "METHODS", "FROM", "TO", "UPSTREAM", "DEPRECATED"]
    rows = {line.split()[0]: line for line in lines[1:-3] if line.strip()}
    rules = load_rules().rules
    assert sorted(rows) == sorted(rule.name for rule in rules)
    for rule in rules:
        row = rows[rule.name]
        assert rule.source.text in row and rule.target.text in row
        assert ",".join(sorted(rule.methods)) in row
    assert lines[-2] == "24 rules OK (built-in rules)"
    assert lines[-1] == (
        "patterns: 30 path parameters agree with the specs (twilio_api_v2010_assigned_add_ons.json,"
        f" twilio_marketplace_v1.json, twilio_preview_marketplace.json in {PROJECT / 'specs'})"
    )


def test_rules_check_columns_are_separated(capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(["rules", "check"], capsys)
    rows = [line.split() for line in out.splitlines()[1:] if line.startswith("preview_")]
    assert rows[0] == [
        "preview_available_add_ons",
        "GET",
        "/marketplace/AvailableAddOns",
        "/v1/AvailableAddOns",
        "marketplace",
        "yes",
    ]
    assert all(row[-2:] == ["marketplace", "yes"] for row in rows)


def test_rules_check_with_a_replacement_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "mine.toml").write_text(
        '[[rule]]\nname = "mine"\nmethods = ["GET"]\nfrom = "/old/{Sid}"\nto = "/v1/New/{Sid}"\n'
        'upstream = "api"\n',
        "utf-8",
    )
    status, out, _ = run(["rules", "check", "--rules", str(tmp_path)], capsys)
    assert status == 0
    assert out.splitlines()[1].split() == [
        "mine",
        "GET",
        "/old/{Sid}",
        "/v1/New/{Sid}",
        "api",
        "no",
    ]
    assert out.splitlines()[-2] == f"1 rules OK ({tmp_path})"
    assert out.splitlines()[-1].endswith("; 1 rules are in no spec: mine")


def test_rules_check_exits_2_when_a_pattern_disagrees_with_the_spec(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mine = tmp_path / "mine.toml"
    mine.write_text(
        '[[rule]]\nname = "fetch"\nmethods = ["GET"]\nupstream = "marketplace"\n'
        'from = "/marketplace/InstalledAddOns/{Sid}"\nto = "/v1/InstalledAddOns/{Sid}"\n'
        '[[rule]]\nname = "usage"\nmethods = ["POST"]\nupstream = "marketplace"\n'
        'from = "/v1/InstalledAddOns/{Sid}/Usage"\nto = "/v1/InstalledAddOns/{Sid}/Usage"\n'
        'patterns = { Sid = "^BI[0-9a-fA-F]{32}$" }\n',
        "utf-8",
    )
    status, out, err = run(["rules", "check", "--rules", str(tmp_path)], capsys)
    assert (status, out) == (2, "")
    xe = "'^XE[0-9a-fA-F]{32}$'"
    assert err.splitlines() == [
        f"gateway: {mine}: rule 'fetch': field 'patterns': {{Sid}}: twilio_preview_marketplace.json"
        f" /marketplace/InstalledAddOns/{{Sid}} states {xe}, the rule none",
        f"gateway: {mine}: rule 'usage': field 'patterns': {{Sid}}: twilio_marketplace_v1.json"
        f" /v1/InstalledAddOns/{{InstalledAddOnSid}}/Usage states {xe}, the rule "
        "'^BI[0-9a-fA-F]{32}$'",
    ]


def test_rules_check_against_another_copy_of_the_specs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    v1 = (PROJECT / "specs" / "twilio_marketplace_v1.json").read_text("utf-8")
    (specs / "v1.json").write_text(v1.replace("^XE[0-9a-fA-F]{32}$", "^XE[0-9a-f]{32}$"), "utf-8")
    status, out, err = run(["rules", "check", "--specs", str(specs)], capsys)
    assert (status, out) == (2, "")
    assert len(err.splitlines()) == 7  # each XE placeholder: 3 preview and 4 v1 rules
    assert all("v1.json" in line and "'^XE[0-9a-f]{32}$'" in line for line in err.splitlines())
    status, out, err = run(["rules", "check", "--specs", str(tmp_path / "nowhere")], capsys)
    assert (status, out, err) == (2, "", f"gateway: {tmp_path / 'nowhere'}: not a directory\n")


def test_rules_check_on_a_broken_directory_exits_2_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text(
        '[[rule]]\nname = "bad"\nmethods = ["GET"]\nfrom = "/x/{A}"\nto = "/v1/{B}"\n'
        'upstream = "marketplace"\n',
        "utf-8",
    )
    status, out, err = run(["rules", "check", "--rules", str(tmp_path)], capsys)
    assert (status, out) == (2, "")
    assert (
        err
        == f"gateway: {broken}: rule 'bad': field 'to': uses {{B}} which 'from' does not define\n"
    )


def test_rules_check_with_a_bad_config_value_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(["rules", "check", "--sunset-date", "soon"], capsys)
    assert (status, out) == (2, "")
    assert err.startswith("gateway: flag --sunset-date: ")
    assert err.count("\n") == 1
    # Options rules do not use still come from the environment, and are still checked there.
    status = main(["rules", "check"], {"GATEWAY_MAX_BODY_SIZE": "lots"})
    assert status == 2
    assert capsys.readouterr().err.startswith("gateway: environment variable GATEWAY_MAX_BODY")


@pytest.mark.parametrize(
    ("method", "target", "rule", "upstream_url"),
    [
        (
            "GET",
            "/marketplace/InstalledAddOns?PageToken=PTa%2Bb%3D%25==&Page=1&PageSize=5",
            "preview_installed_add_ons (preview_marketplace.toml)",
            "https://marketplace.twilio.com/v1/InstalledAddOns"
            "?PageToken=PTa%2Bb%3D%25==&Page=1&PageSize=5",
        ),
        (
            "post",
            f"https://gw.example/marketplace/InstalledAddOns/{XE}/Extensions/{XF}?x=%2F",
            "preview_installed_add_on_extension (preview_marketplace.toml)",
            f"https://marketplace.twilio.com/v1/InstalledAddOns/{XE}/Extensions/{XF}?x=%2F",
        ),
        (
            "GET",
            f"/2010-04-01/Accounts/{AC}/IncomingPhoneNumbers/{PN}/AssignedAddOns.json",
            "assigned_add_ons (assigned_add_ons.toml)",
            f"https://api.twilio.com/2010-04-01/Accounts/{AC}/IncomingPhoneNumbers/{PN}"
            "/AssignedAddOns.json",
        ),
    ],
)
def test_rules_explain_prints_rule_and_exact_upstream_url(
    method: str, target: str, rule: str, upstream_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run(["rules", "explain", method, target], capsys)
    assert (status, err) == (0, "")
    lines = out.splitlines()
    # The file really read, by its full path (here the checkout's rewrite_rules/).
    name, file = rule.split(" (")
    assert lines[0] == f"rule:       {name} ({PROJECT / 'rewrite_rules' / file}"
    assert lines[-1] == f"calls:      {method.upper()} {upstream_url}"


def test_rules_explain_uses_the_configured_upstream(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(
        [
            "rules",
            "explain",
            "GET",
            "/marketplace/AvailableAddOns?PageSize=2",
            "--marketplace-upstream",
            "http://127.0.0.1:9999/mirror",
        ],
        capsys,
    )
    assert status == 0
    assert out.splitlines()[1:] == [
        "deprecated: yes",
        "upstream:   marketplace",
        "calls:      GET http://127.0.0.1:9999/mirror/v1/AvailableAddOns?PageSize=2",
    ]


@pytest.mark.parametrize(
    ("method", "target", "message"),
    [
        ("GET", "/marketplace/Nothing", "no rule: 404 The requested resource"),
        ("PUT", f"/marketplace/InstalledAddOns/{XE}", "no rule: 405 Method PUT is not allowed"),
        ("GET", "/marketplace/InstalledAddOns/%2e%2e", "no rule: 404 The requested resource"),
    ],
)
def test_rules_explain_without_a_rule_exits_1(
    method: str, target: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, _ = run(["rules", "explain", method, target], capsys)
    assert status == 1
    assert out.startswith(message)


# --- serve: a busy port is one line and exit 2; "listening on" only once it listens -----------


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return run_gateway("serve", *args, env=env)


@pytest.mark.parametrize("workers", ["1", "3"])
def test_serve_on_a_busy_port_says_so_in_one_line_and_exits_2(busy_port: int, workers: str) -> None:
    result = _serve("--listen", f"127.0.0.1:{busy_port}", "--workers", workers)
    assert result.returncode == 2
    assert result.stderr == (
        f"gateway: cannot listen on 127.0.0.1:{busy_port}: the address is already in use\n"
    )
    assert "listening on" not in result.stdout and "workers on" not in result.stdout


def test_serve_with_a_busy_metrics_port_exits_2(busy_port: int) -> None:
    free = free_port()
    result = _serve("--listen", f"127.0.0.1:{free}", "--metrics-listen", f"127.0.0.1:{busy_port}")
    assert result.returncode == 2
    assert result.stderr == (
        f"gateway: cannot listen on 127.0.0.1:{busy_port}: the address is already in use\n"
    )
    assert "listening on" not in result.stdout


@pytest.mark.parametrize(
    ("listen", "reason"),
    [
        ("host.invalid:8080", "the host name does not resolve"),
        ("192.0.2.1:8080", "the address is not one of this machine's"),
    ],
)
def test_serve_on_an_address_it_cannot_have_exits_2(listen: str, reason: str) -> None:
    result = _serve("--listen", listen)
    assert (result.returncode, result.stderr) == (
        2,
        f"gateway: cannot listen on {listen}: {reason}\n",
    )


async def test_serve_says_listening_only_once_it_accepts_connections() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve", "--listen", f"127.0.0.1:{port}"],
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(process.stdout.readline), 30)
        assert line.endswith(f"listening on http://127.0.0.1:{port}\n"), line
        # No retry: the claim is true the moment it is printed.
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    finally:
        process.terminate()
        process.wait(20)
        if process.stdout is not None:
            process.stdout.close()
