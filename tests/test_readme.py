"""Every flag, variable, file key, metric, error code and command is documented in the README or
in a docs page it links (tests/docs_pages.py: only pages reached from the README count), and the
README stays a few screens long, with its two set-up commands."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from gateway.config.options import OPTIONS
from gateway.errors import GATEWAY_CODES
from gateway.telemetry import metrics  # noqa: F401  (declares the metrics)
from tests.docs_pages import DOCS, README, documented_text, reachable_pages

DOCUMENTED = documented_text()
README_TEXT = README.read_text("utf-8")
MAX_README_LINES = 250  # issue 19: the first screens; everything else is reference in docs/


@pytest.mark.parametrize("option", OPTIONS, ids=lambda o: o.name)
def test_every_option_has_its_three_spellings(option: object) -> None:
    from gateway.config.option import Option

    assert isinstance(option, Option)
    spellings = (option.flag, option.env, f"`{option.name}`")
    for spelling in spellings[2:] if option.file_only else spellings:
        assert spelling in DOCUMENTED, spelling


def test_every_metric_is_documented() -> None:
    names = {
        family.name + ("_total" if family.type == "counter" else "")
        for family in REGISTRY.collect()
        if family.name.startswith("gateway_")
    }
    assert len(names) == 16
    for name in names:
        assert f"`{name}`" in DOCUMENTED, name


def test_every_gateway_error_code_is_documented() -> None:
    for code in [*GATEWAY_CODES, 20404, 20004]:
        assert re.search(rf"\| {code} \|", DOCUMENTED), code


def test_every_command_is_documented() -> None:
    for command in (
        "gateway serve",
        "gateway demo",
        "gateway simulate",
        "gateway rules check",
        "gateway rules explain",
        "gateway brownout plan",
        "gateway report",
        "gateway consumers",
        "gateway scan",
        "gateway tls init",
        "gateway tls issue",
        "gateway healthcheck",
    ):
        assert f"`{command}" in DOCUMENTED, command


def test_exactly_two_setup_commands() -> None:
    setup = README_TEXT.split("## Set up", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", setup, re.S)
    assert [block.strip() for block in blocks] == [
        "python3 -m venv .venv && .venv/bin/pip install . && .venv/bin/gateway demo",
        "bash scripts/test.sh",
    ]
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text("utf-8")
    assert "exec bash scripts/test.sh" in ci


def test_the_readme_fits_on_a_few_screens() -> None:
    lines = len(README_TEXT.splitlines())
    assert lines <= MAX_README_LINES, (
        f"README.md has {lines} lines; reference belongs in a docs/ page the README links"
    )


def test_the_readme_keeps_the_newcomers_sections() -> None:
    headings = re.findall(r"^## (.+)$", README_TEXT, re.M)
    for heading in ("Set up", "A 60-second walkthrough", "Connecting an app", "Code map"):
        assert heading in headings, heading


def test_every_docs_page_counts_only_through_the_readme(tmp_path: Path) -> None:
    """What a page says counts once a chain of links reaches it, and not otherwise."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "README.md").write_text("[a](docs/a.md#x) and [site](https://example.com/b.md)")
    (tmp_path / "docs" / "a.md").write_text("# A\n\n[b](b.md), ![img](c.md)\n```\n[c](c.md)\n```")
    for name in ("b", "c"):
        (tmp_path / "docs" / f"{name}.md").write_text(f"# {name}")
    reached = [p.name for p in reachable_pages(tmp_path / "README.md")]
    assert reached == ["README.md", "a.md", "b.md"]


def test_the_real_readme_reaches_every_docs_page() -> None:
    reached = set(reachable_pages())
    for page in sorted(DOCS.glob("*.md")):
        assert page.resolve() in reached, f"no link chain from README.md reaches {page.name}"
