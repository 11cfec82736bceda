"""What legacy Preview Marketplace code looks like, language by language (for ``gateway scan``).

Each pattern finds one way a helper library or its docs name the deprecated API, and says what
to write instead; :mod:`gateway.tools.scan` applies them to a source tree.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Pattern:
    kind: str
    regex: re.Pattern[str]
    replace: Callable[[re.Match[str]], str]
    # For a pattern that starts with a receiver chain ("self.client.preview.marketplace"):
    # the regex of what follows the chain. A regex engine would try the chain from each of
    # its names, scanning the rest of it each time (quadratic in a long "a.b.c..." line);
    # the chain is read backwards from each place the anchor is found instead (linear).
    anchor: re.Pattern[str] | None = None

    def finditer(self, text: str) -> Iterator[re.Match[str]]:
        """The matches of :attr:`regex` in ``text``, as ``regex.finditer`` finds them."""
        if self.anchor is None:
            yield from self.regex.finditer(text)
            return
        position = 0
        while (tail := self.anchor.search(text, position)) is not None:
            found = self.regex.match(text, _chain_start(text, tail.start(), position))
            if found is None:  # cannot happen: the chain start was proved to reach the anchor
                found = self.regex.match(text, tail.start())
            assert found is not None
            yield found
            position = found.end()


def _word(char: str) -> bool:
    """``[\\w$]`` as Python's ``re`` reads ``\\w`` in a str pattern."""
    return char.isalnum() or char in "_$"


def _chain_start(text: str, anchor: int, floor: int) -> int:
    """Where the leftmost receiver chain ending at ``anchor`` starts (``anchor`` when there is
    none), no earlier than ``floor``: ``@?name(.name)*`` as :data:`_RECEIVER` matches it."""
    start = end = anchor
    while True:
        first = end
        while first > 0 and _word(text[first - 1]):
            first -= 1
        if first == end or first < floor or not _NAME_START.match(text[first]):
            return start
        before = text[first - 1] if first else ""
        if before != "@":
            start = first  # preceded by "." or by no name character: a chain may start here
        elif first - 1 >= floor and (
            first < 2 or not _word(text[first - 2]) and text[first - 2] != "@"
        ):
            return first - 1  # "@name" as Ruby writes an instance variable
        if before != ".":
            return start
        end = first - 1


_NAME_START = re.compile(r"[A-Za-z_$]")


def _fixed(text: str) -> Callable[[re.Match[str]], str]:
    return lambda match: match.expand(text)


_GO_VERBS = "List|Fetch|Create|Update|Delete"
# A receiver chain of Python, Node or Ruby code: "client", "self.client", "@client.api".
# (Its runs are possessive: a name is always followed by ".", which no name holds.)
_RECEIVER = r"(?P<recv>(?<![\w$@])@?[A-Za-z_$][\w$]*+(?:\.[A-Za-z_$][\w$]*+)*?)"

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
        re.compile(r"(?P<recv>\$[A-Za-z_]\w*+(?:->[A-Za-z_]\w*+)*?)->preview->marketplace\b"),
        _fixed(r"\g<recv>->marketplace->v1"),
    ),
    Pattern(
        "python/node/ruby",
        re.compile(_RECEIVER + r"?\.preview\.marketplace\b"),
        _fixed(r"\g<recv>.marketplace.v1"),
        re.compile(r"\.preview\.marketplace\b"),
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
# (Possessive runs: "[ \t]*\\?[ \t]*" could split a run of blanks in two in as many ways as it
# is long, quadratic on a long run that ends in no line break.)
_BREAK = r"[ \t]*+(?:\\[ \t]*+)?\r?\n[ \t]*+"
_SPLIT_PREVIEW = rf"\.preview(?:{_BREAK}\.|\.{_BREAK})marketplace\b"
SPLIT_CHAINS: tuple[Pattern, ...] = (
    Pattern(
        "python/node/ruby",
        re.compile(_RECEIVER + "?" + _SPLIT_PREVIEW),
        _fixed(r"\g<recv>.marketplace.v1"),
        re.compile(_SPLIT_PREVIEW),
    ),
    Pattern(
        "php",
        re.compile(
            r"(?P<recv>\$[A-Za-z_]\w*+(?:->[A-Za-z_]\w*+)*?)"
            rf"->preview(?:{_BREAK}->|->{_BREAK})marketplace\b"
        ),
        _fixed(r"\g<recv>->marketplace->v1"),
    ),
)
