"""Where the project's own files are: the repository root and the OpenAPI specs inside it.

Tests read only from the repository (tests/test_layout.py enforces it), so a fresh clone with
nothing beside it runs the whole suite.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"
