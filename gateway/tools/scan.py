"""``gateway scan PATH``: find Preview Marketplace usage in a source tree and name its v1 twin.

Looks for what an application written against the deprecated API contains:

* URLs under ``https://preview.twilio.com/marketplace`` (any language, docs, config) -> the
  ``https://marketplace.twilio.com/v1`` URL, with the path mapped by the gateway's own rules
  (a segment built from a variable, ``${sid}`` or ``%s``, stands for any value); a path that no
  rule maps is reported without a replacement rather than with an invented one;
* twilio-python, twilio-node and twilio-ruby ``client.preview.marketplace`` ->
  ``client.marketplace.v1`` (resource names such as ``installed_add_ons`` /
  ``installedAddOns`` are the same in v1), also when the chain is split over two lines
  (``client.preview \\`` or ``client.preview`` then ``.marketplace`` on the next line);
* twilio-python ``twilio.rest.preview.marketplace`` imports -> ``twilio.rest.marketplace.v1``;
* twilio-php ``$twilio->preview->marketplace`` -> ``$twilio->marketplace->v1`` and the
  ``Twilio\\Rest\\Preview\\Marketplace`` namespace -> ``Twilio\\Rest\\Marketplace\\V1``;
* twilio-ruby ``Twilio::REST::Preview::Marketplace`` -> ``Twilio::REST::Marketplace::V1``;
* twilio-java ``com.twilio.rest.preview.marketplace`` -> ``com.twilio.rest.marketplace.v1``;
* twilio-csharp ``Twilio.Rest.Preview.Marketplace`` -> ``Twilio.Rest.Marketplace.V1``;
* twilio-go (only its 0.x pre-releases had a preview package): ``client.Preview.ListInstalledAddOn``
  and the like -> ``client.MarketplaceV1.ListInstalledAddOn``, ``PreviewMarketplace*`` types ->
  ``MarketplaceV1*``, the ``twilio-go/twilio/rest/preview`` import ->
  ``twilio-go/rest/marketplace/v1`` (``MarketplaceV1.ListMarketplaceInstalledAddOn`` of twilio-go
  1.21.1-1.22.1 is already v1 and is not reported);
* twilio-cli ``api:preview:marketplace:`` topics -> ``api:marketplace:v1:`` (inferred from the
  CLI's ``api:<domain>:<version>:<resource>`` naming).

Exit status: 1 when anything was found, 0 when the tree is clean, 2 on a usage error or when
no file was scanned at all (an empty folder, only binary or over-large files).
"""

from __future__ import annotations

import argparse
import bisect
import json
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from gateway.config.parsers import parse_size
from gateway.config.rules import Rule, RuleError, RuleSet, load_rules
from gateway.config.template_regex import Alphabet, template_regex
from gateway.config.upstreams import ORIGINS as V1_ORIGINS
from gateway.tools.scan_patterns import PATTERNS, SPLIT_CHAINS, language

EXIT_CLEAN = 0
EXIT_FOUND = 1
EXIT_USAGE = 2

SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        "node_modules",
        ".venv",
        "venv",
        "__pycache__",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        ".tox",
        ".nox",
    }
)
DEFAULT_MAX_BYTES = 1024 * 1024
BINARY_SNIFF_BYTES = 8192

PREVIEW_PREFIX = "/marketplace"
V1_PREFIX = "/v1"


@dataclass(frozen=True, slots=True)
class Finding:
    """One occurrence of legacy usage and what to write instead."""

    path: str
    line: int
    column: int  # 1-based
    match: str  # as written; a chain split over lines is shown on one, whitespace collapsed
    replacement: str | None  # None: a URL path no gateway rule maps (no v1 URL is invented)
    kind: str  # "url", "python", "node/python/ruby", "php", "java", ...
    rule: str | None = None  # the gateway rule a URL maps to, when one does


# A preview URL, with or without scheme, up to the first character that cannot be in one.
_URL = re.compile(
    r"(?:https?://)?preview\.twilio\.com/marketplace(?P<rest>(?:[/?#][^\s\"'`<>()\[\],;\\]*)?)"
    r"(?![A-Za-z0-9_])"
)


def map_preview_url(rest: str, rules: RuleSet) -> tuple[str | None, str | None]:
    """The v1 URL for ``preview.twilio.com/marketplace`` + ``rest``, and the rule it matched.

    The base URL (``rest`` empty or ``/``) becomes the v1 base. A path is mapped by the first
    deprecated rule whose ``from`` template has its shape, any text standing for a
    placeholder (a SID, or ``${sid}``, ``%s``, ``{sid}`` in code that builds the URL); a
    trailing ``/`` (a prefix that code appends to) is kept. A path no rule maps gives
    ``(None, None)``: there is no v1 URL to offer, and none is made up.
    """
    path, sep, tail = rest.partition("?")
    if not sep:
        path, sep, tail = rest.partition("#")
        sep = "#" if sep else ""
    else:
        sep = "?"
    if path in ("", "/"):
        return f"{V1_ORIGINS['marketplace']}{V1_PREFIX}{path}{sep}{tail}", None
    stripped = path.rstrip("/")
    slash = path[len(stripped) :]
    for rule in rules.rules:
        if not rule.deprecated:
            continue
        found = _shape(rule).fullmatch(PREVIEW_PREFIX + stripped)
        if found is not None:
            origin = V1_ORIGINS.get(rule.upstream, V1_ORIGINS["marketplace"])
            target = rule.target.render(found.groupdict())
            return f"{origin}{target}{slash}{sep}{tail}", rule.name
    return None, None


def _shape(rule: Rule) -> re.Pattern[str]:
    """``rule``'s ``from`` with each placeholder standing for any text within one segment
    (matched in linear time, see :mod:`gateway.config.template_regex`)."""
    return re.compile(template_regex(rule.source.text, names=True, alphabet=_ANY_IN_A_SEGMENT))


_ANY_IN_A_SEGMENT = Alphabet("/?#", negated=True)


def scan_text(text: str, path: str, rules: RuleSet) -> list[Finding]:
    """Every legacy usage in ``text`` (the contents of ``path``), in reading order."""
    findings: list[Finding] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if "review" in line:  # cheap pre-filter: every pattern contains it
            findings.extend(_scan_line(line, number, path, rules))
    if "review" in text and "arketplace" in text:
        findings.extend(_scan_split_chains(text, path))
        findings.sort(key=lambda finding: (finding.line, finding.column))
    return findings


def _scan_split_chains(text: str, path: str) -> list[Finding]:
    hits: list[Finding] = []
    for pattern in SPLIT_CHAINS:
        counted, line, line_start = 0, 1, 0  # counted forwards from hit to hit: linear
        for found in pattern.finditer(text):
            start = found.start()
            line += text.count("\n", counted, start)
            line_start = max(line_start, text.rfind("\n", counted, start) + 1)
            counted = start
            column = start - line_start + 1
            shown = " ".join(found.group(0).split())
            kind = language(pattern.kind, path)
            hits.append(Finding(path, line, column, shown, pattern.replace(found), kind))
    return hits


def _scan_line(line: str, number: int, path: str, rules: RuleSet) -> list[Finding]:
    taken: list[tuple[int, int]] = []
    hits: list[Finding] = []
    for url in _URL.finditer(line):
        shown = url.group(0).rstrip(".:!?")  # sentence punctuation after a URL in prose
        rest = url.group("rest")[: len(url.group("rest")) - (len(url.group(0)) - len(shown))]
        replacement, rule = map_preview_url(rest, rules)
        taken.append(url.span())  # in order, and apart: the list stays sorted
        hits.append(Finding(path, number, url.start() + 1, shown, replacement, "url", rule))
    for pattern in PATTERNS:
        for found in pattern.finditer(line):
            start, end = found.span()
            # Taken spans never overlap, so only the last one starting before ``end`` can
            # overlap this one (a sorted list: a line of many hits is not quadratic).
            before = bisect.bisect_left(taken, (end,))
            if before and taken[before - 1][1] > start:
                continue  # a more specific pattern already reported this text
            bisect.insort(taken, (start, end))
            kind = language(pattern.kind, path)
            hits.append(
                Finding(path, number, start + 1, found.group(0), pattern.replace(found), kind)
            )
    return sorted(hits, key=lambda finding: finding.column)


def read_text_file(path: Path, max_bytes: int) -> str | None:
    """The file's text, or ``None`` for a binary, unreadable or over-large file."""
    try:
        if not path.is_file() or path.stat().st_size > max_bytes:
            return None
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:BINARY_SNIFF_BYTES]:
        return None
    return data.decode("utf-8", errors="replace")


def iter_files(root: Path) -> Iterator[Path]:
    """Regular files under ``root`` in sorted order, skipping VCS, dependency and cache dirs."""
    if root.is_file():
        yield root
        return
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        for name in sorted(files):
            yield Path(directory, name)


@dataclass(frozen=True, slots=True)
class ScanResult:
    """What one scan found and how much it looked at."""

    root: str
    files_scanned: int
    files_skipped: int
    findings: tuple[Finding, ...]


def scan_path(root: Path, rules: RuleSet, max_bytes: int = DEFAULT_MAX_BYTES) -> ScanResult:
    """Scan a file or a directory tree; paths in findings are relative to a directory root."""
    scanned = skipped = 0
    findings: list[Finding] = []
    for file in iter_files(root):
        text = read_text_file(file, max_bytes)
        if text is None:
            skipped += 1
            continue
        scanned += 1
        shown = file.relative_to(root).as_posix() if root.is_dir() else str(file)
        findings.extend(scan_text(text, shown, rules))
    return ScanResult(str(root), scanned, skipped, tuple(findings))


def format_text(result: ScanResult) -> str:
    """``path:line: match -> replacement`` lines and a summary."""
    lines = [
        f"{f.path}:{f.line}: {f.match} -> "
        + (f.replacement or "(no v1 equivalent: no gateway rule maps this path)")
        + (f"  [{f.kind}: {f.rule}]" if f.rule else f"  [{f.kind}]")
        for f in result.findings
    ]
    files = len({f.path for f in result.findings})
    if result.findings:
        lines.append(
            f"\n{len(result.findings)} Preview Marketplace usage(s) in {files} file(s) "
            f"({result.files_scanned} files scanned). Migrate them to Marketplace v1; "
            "until then the gateway keeps them working."
        )
    else:
        lines.append(
            f"No Preview Marketplace usage found ({result.files_scanned} files scanned, "
            f"{result.files_skipped} binary or large files skipped)."
        )
    return "\n".join(lines)


def format_json(result: ScanResult) -> str:
    """The result as one JSON document."""
    return json.dumps(
        {
            "root": result.root,
            "files_scanned": result.files_scanned,
            "files_skipped": result.files_skipped,
            "findings": [asdict(f) for f in result.findings],
        },
        indent=2,
    )


def _size(text: str) -> int:
    """``--max-bytes``: a size as every other size option takes it (``512K``, ``1M``)."""
    try:
        return parse_size(text)
    except ValueError as exc:  # argparse prints it after the flag's name
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``gateway scan``'s arguments to ``parser``."""
    parser.add_argument("path", metavar="PATH", help="file or directory to scan")
    parser.add_argument(
        "--format", choices=("text", "json"), default="text", help="output format (default text)"
    )
    parser.add_argument(
        "--max-bytes",
        type=_size,
        default=DEFAULT_MAX_BYTES,
        metavar="SIZE",
        help="skip files larger than this: bytes, or with a K, M or G suffix (default 1M)",
    )
    parser.add_argument(
        "--rules",
        type=Path,
        default=None,
        metavar="DIR",
        help="rule directory used to map preview URLs (default: the built-in rules)",
    )


def run(args: argparse.Namespace) -> int:
    """Run ``gateway scan``: 1 when usage was found, 0 when clean, 2 on a usage error or when
    nothing was scanned."""
    root = Path(args.path)
    if not root.exists():
        print(f"gateway scan: {root}: no such file or directory", file=sys.stderr)
        return EXIT_USAGE
    try:
        rules = load_rules(args.rules)
    except RuleError as exc:
        print(f"gateway scan: {exc}", file=sys.stderr)
        return EXIT_USAGE
    result = scan_path(root, rules, args.max_bytes)
    if result.files_scanned == 0:  # a CI gate must not pass on nothing
        print(
            f"gateway scan: nothing scanned: {root} holds no text file of at most "
            f"{args.max_bytes} bytes ({result.files_skipped} binary or larger file(s) skipped)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    print(format_json(result) if args.format == "json" else format_text(result))
    return EXIT_FOUND if result.findings else EXIT_CLEAN
