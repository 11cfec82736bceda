"""gateway.cli: help for every verb, ``rules check`` and ``rules explain`` exit codes and output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import RULE_OPTIONS, main
from gateway.options import OPTIONS
from gateway.rules import load_rules

PROJECT = Path(__file__).resolve().parents[1]
CONFIG_FLAGS = ["--config", *(option.flag for option in OPTIONS)]
RULE_FLAGS = ["--config", *(f"--{name.replace('_', '-')}" for name in RULE_OPTIONS)]
XE = "XE" + "0123456789abcdef" * 2


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
    [(["rules", "check"], RULE_FLAGS), (["rules", "explain"], RULE_FLAGS)]
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
    assert [option.env for option in OPTIONS if option.env not in text] == []


def test_python_dash_m_gateway_help() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "--help"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: gateway")
    assert "rules" in result.stdout and "serve" in result.stdout


def test_no_verb_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run([], capsys)
    assert status == 2
    assert "usage: gateway" in err


def test_rules_check_prints_every_rule(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = run(["rules", "check"], capsys)
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].split() == ["RULE", "METHODS", "FROM", "TO", "UPSTREAM", "DEPRECATED"]
    rows = {line.split()[0]: line for line in lines[1:] if line.strip() and "rules OK" not in line}
    rules = load_rules().rules
    assert sorted(rows) == sorted(rule.name for rule in rules)
    for rule in rules:
        row = rows[rule.name]
        assert rule.source.text in row and rule.target.text in row
        assert ",".join(sorted(rule.methods)) in row
    assert lines[-1] == "24 rules OK (built-in rules)"


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
    assert out.splitlines()[-1] == f"1 rules OK ({tmp_path})"


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
            "preview_installed_add_ons (rewrite_rules/preview_marketplace.toml)",
            "https://marketplace.twilio.com/v1/InstalledAddOns"
            "?PageToken=PTa%2Bb%3D%25==&Page=1&PageSize=5",
        ),
        (
            "post",
            f"https://gw.example/marketplace/InstalledAddOns/{XE}/Extensions/XF1?x=%2F",
            "preview_installed_add_on_extension (rewrite_rules/preview_marketplace.toml)",
            f"https://marketplace.twilio.com/v1/InstalledAddOns/{XE}/Extensions/XF1?x=%2F",
        ),
        (
            "GET",
            "/2010-04-01/Accounts/AC1/IncomingPhoneNumbers/PN1/AssignedAddOns.json",
            "assigned_add_ons (rewrite_rules/assigned_add_ons.toml)",
            "https://api.twilio.com/2010-04-01/Accounts/AC1/IncomingPhoneNumbers/PN1"
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
    assert lines[0] == f"rule:       {rule}"
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
