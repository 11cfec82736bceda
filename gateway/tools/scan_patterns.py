"""What legacy Preview Marketplace code looks like, language by language (for ``gateway scan``).

Each pattern finds one way a helper library or its docs name the deprecated API, and says what
to write instead; :mod:`gateway.tools.scan` applies them to a source tree.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Pattern:
    kind: str
    regex: re.Pattern[str]
    replace: Callable[[re.Match[str]], str]


def _fixed(text: str) -> Callable[[re.Match[str]], str]:
    return lambda match: match.expand(text)


_GO_VERBS = "List|Fetch|Create|Update|Delete"

# Most specific first: where two patterns match overlapping text, the earlier one wins.
PATTERNS: tuple[Pattern, ...] = (
    Pattern(
        "java",
        re.compile(r"\bcom\.twilio\.rest\.preview\.marketplace\b"),
        _fixed("com.twilio.rest.marketplace.v1"),
    ),
    Pattern(
        "python",
        re.compile(r"(?<![\w.])twilio\.rest\.preview\.marketplace\b"),
        _fixed("twilio.rest.marketplace.v1"),
    ),
    Pattern(
        "csharp",
        re.compile(r"\bTwilio\.Rest\.Preview\.Marketplace\b"),
        _fixed("Twilio.Rest.Marketplace.V1"),
    ),
    Pattern(
        "php",
        re.compile(r"\bTwilio(?P<s>\\{1,2})Rest(?P=s)Preview(?P=s)Marketplace\b"),
        _fixed(r"Twilio\g<s>Rest\g<s>Marketplace\g<s>V1"),
    ),
    Pattern(
        "ruby",
        re.compile(r"\bTwilio::REST::Preview::Marketplace\b"),
        _fixed("Twilio::REST::Marketplace::V1"),
    ),
    Pattern(
        "php",
        re.compile(r"(?P<recv>\$[A-Za-z_]\w*(?:->[A-Za-z_]\w*)*?)->preview->marketplace\b"),
        _fixed(r"\g<recv>->marketplace->v1"),
    ),
    Pattern(
        "python/node/ruby",
        re.compile(
            r"(?P<recv>(?<![\w$@])@?[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*?)?"
            r"\.preview\.marketplace\b"
        ),
        _fixed(r"\g<recv>.marketplace.v1"),
    ),
    Pattern(
        "go",
        re.compile(
            rf"(?P<recv>(?<!\w)[A-Za-z_]\w*)?\.Preview\.(?P<verb>{_GO_VERBS})(?:Marketplace)?"
            r"(?P<res>AvailableAddOn|InstalledAddOn)(?P<ext>Extension)?\b"
        ),
        _fixed(r"\g<recv>.MarketplaceV1.\g<verb>\g<res>\g<ext>"),
    ),
    Pattern(
        "go",
        re.compile(r"\bgithub\.com/twilio/twilio-go/twilio/rest/preview\b(?![/\w])"),
        _fixed("github.com/twilio/twilio-go/rest/marketplace/v1"),
    ),
    Pattern(
        "go",
        re.compile(
            r"\bPreviewMarketplace(?P<res>AvailableAddOn|InstalledAddOn)"
            r"(?:(?P=res)(?P<ext>Extension))?\b"
        ),
        lambda m: f"MarketplaceV1{m.group('res')}{m.group('ext') or ''}",
    ),
    Pattern(
        "twilio-cli",
        re.compile(r"\bapi:preview:marketplace:"),
        _fixed("api:marketplace:v1:"),
    ),
)


_LANGUAGES = {
    ".py": "python",
    ".js": "node",
    ".mjs": "node",
    ".cjs": "node",
    ".ts": "node",
    ".jsx": "node",
    ".tsx": "node",
    ".rb": "ruby",
}


def language(kind: str, path: str) -> str:
    """Narrow an ambiguous kind such as "python/node/ruby" by the file's extension."""
    if "/" not in kind:
        return kind
    found = _LANGUAGES.get(os.path.splitext(path)[1].lower())
    return found if found and found in kind.split("/") else kind


# A helper-library chain split over two lines: ``client.preview \`` / ``client.preview`` /
# ``client.preview.`` at a line's end, ``.marketplace`` / ``marketplace`` (or PHP's
# ``->marketplace``) at the next one's start.
_BREAK = r"[ \t]*\\?[ \t]*\r?\n[ \t]*"
SPLIT_CHAINS: tuple[Pattern, ...] = (
    Pattern(
        "python/node/ruby",
        re.compile(
            r"(?P<recv>(?<![\w$@])@?[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*?)?"
            rf"\.preview(?:{_BREAK}\.|\.{_BREAK})marketplace\b"
        ),
        _fixed(r"\g<recv>.marketplace.v1"),
    ),
    Pattern(
        "php",
        re.compile(
            r"(?P<recv>\$[A-Za-z_]\w*(?:->[A-Za-z_]\w*)*?)"
            rf"->preview(?:{_BREAK}->|->{_BREAK})marketplace\b"
        ),
        _fixed(r"\g<recv>->marketplace->v1"),
    ),
)
