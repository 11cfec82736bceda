"""Path templates as regular expressions that match in time linear in the path (pure).

A ``{Name}`` placeholder stands for one or more *units* of a path segment: an unreserved
character or a %-escape (:data:`SEGMENT_VALUE`). Python's backtracking engine takes
exponential time on a pattern such as ``(?:[a-z]+|%XX)+`` (a run can be split in many ways)
and quadratic time on two placeholders in one segment (``{a}.{b}`` on ``x.x.x.x…``). Even a
repetition of a group that cannot be split two ways keeps a backtracking entry per unit
(superlinear in memory traffic past a few hundred thousand characters). So every value is
matched by possessive runs, which keep nothing to backtrack to, and ends where it must:

- at the end of its segment, when nothing follows it there (:data:`SEGMENT_RUN`);
- before the first occurrence of the literal that follows it, when another placeholder
  follows in the same segment (``{a}.{b}``, ``{a}{b}``): each but the last placeholder of a
  segment takes the shortest value that lets the rest match (a longer one never could: the
  rest would be a suffix of a rest that did not match);
- before the literal that ends the segment (``{Sid}.json``): the longest value.

Each value is one unit, then a possessive run of characters that cannot start the literal,
escapes, and the literal's first character where the literal does not follow. What matches is
exactly what the textbook regex (each placeholder ``(?P<name>SEGMENT_VALUE)``) matches; only
how a segment with several placeholders is split can differ.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

_UNRESERVED = string.ascii_letters + string.digits + "_~.-"
_ESCAPE = r"%[0-9A-Fa-f][0-9A-Fa-f]"
UNIT = r"(?:[A-Za-z0-9_~.\-]|" + _ESCAPE + ")"
# One path segment's worth of a placeholder value: unreserved characters and %-escapes (the
# textbook regex; routing's templates use the linear forms below). Escapes that decode to
# "/", "\", "." or NUL are refused in routing, not here.
SEGMENT_VALUE = UNIT + "+"
# The same language matched possessively, a run of plain characters in one step.
SEGMENT_RUN = r"(?:[A-Za-z0-9_~.\-]++|" + _ESCAPE + ")++"

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True, slots=True)
class Alphabet:
    """What a placeholder's value is made of: the characters ``chars`` (with ``negated``, any
    character but them), and escapes (regex text of a unit that starts with a character
    outside ``chars``, such as ``%XX``), if any. Neither may ever match ``/``."""

    chars: str
    negated: bool = False
    escape: str | None = None

    def plain(self, without: str = "") -> str:
        """A class of the plain characters, less those of ``without``."""
        if self.negated:
            return "[^" + "".join(re.escape(c) for c in sorted(set(self.chars + without))) + "]"
        kept = sorted(set(self.chars) - set(without))
        return "[" + "".join(re.escape(c) for c in kept) + "]"

    def holds(self, char: str) -> bool:
        return (char in self.chars) != self.negated

    def unit(self) -> str:
        return self.plain() if self.escape is None else f"(?:{self.plain()}|{self.escape})"

    def run(self, without: str = "") -> str:
        """Possessive alternatives of plain runs (less ``without``) and escapes, unrepeated."""
        plain = self.plain(without) + "++"
        return plain if self.escape is None else f"{plain}|{self.escape}"

    def starts_unit(self) -> str:
        """A class of every character a unit can start with."""
        if self.escape is None:
            return self.plain()
        return f"(?:{self.plain()}|%)"


URL_SEGMENT = Alphabet(_UNRESERVED, escape=_ESCAPE)


def segment_regex(segment: str, *, names: bool, alphabet: Alphabet = URL_SEGMENT) -> str:
    """Regex text for one template segment (no ``/``); ``names``: capture each placeholder
    in a group of its name."""
    parts = _PLACEHOLDER.split(segment)  # literal, name, literal, name, ..., literal
    literals, params = parts[0::2], parts[1::2]
    out = [re.escape(literals[0])]
    for index, name in enumerate(params):
        after = literals[index + 1]
        last = index == len(params) - 1
        if last and not after:
            value = f"(?:{alphabet.run()})++"
        elif not after:
            value = alphabet.unit()  # {a}{b}: the shortest value is one unit
        else:
            # The literal where it stops the value: anywhere for a placeholder followed by
            # another, only at the segment's end for the last one.
            stop = re.escape(after[1:]) + ("" if not last else f"(?!{alphabet.starts_unit()})")
            more = alphabet.run(without=after[0])
            if alphabet.holds(after[0]):
                more += f"|{re.escape(after[0])}(?!{stop})"
            value = f"{alphabet.unit()}(?:{more})*+"
        out.append((f"(?P<{name}>{value})" if names else f"(?:{value})") + re.escape(after))
    return "".join(out)


def template_regex(text: str, *, names: bool, alphabet: Alphabet = URL_SEGMENT) -> str:
    """Regex text for a whole template (segments joined by ``/``), see :func:`segment_regex`."""
    return "/".join(
        segment_regex(segment, names=names, alphabet=alphabet) for segment in text.split("/")
    )
