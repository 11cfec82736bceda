"""gateway.config.options: the option table, kept in groups, and its flags in --help."""

from __future__ import annotations

import argparse

from gateway.config import options
from gateway.config.options import GROUPS, OPTIONS, OPTIONS_BY_NAME, add_arguments


def test_every_option_has_a_flag_an_env_twin_and_a_file_key() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    help_text = " ".join(parser.format_help().split())
    for option in OPTIONS:
        assert option.flag == "--" + option.name.replace("_", "-")
        assert option.env == "GATEWAY_" + option.name.upper()
        if option.file_only:
            continue
        assert option.flag in help_text
        assert f"env {option.env}" in help_text


def test_file_only_options_have_no_flag_and_help_names_them() -> None:
    file_only = [option.name for option in OPTIONS if option.file_only]
    assert file_only == ["brownout", "consumers"]
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    text = " ".join(parser.format_help().split())
    assert "--consumers" not in text and "--brownout " not in text
    assert "file-only keys (no flag or variable): brownout, consumers" in text


def test_each_option_sits_in_exactly_one_group() -> None:
    names = [option.name for group in GROUPS for option in group.OPTIONS]
    assert len(names) == len(set(names)) == len(OPTIONS) == len(OPTIONS_BY_NAME)
    assert [group.TITLE for group in GROUPS] == [
        "Serving clients",
        "Upstream",
        "Migration",
        "HTTPS front doors",
    ]


def test_help_shows_each_option_under_its_groups_title() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    text = parser.format_help()
    for group in GROUPS:
        section = text.split(f"\n{group.TITLE}:\n", 1)[1]
        if section.startswith("  file-only keys"):  # the group's description comes first
            section = section.split("\n\n", 1)[1]
        section = section.split("\n\n", 1)[0]
        for option in group.OPTIONS:
            if option.file_only:
                continue
            assert option.flag in section, (group.TITLE, option.name)


def test_only_shows_the_named_options_and_leaves_empty_groups_out() -> None:
    parser = argparse.ArgumentParser()
    add_arguments(parser, only=("brownouts",))
    text = parser.format_help()
    assert "--brownouts" in text and "Migration:" in text
    assert "--listen" not in text and "Serving clients:" not in text
    assert options.OPTIONS is OPTIONS
