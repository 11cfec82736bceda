"""gateway.config.template_regex: path templates as regexes, same language, linear time."""

from __future__ import annotations

import itertools
import re

import pytest

from gateway.config.template_regex import (
    SEGMENT_RUN,
    SEGMENT_VALUE,
    Alphabet,
    segment_regex,
    template_regex,
)
from tests.timing import best_of, deadline, growth

# Templates with one, two and three placeholders in a segment, a placeholder between literals,
# literals that overlap themselves and the units ("a", "."), and a literal after a placeholder.
TEMPLATES = [
    "/a/{x}",
    "/a/{x}.j",
    "/a/p{x}q",
    "/a/{x}.{y}",
    "/a/{x}{y}",
    "/a/{x}a{y}a",
    "/a/{x}aa{y}",
    "/a/{x}.{y}.{z}",
    "/a/{x}/b/{y}.a",
    "/a/{x}aa",  # a suffix that overlaps itself
    "/a/{x}2a",  # a suffix that starts with a hex digit: "%2" + "2a" is no split
    "/a/p{x}a2{y}j",
]


def reference(template: str) -> re.Pattern[str]:
    """The template as the textbook regex: each placeholder ``(?P<name>SEGMENT_VALUE)``."""
    pattern, position = "", 0
    for found in re.finditer(r"\{(\w+)\}", template):
        pattern += re.escape(template[position : found.start()])
        pattern += f"(?P<{found.group(1)}>{SEGMENT_VALUE})"
        position = found.end()
    return re.compile(pattern + re.escape(template[position:]))


def test_the_possessive_run_accepts_exactly_the_segment_values() -> None:
    alphabet = "aZ9_~.-%2fG/?#!é"
    for length in range(1, 5):
        for chars in itertools.product(alphabet, repeat=length):
            text = "".join(chars)
            assert (re.fullmatch(SEGMENT_RUN, text) is None) == (
                re.fullmatch(SEGMENT_VALUE, text) is None
            ), text


@pytest.mark.parametrize("template", TEMPLATES)
def test_each_template_matches_exactly_what_the_textbook_regex_matches(template: str) -> None:
    """Every path of up to 6 characters after ``/a/`` over an alphabet that holds the
    literals, a unit, an escape and its pieces, a separator and a refused character."""
    linear = re.compile(template_regex(template, names=True))
    unnamed = re.compile(template_regex(template, names=False))
    textbook = reference(template)
    for length in range(7):
        for chars in itertools.product("a.j%2/!", repeat=length):
            path = "/a/" + "".join(chars)
            if template.count("/") > 2:
                path = path.replace("!", "/b/", 1)
            expected = textbook.fullmatch(path)
            found = linear.fullmatch(path)
            assert (found is None) == (expected is None), path
            assert (unnamed.fullmatch(path) is None) == (expected is None), path
            if found is not None and expected is not None and template.count("{") == 1:
                assert found.groupdict() == expected.groupdict(), path  # one split only


def test_a_placeholder_before_another_in_its_segment_takes_the_shortest_value() -> None:
    found = re.fullmatch(template_regex("/f/{name}.{ext}", names=True), "/f/a.tar.gz")
    assert found is not None and found.groupdict() == {"name": "a", "ext": "tar.gz"}
    found = re.fullmatch(template_regex("/f/{a}{b}", names=True), "/f/%41bc")
    assert found is not None and found.groupdict() == {"a": "%41", "b": "bc"}
    found = re.fullmatch(template_regex("/f/{Sid}.json", names=True), "/f/x.json.json")
    assert found is not None and found.groupdict() == {"Sid": "x.json"}  # the last suffix


def test_segment_regex_takes_another_alphabet() -> None:
    text = segment_regex("{a}.{b}", names=True, alphabet=Alphabet("/", negated=True))
    found = re.fullmatch(text, "x!.y.z")
    assert found is not None and found.groupdict() == {"a": "x!", "b": "y.z"}
    assert re.fullmatch(text, "x!.y/z") is None
    text = segment_regex("{a}.json", names=True, alphabet=Alphabet("abc.jsno"))
    found = re.fullmatch(text, "ab.json.json")
    assert found is not None and found.groupdict() == {"a": "ab.json"}
    assert re.fullmatch(text, "ab%.json") is None


# Segments that make a backtracking engine work hardest on these templates: runs of one unit,
# of a literal, of escapes, followed by nothing, a refused character or a near-miss suffix.
ADVERSARIAL_BODIES = ["x", ".", "a.", "%2F", "aa"]
ADVERSARIAL_TAILS = ["", "!", ".", "/b/", "/b/x.", "%2"]


@pytest.mark.parametrize("template", TEMPLATES)
def test_matching_time_is_linear_in_the_path(template: str) -> None:
    pattern = re.compile(template_regex(template, names=True))
    for body, tail in itertools.product(ADVERSARIAL_BODIES, ADVERSARIAL_TAILS):

        def run(length: int, body: str = body, tail: str = tail) -> None:
            pattern.fullmatch("/a/" + body * (length // len(body)) + tail)

        with deadline(5, f"{template} on {body!r} * n + {tail!r}"):
            assert best_of(lambda: run(100_000), 3) < 0.05, (template, body, tail)
            small, large = growth(lambda: run(10_000), lambda: run(100_000), 30)
        # ten times the path: ten times the time when linear, a hundred when quadratic
        assert large < 30 * small, (template, body, tail, small, large)
