"""Write the generated parts of the reference docs from the code, so they cannot drift from it.

    .venv/bin/python scripts/gen_docs.py           # rewrite the generated parts in place
    .venv/bin/python scripts/gen_docs.py --check   # exit 1 (and name the pages) if one differs

Two tables are generated, each between a pair of markers inside its page so that prose can
surround it:

- docs/configuration.md, ``options``: every row of the option table
  (``gateway.config.options.GROUPS``), one table per group as ``--help`` shows them, with the
  flag, environment variable, file key, default and meaning (the ``--help`` text);
- docs/errors.md, ``error-codes``: every ``gateway.errors.GatewayError`` class with its status and
  code, and the title and explanation that ``GET /errors/<code>`` serves.

The tests run ``--check`` (tests/test_docs.py). The script only reads the gateway's modules; the
gateway never imports it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway import errors  # noqa: E402  (after the path is set for a run from anywhere)
from gateway.config.option import Option  # noqa: E402
from gateway.config.options import GROUPS  # noqa: E402

DOCS = ROOT / "docs"
BEGIN = "<!-- BEGIN GENERATED {name}: scripts/gen_docs.py writes this part; edit the code -->"
END = "<!-- END GENERATED {name} -->"

CONFIG_ROW = (
    "| `--config FILE` | `GATEWAY_CONFIG` | — | none | TOML file with the keys below "
    "(at the top level or in a `[gateway]` table) |"
)


def _cell(text: str) -> str:
    """Help text made safe in a Markdown table cell: its `code spans` are kept, and in the rest
    no pipe, emphasis, link or HTML is read into it."""
    parts = text.split("`")
    for index in range(0, len(parts), 2):
        for char in ("\\", "|", "*", "_", "[", "]"):
            parts[index] = parts[index].replace(char, "\\" + char)
        parts[index] = parts[index].replace("<", "&lt;")
    for index in range(1, len(parts), 2):
        parts[index] = parts[index].replace("|", "`\\|`")
    return "`".join(parts)


def _code(text: str) -> str:
    """A code span for a table cell. A pipe stays outside the code, escaped: inside it GitHub
    needs the escape and MkDocs would show it."""
    return "`" + text.replace("|", "`\\|`") + "`"


def _default(value: object) -> str:
    if value is None or value == "" or value == ():
        return "none"
    if isinstance(value, bool):
        return _code("true" if value else "false")
    return _code(str(value))


def _option_row(option: Option) -> str:
    flag = option.flag if option.is_flag else f"{option.flag} {option.metavar}"
    if option.file_only:  # an array of tables: no flag, no variable
        spellings = ("—", "—", f"{_code(option.name)} (file only: `[[{option.name}]]`)")
    else:
        spellings = (_code(flag), _code(option.env), _code(option.name))
    cells = (
        *spellings,
        _default(option.default),
        _cell(option.help),
    )
    return "| " + " | ".join(cells) + " |"


def options_tables() -> str:
    """The option table as Markdown: ``--config``, then one table per group."""
    header = ["| flag | environment | file key | default | meaning |", "|---|---|---|---|---|"]
    lines = [*header, CONFIG_ROW]
    for group in GROUPS:
        lines += ["", f"### {group.TITLE}", "", *header]
        lines += [_option_row(option) for option in group.OPTIONS]
    return "\n".join(lines)


def _error_classes(base: type[errors.GatewayError]) -> Iterator[type[errors.GatewayError]]:
    for cls in base.__subclasses__():
        yield cls
        yield from _error_classes(cls)


def _meaning(cls: type[errors.GatewayError]) -> str:
    if cls.code in errors.GATEWAY_CODES:
        title, explanation = errors.GATEWAY_CODES[cls.code]
        return f"**{title}.** {_cell(explanation)}"
    doc = (cls.__doc__ or "").strip()
    if not doc:
        raise SystemExit(
            f"gen_docs: {cls.__name__} (code {cls.code}) has neither a docstring "
            "nor an entry in GATEWAY_CODES to document it with"
        )
    return _cell(" ".join(doc.split()).replace("``", "`"))  # reST literals to Markdown


def errors_table() -> str:
    """Every error class the gateway answers with, by code."""
    classes = sorted(_error_classes(errors.GatewayError), key=lambda c: (c.code, c.status))
    lines = ["| code | status | class | meaning |", "|---|---|---|---|"]
    for cls in classes:
        lines.append(f"| {cls.code} | {cls.status} | `{cls.__name__}` | {_meaning(cls)} |")
    return "\n".join(lines)


GENERATED: dict[str, tuple[str, Callable[[], str]]] = {
    "options": ("configuration.md", options_tables),
    "error-codes": ("errors.md", errors_table),
}


def fill(text: str, name: str, content: str) -> str:
    """``text`` with what lies between the markers called ``name`` replaced by ``content``."""
    begin, end = BEGIN.format(name=name), END.format(name=name)
    if text.count(begin) != 1 or text.count(end) != 1:
        raise SystemExit(f"gen_docs: the page needs exactly one pair of markers:\n{begin}\n{end}")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{content}\n{end}{tail}"


def generated_pages() -> dict[Path, str]:
    """Each page with a generated part, as the script would write it."""
    pages: dict[Path, str] = {}
    for name, (page, make) in GENERATED.items():
        path = DOCS / page
        pages[path] = fill(pages.get(path) or path.read_text("utf-8"), name, make())
    return pages


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the generated parts of the docs.")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 on a diff")
    args = parser.parse_args(argv)
    pages = generated_pages()
    stale = {p: text for p, text in pages.items() if p.read_text("utf-8") != text}
    if args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is out of date: run scripts/gen_docs.py")
        return 1 if stale else 0
    for path, text in stale.items():
        path.write_text(text, "utf-8")
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
