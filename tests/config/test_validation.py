"""gateway.config.validation: the one check of rules against a config, shared by `serve` (before any
worker starts), `create_app` and `rules check`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.app import create_app
from gateway.cli import main
from gateway.config.rules import RuleError, load_rules
from gateway.config.validation import validate
from tests.conftest import make_config
from tests.processes import python_output

EARLY_SUNSET = (
    '[[rule]]\nname = "legacy"\nmethods = ["GET"]\nfrom = "/marketplace/AvailableAddOns"\n'
    'to = "/v1/AvailableAddOns"\nupstream = "marketplace"\ndeprecated = true\n'
    "sunset = 2020-01-01T00:00:00Z\n"
)


def test_a_rule_sunset_before_the_configured_deprecation_fails_everywhere_alike(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "r.toml").write_text(EARLY_SUNSET)
    config = make_config("http://127.0.0.1:9", rules=tmp_path)
    with pytest.raises(RuleError) as from_validate:
        validate(load_rules(tmp_path), config)
    with pytest.raises(RuleError) as from_app:
        create_app(config)
    assert str(from_validate.value) == str(from_app.value)
    assert "legacy" in str(from_app.value) and "sunset" in str(from_app.value)
    assert main(["rules", "check", "--rules", str(tmp_path)], {}) == 2
    assert capsys.readouterr().err == f"gateway: {from_validate.value}\n"
    serve = subprocess.run(
        [
            sys.executable,
            "-m",
            "gateway",
            "serve",
            "--rules",
            str(tmp_path),
            "--listen",
            "127.0.0.1:0",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (serve.returncode, serve.stdout) == (2, "")
    assert serve.stderr == f"gateway: {from_validate.value}\n"


def test_a_rule_date_that_agrees_with_the_config_is_its_own() -> None:
    ruleset = load_rules()
    policies = validate(ruleset, make_config())
    assert set(policies) == {rule.name for rule in ruleset.rules if rule.deprecated}


def test_validation_needs_no_metrics() -> None:
    """The --workers supervisor validates without declaring metrics of its own."""
    code = (
        "import sys, gateway.config.validation; print('gateway.telemetry.metrics' in sys.modules)"
    )
    assert python_output(code) == "False\n"
