"""gateway.version: one version, the same as the package metadata's."""

from __future__ import annotations

import tomllib

from gateway.version import __version__
from tests.paths import ROOT


def test_the_version_is_the_one_pyproject_builds() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    assert __version__ == pyproject["project"]["version"]
