"""Every regex of gateway/ matches in time linear in its input (issue 17: a nested quantifier in
the rewrite backtracked exponentially on a v1 ``links.usage`` URL).

1. Where the patterns are: every call of the ``re`` module in gateway/'s source (read with
   ``ast``). A literal pattern is checked as written; one assigned to a module-level name is
   taken from the imported module; any other is built at run time and must be listed in
   :data:`BUILT`, which says where the test gets the built patterns (from the shipped rules).
2. Statically (the parse tree of each pattern, from the standard library's own parser): no
   quantifier over a part that holds a quantifier of its own, no alternation inside a
   quantifier whose branches can start with the same character, no two quantifiers in a row
   that can take the same characters, unless possessive or atomic (they never give back), or
   listed in :data:`REVIEWED` with the reason backtracking stays linear.
3. By timing: each pattern, used as gateway/ uses it (anchored, or searched from every
   position), on texts of 10,000 and 100,000 characters made of its own characters after the
   text that leads to its first quantifier: each under 50 ms, and ten times the text under
   thirty times the time (linear is ten, quadratic a hundred).
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import importlib
import itertools
import re
import re._constants as sre  # the standard library's own regex parser: test-only
import re._parser as sre_parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import gateway
from gateway.config.rules import compile_template, load_rules
from gateway.rewrite.link_map import LinkRewriter, PathMap
from gateway.tools import scan, scan_patterns
from tests.timing import TooSlow, best_of, deadline, growth

PACKAGE = Path(gateway.__file__).resolve().parent
RE_FUNCTIONS = {"compile", "match", "fullmatch", "search", "sub", "subn", "split", "findall"}
RE_FUNCTIONS |= {"finditer"}
ANCHORED = {"match", "fullmatch"}
RULES = load_rules()
PREVIEW = [rule for rule in RULES.rules if rule.deprecated]


@dataclass(frozen=True)
class Case:
    name: str
    pattern: re.Pattern[Any]
    anchored: bool  # only ever matched at a given position (match, fullmatch)
    # How gateway/ searches with it when not by pattern.finditer (gateway scan's receivers)
    finditer: Callable[[Any], Iterator[re.Match[Any]]] | None = None


# ---- 1. where the patterns are ----------------------------------------------------------


@dataclass(frozen=True)
class Site:
    module: str
    where: str  # the enclosing function ("Substitutions.build"), or "<module>"
    function: str  # compile, sub, ...
    literal: str | bytes | None
    assigned: str | None  # the module-level name the compiled pattern is assigned to


@functools.cache
def _modules() -> list[tuple[str, ast.Module]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        name = ".".join(("gateway", *path.relative_to(PACKAGE).with_suffix("").parts))
        found.append((name.removesuffix(".__init__"), ast.parse(path.read_text("utf-8"))))
    return found


def _is_re_call(node: ast.AST) -> bool:
    return (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "re"
        and node.func.attr in RE_FUNCTIONS
    )


def _calls(node: ast.AST, where: str) -> Iterator[tuple[ast.Call, str]]:
    for child in ast.iter_child_nodes(node):
        inner = where
        if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            inner = child.name if where == "<module>" else f"{where}.{child.name}"
        if _is_re_call(child):
            assert isinstance(child, ast.Call)
            yield child, where
        yield from _calls(child, inner)


def call_sites() -> list[Site]:
    sites = []
    for module, tree in _modules():
        assigned = {
            id(node.value): node.targets[0].id
            for node in tree.body
            if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)
        }
        for node, where in _calls(tree, "<module>"):
            assert isinstance(node.func, ast.Attribute)
            assert len(node.args) <= 3 and not node.keywords, "flags: teach this test to read them"
            argument = node.args[0]
            literal = argument.value if isinstance(argument, ast.Constant) else None
            sites.append(Site(module, where, node.func.attr, literal, assigned.get(id(node))))
    return sites


def methods_called_on(name: str) -> set[str]:
    """How gateway/ uses the pattern bound to ``name`` (``X.search``, ``m.X.fullmatch``)."""
    found = set()
    for _, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and node.attr in RE_FUNCTIONS - {"compile"}:
                value = node.value
                if (isinstance(value, ast.Name) and value.id == name) or (
                    isinstance(value, ast.Attribute) and value.attr == name
                ):
                    found.add(node.attr)
    return found


def _rewriters() -> list[LinkRewriter]:
    api = [rule for rule in RULES.rules if rule.upstream == "api"]
    return [
        LinkRewriter.build(("https://marketplace.twilio.com",), PREVIEW, accelerate=False),
        LinkRewriter.build(("https://api.twilio.com", "https://a.example/x"), [], accelerate=False),
        LinkRewriter.build(("https://api.twilio.com",), api, accelerate=False),
    ]


# Templates beyond the shipped ones: a suffix, and two or three placeholders in one segment.
EXTRA_TEMPLATES = ["/a/{Sid}.json", "/a/{x}.{y}", "/a/{x}{y}", "/a/{x}-{y}.{z}/b"]


def _built_templates() -> Iterator[Case]:
    templates = {t.text: t for r in RULES.rules for t in (r.source, r.target)}
    templates.update((text, compile_template(text)) for text in EXTRA_TEMPLATES)
    for text, template in templates.items():
        yield Case(f"template {text}", template.regex, True)


def _built_rule_patterns() -> Iterator[Case]:
    for rule in RULES.rules:
        for name, pattern in rule.patterns:
            yield Case(f"rule {rule.name} pattern {name}", pattern, True)


def _built_path_maps() -> Iterator[Case]:
    for rewriter in _rewriters():
        if rewriter.path_map.combined is not None:
            yield Case("PathMap.combined", rewriter.path_map.combined, True)
    api = [rule for rule in RULES.rules if rule.upstream == "api"]
    combined = PathMap.build(api).combined
    assert combined is not None
    yield Case("PathMap.combined (2010 rules)", combined, True)


def _built_substitutions() -> Iterator[Case]:
    for rewriter in _rewriters():
        subs = rewriter.substitutions
        assert subs is not None
        yield Case("Substitutions.clean", subs.clean, False)
        yield Case("Substitutions.flexible", subs.flexible, False)
        for prefix in subs.prefixes:
            for kind in ("legacy", "plain", "bare"):
                pattern = getattr(prefix, kind)
                if pattern is not None:
                    yield Case(f"Substitutions {prefix.quoted!r} {kind}", pattern, False)


def _built_scan_shapes() -> Iterator[Case]:
    extra = [compile_template(text) for text in EXTRA_TEMPLATES]
    for rule in PREVIEW:
        yield Case(f"scan shape {rule.name}", scan._shape(rule), True)
    for template in extra:
        rule = dataclasses.replace(PREVIEW[0], source=template)
        yield Case(f"scan shape {template.text}", scan._shape(rule), True)


def _built_scan_patterns() -> Iterator[Case]:
    for index, pattern in enumerate((*scan_patterns.PATTERNS, *scan_patterns.SPLIT_CHAINS)):
        name = f"scan pattern {index} ({pattern.kind})"
        yield Case(name, pattern.regex, False, pattern.finditer if pattern.anchor else None)
        if pattern.anchor is not None:
            yield Case(f"scan pattern {index} anchor", pattern.anchor, False)


# Patterns built at run time: (module, enclosing function) -> what yields them.
BUILT = {
    ("gateway.config.rules", "compile_template"): _built_templates,
    ("gateway.config.rules", "_patterns"): _built_rule_patterns,
    ("gateway.rewrite.link_map", "PathMap.build"): _built_path_maps,
    ("gateway.rewrite.link_map", "Substitutions.build"): _built_substitutions,
    ("gateway.tools.scan", "_shape"): _built_scan_shapes,
    ("gateway.tools.scan_patterns", "<module>"): _built_scan_patterns,
}


def all_cases() -> list[Case]:
    cases: dict[tuple[str, Any], Case] = {}
    builders = []
    for site in call_sites():
        if site.literal is not None:
            name = f"{site.module}: {site.literal!r}"
            pattern = re.compile(site.literal)
            uses = methods_called_on(site.assigned) if site.assigned else {site.function}
        elif site.assigned is not None:
            name = f"{site.module}.{site.assigned}"
            pattern = getattr(importlib.import_module(site.module), site.assigned)
            uses = methods_called_on(site.assigned)
        else:
            builders.append(BUILT[(site.module, site.where)])
            continue
        if site.function == "compile" and site.assigned is None:
            uses = {"search"}  # compiled for later use elsewhere: assume the worst
        anchored = bool(uses) and uses <= ANCHORED
        cases.setdefault((pattern.pattern, anchored), Case(name, pattern, anchored))
    for build in dict.fromkeys(builders):
        for case in build():
            cases.setdefault((case.pattern.pattern, case.anchored), case)
    return list(cases.values())


def test_every_pattern_built_at_run_time_is_known() -> None:
    dynamic = {
        (site.module, site.where)
        for site in call_sites()
        if site.literal is None and site.assigned is None
    }
    assert dynamic == set(BUILT), "a new re call with a built pattern: add it to BUILT"


CASES = all_cases()


def test_the_audit_sees_the_patterns_it_must() -> None:
    names = " ".join(case.name for case in CASES)
    for expected in ("template /v1/InstalledAddOns/{Sid}", "Substitutions", "_HOST_NAME"):
        assert expected in names
    assert len(CASES) > 60


# ---- 2. statically ----------------------------------------------------------------------

# Characters a pattern's classes are tested on: Latin-1, and a few beyond (a letter, a digit
# and an ideograph that \w holds, an emoji it does not).
UNIVERSE = [*range(256), 0x101, 0x660, 0x4E2D, 0x1F600]
REPEATS = (sre.MAX_REPEAT, sre.MIN_REPEAT)
ZERO_WIDTH = (sre.AT, sre.ASSERT, sre.ASSERT_NOT)


def _class_chars(items: list[tuple[Any, Any]], is_bytes: bool) -> set[int]:
    chars: set[int] = set()
    negate = False
    for op, av in items:
        if op is sre.NEGATE:
            negate = True
        elif op is sre.LITERAL:
            chars.add(av)
        elif op is sre.RANGE:
            chars.update(u for u in UNIVERSE if av[0] <= u <= av[1])
        elif op is sre.CATEGORY:
            escape = {"DIGIT": r"\d", "SPACE": r"\s", "WORD": r"\w"}[str(av).split("_")[-1]]
            if "NOT" in str(av):
                escape = escape.upper()
            chars.update(u for u in _universe(is_bytes) if _one(escape, u, is_bytes))
        else:
            raise AssertionError(f"class item {op}: teach this test to read it")
    universe = set(_universe(is_bytes))
    return universe - chars if negate else chars & universe


def _universe(is_bytes: bool) -> list[int]:
    return list(range(256)) if is_bytes else UNIVERSE


def _one(escape: str, code: int, is_bytes: bool) -> bool:
    if is_bytes:
        return re.fullmatch(escape.encode(), bytes([code])) is not None
    return re.fullmatch(escape, chr(code)) is not None


def chars_of(data: Any, is_bytes: bool) -> set[int]:
    """Every character a (sub)pattern can consume."""
    found: set[int] = set()
    for op, av in data:
        if op is sre.LITERAL:
            found.add(av)
        elif op in (sre.NOT_LITERAL, sre.ANY, sre.GROUPREF):
            found.update(_universe(is_bytes))
        elif op is sre.IN:
            found |= _class_chars(av, is_bytes)
        elif op in (*REPEATS, sre.POSSESSIVE_REPEAT):
            found |= chars_of(av[2], is_bytes)
        elif op is sre.SUBPATTERN:
            found |= chars_of(av[3], is_bytes)
        elif op is sre.ATOMIC_GROUP:
            found |= chars_of(av, is_bytes)
        elif op is sre.BRANCH:
            for branch in av[1]:
                found |= chars_of(branch, is_bytes)
        elif op is sre.GROUPREF_EXISTS:
            found |= chars_of(av[1], is_bytes) | chars_of(av[2] or [], is_bytes)
    return found


def first_of(data: Any, is_bytes: bool) -> set[int]:
    """The characters a (sub)pattern's match can start with."""
    found: set[int] = set()
    for op, av in data:
        if op in ZERO_WIDTH:
            continue
        item = [(op, av)]
        if op is sre.BRANCH:
            for branch in av[1]:
                found |= first_of(branch, is_bytes)
        elif op is sre.SUBPATTERN:
            found |= first_of(av[3], is_bytes)
        elif op is sre.ATOMIC_GROUP:
            found |= first_of(av, is_bytes)
        elif op in (*REPEATS, sre.POSSESSIVE_REPEAT):
            found |= first_of(av[2], is_bytes)
        else:
            found |= chars_of(item, is_bytes)
        if sre_parse.SubPattern(sre_parse.State(), item).getwidth()[0] > 0:
            return found
    return found


def _variable(op: Any, av: Any) -> bool:
    return op in REPEATS and av[0] != av[1]


def _flat(data: Any) -> list[tuple[Any, Any]]:
    """A sequence with its groups opened (not atomic groups: nothing backtracks into them)."""
    items = []
    for op, av in data:
        if op is sre.SUBPATTERN:
            items.extend(_flat(av[3]))
        else:
            items.append((op, av))
    return items


def hazards(data: Any, is_bytes: bool) -> Iterator[str]:
    """What can make backtracking super-linear, as text naming the part."""
    items = _flat(data)
    for index, (op, av) in enumerate(items):
        if op in REPEATS and av[1] > 1:
            for inner_op, inner_av in _backtrackable(av[2]):
                if _variable(inner_op, inner_av):
                    yield f"nested quantifier in {_text(op, av)}"
                if inner_op is sre.BRANCH:
                    starts = [first_of(branch, is_bytes) for branch in inner_av[1]]
                    if any(a & b for a, b in itertools.combinations(starts, 2)):
                        yield f"alternation with a shared first character in {_text(op, av)}"
        if _variable(op, av) and av[1] > 1:
            taken = chars_of(av[2], is_bytes)
            for later_op, later_av in items[index + 1 :]:
                if later_op in ZERO_WIDTH:
                    continue
                if later_op in (*REPEATS, sre.POSSESSIVE_REPEAT) and later_av[0] != later_av[1]:
                    if chars_of(later_av[2], is_bytes) & taken and later_av[1] > 1:
                        yield f"{_text(op, av)} then {_text(later_op, later_av)} share characters"
                        break
                    if later_av[0] == 0:
                        continue
                later = [(later_op, later_av)]
                width = sre_parse.SubPattern(sre_parse.State(), later).getwidth()
                if width[0] == width[1] and chars_of(later, is_bytes) <= taken:
                    continue  # a literal the first repeat could have taken
                break
        for nested in _children(op, av):
            yield from hazards(nested, is_bytes)


def _backtrackable(data: Any) -> Iterator[tuple[Any, Any]]:
    """The parts of ``data`` a failure after it can backtrack into: not into possessive
    quantifiers, atomic groups or lookarounds (Python's are atomic)."""
    for op, av in data:
        yield op, av
        if op in REPEATS:
            yield from _backtrackable(av[2])
        elif op is sre.SUBPATTERN:
            yield from _backtrackable(av[3])
        elif op is sre.BRANCH:
            for branch in av[1]:
                yield from _backtrackable(branch)


def _children(op: Any, av: Any) -> list[Any]:
    if op in (*REPEATS, sre.POSSESSIVE_REPEAT):
        return [av[2]]
    if op is sre.BRANCH:
        return list(av[1])
    if op in (sre.ASSERT, sre.ASSERT_NOT):
        return [av[1]]
    if op is sre.ATOMIC_GROUP:
        return [av]
    if op is sre.GROUPREF_EXISTS:
        return [av[1], av[2] or []]
    return []


def _text(op: Any, av: Any) -> str:
    return f"{op}{av!r}"[:90]


# Reviewed: the nested quantifiers that cannot backtrack more than linearly, and why.
REVIEWED = {
    "gateway.config.hosts._HOST_NAME": "labels are separated by '.', which no label holds, so "
    "there is one way to split a name; the whole name is at most 253 characters (the "
    "lookahead is checked first, in time bounded by 253)",
}


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name[:80])
def test_no_pattern_can_backtrack_super_linearly(case: Case) -> None:
    pattern = case.pattern
    tree = sre_parse.parse(pattern.pattern, pattern.flags)
    found = sorted(set(hazards(tree.data, isinstance(pattern.pattern, bytes))))
    if case.name in REVIEWED:
        assert found, f"{case.name} is reviewed but has no hazard left: unlist it"
    else:
        assert not found, (pattern.pattern, found)


# Patterns gateway/ had before issue 17, and the hazard each has.
OLD = {
    # the rewrite's segment, exponential
    r"/v1(?=/A/(?:[A-Za-z0-9_~.\-]+|%[0-9A-Fa-f]{2})+(?:/E)?[?\"])": "nested",
    # routing's {a}.{b}, quadratic
    r"/a/(?:[A-Za-z0-9_~.\-]|%[0-9A-Fa-f]{2})+\.(?:[A-Za-z0-9_~.\-]|%[0-9A-Fa-f]{2})+": "share",
    # gateway scan's line break and receiver chain, quadratic
    r"\.preview[ \t]*\\?[ \t]*\r?\n[ \t]*\.marketplace": "share",
    r"(?P<r>(?<![\w$@])[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*?)?\.preview\.marketplace": "nested",
    r"(?:a|ab|b)+!": "shared first",
}


def test_the_static_check_sees_the_hazards_it_is_for() -> None:
    for text, hazard in OLD.items():
        found = " ".join(hazards(sre_parse.parse(text).data, False))
        assert hazard in found, (text, found)
    for text in (r"(?:[a-z]++|%[0-9][0-9])++/", r"(?>[a-z]+?\.)[a-z]++$", r"[ \t]*+\\?[ \t]*+\n"):
        assert not list(hazards(sre_parse.parse(text).data, False)), text


# ---- 3. by timing -----------------------------------------------------------------------


def lead(data: Any, is_bytes: bool) -> list[int]:
    """Characters that take a match to the pattern's first unbounded quantifier: its literals,
    one character of each class, the first branch, the inside of optional parts and of
    lookaheads (the way into a lookahead's own quantifiers)."""
    out: list[int] = []
    for op, av in data:
        if op is sre.LITERAL:
            out.append(av)
        elif op is sre.IN:
            out.append(min(_class_chars(av, is_bytes)))
        elif op is sre.SUBPATTERN:
            out += lead(av[3], is_bytes)
        elif op is sre.BRANCH:
            return out + lead(av[1][0], is_bytes)
        elif op is sre.ASSERT and av[0] == 1:
            return out + lead(av[1], is_bytes)
        elif op in (*REPEATS, sre.POSSESSIVE_REPEAT) and av[1] <= 1:
            return out + lead(av[2], is_bytes)
        elif op in (*REPEATS, sre.POSSESSIVE_REPEAT) and av[0] == av[1]:
            out += lead(av[2], is_bytes) * av[0]
        elif op in ZERO_WIDTH:
            continue
        else:
            return out
    return out


def _repeated(data: Any, is_bytes: bool) -> Iterator[set[int]]:
    """The character sets of the pattern's variable quantifiers' parts: a long run can only
    come from them."""
    for op, av in data:
        if op in (*REPEATS, sre.POSSESSIVE_REPEAT) and av[1] > 1:
            for inner_op, inner_av in av[2]:
                yield chars_of([(inner_op, inner_av)], is_bytes)
        for child in _children(op, av) + ([av[3]] if op is sre.SUBPATTERN else []):
            yield from _repeated(child, is_bytes)


def _followers(data: Any, is_bytes: bool) -> Iterator[int]:
    """Characters that can come right after a variable quantifier and that it could take as
    well (the '.' of ``{a}.{b}``): where backtracking has a choice to make."""
    items = _flat(data)
    for index, (op, av) in enumerate(items):
        if op in (*REPEATS, sre.POSSESSIVE_REPEAT) and av[0] != av[1]:
            taken = chars_of(av[2], is_bytes)
            yield from sorted(first_of(items[index + 1 :], is_bytes) & taken)[:3]
    for op, av in data:
        for child in _children(op, av) + ([av[3]] if op is sre.SUBPATTERN else []):
            yield from _followers(child, is_bytes)


def representatives(data: Any, is_bytes: bool) -> list[int]:
    """One character of each kind the pattern's quantifiers tell apart (printable ASCII where
    there is one), and one that no part of the pattern takes."""
    atoms = list(_repeated(data, is_bytes)) + [chars_of(data, is_bytes)]
    atoms += [{code} for code in set(_followers(data, is_bytes))]
    seen: dict[tuple[bool, ...], int] = {}
    for code in sorted(_universe(is_bytes), key=lambda c: (not 0x21 <= c < 0x7F, c)):
        seen.setdefault(tuple(code in atom for atom in atoms), code)
    return list(seen.values())


def adversarial(case: Case, length: int) -> Iterator[Any]:
    """Texts of about ``length`` characters: the lead, a run of one character of each kind the
    pattern's quantifiers tell apart, of such a character and one that can follow a
    quantifier, or of the lead's last characters in pairs; then nothing or one character."""
    pattern = case.pattern
    is_bytes = isinstance(pattern.pattern, bytes)
    data = sre_parse.parse(pattern.pattern, pattern.flags).data
    start = lead(data, is_bytes)
    chars = representatives(data, is_bytes)
    followers = sorted(set(_followers(data, is_bytes)))
    units = [[c] for c in chars] + [[a, b] for a, b in itertools.pairwise(start[-3:])]
    units += [[c, f] for c in chars for f in followers if c != f]
    # what ends the run: nothing, a character nothing takes (the last representative), and a
    # few of the others (every one would multiply the cost, seldom the findings)
    ends = [
        [],
        *([c] for c in chars[-1:] + chars[: len(chars) - 1 : 3]),
        *([c] for c in set(start[-2:])),
    ]
    for unit, end in itertools.product(units, ends):
        codes = start + unit * (length // len(unit)) + end
        yield bytes(codes) if is_bytes else "".join(map(chr, codes))


def _run(case: Case, text: Any) -> None:
    if case.anchored:
        case.pattern.fullmatch(text)
        case.pattern.match(text)
    else:
        for _ in (case.finditer or case.pattern.finditer)(text):
            pass


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name[:80])
def test_every_pattern_is_linear_on_adversarial_texts(case: Case) -> None:
    for index, large in enumerate(adversarial(case, 100_000)):
        with deadline(5, f"{case.name} on adversarial text {index}"):
            seconds = best_of(lambda large=large: _run(case, large), 1)
            if seconds < 0.005:
                continue  # fast in absolute terms (linear is well under that)
            small = list(adversarial(case, 10_000))[index]
            small_seconds, seconds = growth(
                lambda small=small: _run(case, small), lambda large=large: _run(case, large), 30
            )
        assert seconds < 0.05, (case.name, index, seconds)
        assert seconds < 30 * small_seconds, (case.name, index, small_seconds, seconds)


@pytest.mark.parametrize("text", list(OLD)[:4])
def test_the_adversarial_texts_find_the_old_hazards(text: str) -> None:
    """Each old pattern meets a text of 5,000 characters that takes it 50 ms or more."""
    case = Case("old", re.compile(text), anchored=text.startswith("/a/"))
    for large in adversarial(case, 5_000):
        try:
            with deadline(0.5, "an old pattern"):
                if best_of(lambda large=large: _run(case, large), 1) > 0.05:
                    return
        except TooSlow:
            return
    raise AssertionError(f"no adversarial text slows {text} down")
