"""The option table: every setting's name, parser, default and help, in one place.

From it come all three spellings of a setting, so they cannot drift apart: option
``max_body_size`` is flag ``--max-body-size``, variable ``GATEWAY_MAX_BODY_SIZE`` and config-file
key ``max_body_size``. A file-only option (an array of tables such as ``[[consumers]]``) has the
file key alone. The table is kept in groups, one module each (``options_serving``,
``options_upstream``, ``options_migration``, ``options_frontdoor``), which ``--help`` shows as
sections; the parsers that turn text into typed values live in :mod:`gateway.config.parsers`.
"""

from __future__ import annotations

import argparse
from collections.abc import Collection, Mapping
from typing import Any, Protocol

from gateway.config import options_frontdoor, options_migration, options_serving, options_upstream
from gateway.config.option import Option

GROUPS = (options_serving, options_upstream, options_migration, options_frontdoor)
OPTIONS: tuple[Option, ...] = tuple(option for group in GROUPS for option in group.OPTIONS)

OPTIONS_BY_NAME: Mapping[str, Option] = {option.name: option for option in OPTIONS}


def add_arguments(parser: argparse.ArgumentParser, only: Collection[str] | None = None) -> None:
    """Add ``--config`` and one flag per option (or per option named in ``only``), all
    defaulting to "not given"; options left out still come from the environment, the config
    file or their defaults."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help="TOML config file (keys as the option names below; env GATEWAY_CONFIG)",
    )
    for group in GROUPS:
        chosen = [o for o in group.OPTIONS if (only is None or o.name in only) and not o.file_only]
        file_only = [o.name for o in group.OPTIONS if o.file_only]
        note = (
            f"file-only keys (no flag or variable): {', '.join(file_only)}" if file_only else None
        )
        if chosen:
            _add_group(parser.add_argument_group(group.TITLE, note), chosen)


class _Arguments(Protocol):
    """What options are added to: a parser, or one of its argument groups."""

    def add_argument(self, *args: Any, **kwargs: Any) -> argparse.Action: ...


def _add_group(parser: _Arguments, options: list[Option]) -> None:
    for option in options:
        default_text = "" if option.default is None else f" (default: {option.default})"
        help_text = f"{option.help}{default_text}; env {option.env}"
        if option.is_flag:
            parser.add_argument(
                option.flag,
                dest=option.name,
                action="store_const",
                const="true",
                default=None,
                help=help_text,
            )
        else:
            parser.add_argument(
                option.flag,
                dest=option.name,
                metavar=option.metavar,
                default=None,
                help=help_text.replace("%", "%%"),
            )
