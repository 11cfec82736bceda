"""One setting of the option table: its name, parser, default and help, and from them its three
spellings (flag, environment variable, config-file key), or its file key alone for a file-only
setting."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Option:
    """One setting: its name, how to parse it from text, its default and its help."""

    name: str
    parse: Callable[[str], Any]
    default: Any
    help: str
    metavar: str = "VALUE"
    is_flag: bool = False  # a boolean switch on the command line
    # Only in the config file (an array of tables): no flag, no environment variable; ``parse``
    # then takes the value as tomllib read it.
    file_only: bool = False

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return "GATEWAY_" + self.name.upper()
