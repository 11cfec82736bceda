"""The README and the docs pages it reaches: what counts as documented.

A docs page counts only when a chain of relative Markdown links leads to it from the README, so a
page nobody can find documents nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

from markdown.extensions.toc import slugify

from tests.paths import ROOT

README = ROOT / "README.md"
DOCS = ROOT / "docs"

# [text](target) and [text](target "title"); images and autolinks are not pages.
_LINK = re.compile(r"(?<!!)\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def links(text: str) -> list[str]:
    """The link targets of a Markdown text, code blocks left out."""
    return _LINK.findall(_FENCE.sub("", text))


def local_target(page: Path, target: str) -> tuple[Path, str] | None:
    """The file and anchor a relative link points at, or None for a URL or mail link."""
    if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):
        return None
    path, _, anchor = target.partition("#")
    return ((page.parent / path).resolve() if path else page), anchor


def reachable_pages(start: Path = README) -> list[Path]:
    """The Markdown files reached from ``start`` by following relative links, ``start`` first."""
    seen = [start.resolve()]
    for page in seen:
        for target in links(page.read_text("utf-8")):
            found = local_target(page, target)
            if found and found[0].suffix == ".md" and found[0].is_file():
                if found[0] not in seen:
                    seen.append(found[0])
    return seen


def documented_text() -> str:
    """The README and every docs page it reaches, as one text."""
    return "\n".join(page.read_text("utf-8") for page in reachable_pages())


def anchors(page: Path) -> set[str]:
    """The heading anchors of a page, as MkDocs' ``toc`` makes them (and GitHub, for these)."""
    text = _FENCE.sub("", page.read_text("utf-8"))
    return {slugify(m.group(1).strip(), "-") for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)}
