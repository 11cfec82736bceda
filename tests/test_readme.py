"""The README documents every flag, variable, file key, metric, error code and command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from gateway.config.options import OPTIONS
from gateway.errors import GATEWAY_CODES
from gateway.telemetry import metrics  # noqa: F401  (declares the metrics)

README = (Path(__file__).resolve().parents[1] / "README.md").read_text("utf-8")


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: o.name)
def test_every_option_has_its_three_spellings(option: object) -> None:
    from gateway.config.option import Option

    assert isinstance(option, Option)
    spellings = (option.flag, option.env, f"`{option.name}`")
    for spelling in spellings[2:] if option.file_only else spellings:
        assert spelling in README, spelling


def test_every_metric_is_documented() -> None:
    names = {
        family.name + ("_total" if family.type == "counter" else "")
        for family in REGISTRY.collect()
        if family.name.startswith("gateway_")
    }
    assert len(names) == 14
    for name in names:
        assert f"`{name}`" in README, name


def test_every_gateway_error_code_is_documented() -> None:
    for code in [*GATEWAY_CODES, 20404, 20004]:
        assert re.search(rf"\| {code} \|", README), code


def test_every_command_is_documented() -> None:
    for command in (
        "gateway serve",
        "gateway demo",
        "gateway simulate",
        "gateway rules check",
        "gateway rules explain",
        "gateway brownout plan",
        "gateway report",
        "gateway scan",
        "gateway tls init",
    ):
        assert f"`{command}" in README, command


def test_exactly_two_setup_commands() -> None:
    setup = README.split("## Set up", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", setup, re.S)
    assert [block.strip() for block in blocks] == [
        "python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/gateway demo",
        "bash scripts/test.sh",
    ]
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text("utf-8")
    assert "exec bash scripts/test.sh" in ci
