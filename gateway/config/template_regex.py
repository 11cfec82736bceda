"""Path templates as regular expressions that match in time linear in the path (pure).

A ``{Name}`` placeholder stands for one or more *units* of a path segment: an unreserved
character or a %-escape (:data:`SEGMENT_VALUE`). Python's backtracking engine takes
exponential time on a pattern such as ``(?:[a-z]+|%XX)+`` (a run can be split in many ways)
and quadratic time on two placeholders in one segment (``{a}.{b}`` on ``x.x.x.x…``), so each
placeholder is written according to what follows it in its segment:

- nothing (the segment ends): the whole run of units, possessively (:data:`SEGMENT_RUN`);
  giving back a unit could never help, since a unit is never a ``/``;
- a literal, then the segment's end (``{Sid}.json``): the longest run the literal follows.
  Units can be told apart one by one (a ``%`` always starts a three-character unit), so there
  is one way to match each prefix and backtracking visits each position once;
- another placeholder (``{a}.{b}``, ``{a}{b}``): the shortest run the literal between them
  follows, in an atomic group. If that split fails, every longer one fails too: the rest is
  then a suffix of a rest that did not match.

So a segment with several placeholders gives each but the last the shortest value that lets
the rest match; the language (what matches) is exactly that of ``SEGMENT_VALUE`` everywhere.
"""

from __future__ import annotations

import re

PLAIN = r"[A-Za-z0-9_~.\-]"  # an unreserved character: one unit
_ESCAPE = r"%[0-9A-Fa-f][0-9A-Fa-f]"
UNIT = rf"(?:{PLAIN}|{_ESCAPE})"
# One path segment's worth of a placeholder value: unreserved characters and %-escapes.
# Escapes that decode to "/", "\", "." or NUL are refused in routing, not here.
SEGMENT_VALUE = UNIT + "+"
# The same language matched possessively, a run of plain characters in one step.
SEGMENT_RUN = rf"(?:{PLAIN}++|{_ESCAPE})++"

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def segment_regex(segment: str, *, names: bool, unit: str = UNIT, run: str = SEGMENT_RUN) -> str:
    """Regex text for one template segment (no ``/``); ``names``: capture each placeholder
    in a group of its name. ``unit`` and ``run`` are one unit and a possessive run of them
    (the defaults: :data:`UNIT`, :data:`SEGMENT_RUN`); a unit must never match ``/``."""
    parts = _PLACEHOLDER.split(segment)  # literal, name, literal, name, ..., literal
    literals, params = parts[0::2], parts[1::2]
    out = [re.escape(literals[0])]
    for index, name in enumerate(params):
        after = re.escape(literals[index + 1])
        last = index == len(params) - 1
        if not last:
            value = unit + "+?"
        elif after:
            value = unit + "+"
        else:
            value = run
        group = f"(?P<{name}>{value})" if names else f"(?:{value})"
        out.append(group + after if last else f"(?>{group}{after})")
    return "".join(out)


def template_regex(text: str, *, names: bool, unit: str = UNIT, run: str = SEGMENT_RUN) -> str:
    """Regex text for a whole template (segments joined by ``/``), see :func:`segment_regex`."""
    return "/".join(
        segment_regex(segment, names=names, unit=unit, run=run) for segment in text.split("/")
    )
