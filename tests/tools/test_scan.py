"""``gateway scan``: legacy Preview Marketplace usage in a source tree and its v1 replacement."""

from __future__ import annotations

import argparse
import json
import random
import shutil
from pathlib import Path

import pytest

from gateway.config.rules import load_rules
from gateway.tools import scan, scan_patterns
from tests.timing import deadline, growth

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "scan"
RULES = load_rules()

# (path, line, matched text, replacement, kind) for every finding in fixtures/scan/legacy.
EXPECTED = [
    (
        "AddOns.java",
        2,
        "com.twilio.rest.preview.marketplace",
        "com.twilio.rest.marketplace.v1",
        "java",
    ),
    (
        "AddOns.java",
        3,
        "com.twilio.rest.preview.marketplace",
        "com.twilio.rest.marketplace.v1",
        "java",
    ),
    ("Program.cs", 3, "Twilio.Rest.Preview.Marketplace", "Twilio.Rest.Marketplace.V1", "csharp"),
    ("addons.js", 4, "client.preview.marketplace", "client.marketplace.v1", "node"),
    (
        "addons.js",
        5,
        "https://preview.twilio.com/marketplace/InstalledAddOns/${sid}/Extensions",
        "https://marketplace.twilio.com/v1/InstalledAddOns/${sid}/Extensions",
        "url",
    ),
    ("addons.php", 3, "Twilio\\Rest\\Preview\\Marketplace", "Twilio\\Rest\\Marketplace\\V1", "php"),
    ("addons.php", 6, "$twilio->preview->marketplace", "$twilio->marketplace->v1", "php"),
    ("addons.py", 5, "twilio.rest.preview.marketplace", "twilio.rest.marketplace.v1", "python"),
    ("addons.py", 8, "client.preview.marketplace", "client.marketplace.v1", "python"),
    ("addons.py", 9, "client.preview.marketplace", "client.marketplace.v1", "python"),
    (
        "addons.py",
        11,
        "https://preview.twilio.com/marketplace/AvailableAddOns/XB00000000000000000000000000000001"
        "/Extensions",
        "https://marketplace.twilio.com/v1/AvailableAddOns/XB00000000000000000000000000000001"
        "/Extensions",
        "url",
    ),
    (
        "addons.py",
        15,
        "https://preview.twilio.com/marketplace",
        "https://marketplace.twilio.com/v1",
        "url",
    ),
    ("addons.rb", 3, "@client.preview.marketplace", "@client.marketplace.v1", "ruby"),
    ("addons.rb", 4, "Twilio::REST::Preview::Marketplace", "Twilio::REST::Marketplace::V1", "ruby"),
    ("deploy.sh", 2, "api:preview:marketplace:", "api:marketplace:v1:", "twilio-cli"),
    (
        "deploy.sh",
        3,
        "https://preview.twilio.com/marketplace/InstalledAddOns/XE00000000000000000000000000000001",
        "https://marketplace.twilio.com/v1/InstalledAddOns/XE00000000000000000000000000000001",
        "url",
    ),
    (
        "main.go",
        5,
        "github.com/twilio/twilio-go/twilio/rest/preview",
        "github.com/twilio/twilio-go/rest/marketplace/v1",
        "go",
    ),
    (
        "main.go",
        10,
        "client.Preview.ListInstalledAddOn",
        "client.MarketplaceV1.ListInstalledAddOn",
        "go",
    ),
    (
        "main.go",
        11,
        "PreviewMarketplaceInstalledAddOnInstalledAddOnExtension",
        "MarketplaceV1InstalledAddOnExtension",
        "go",
    ),
    ("split.py", 5, "client.preview \\ .marketplace", "client.marketplace.v1", "python"),
    ("split.py", 7, "https://preview.twilio.com/marketplace/Nope/Resource", None, "url"),
]


def run_scan(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="gateway scan")
    scan.add_arguments(parser)
    return scan.run(parser.parse_args(list(argv)))


def findings_of(text: str, path: str = "x.txt") -> list[tuple[str, str]]:
    return [(f.match, f.replacement) for f in scan.scan_text(text, path, RULES)]


def test_fixture_tree_findings_exactly() -> None:
    result = scan.scan_path(FIXTURES / "legacy", RULES)
    got = [(f.path, f.line, f.match, f.replacement, f.kind) for f in result.findings]
    assert got == EXPECTED
    assert result.files_scanned == 9


def test_clean_tree_has_no_findings() -> None:
    result = scan.scan_path(FIXTURES / "clean", RULES)
    assert result.findings == ()
    assert result.files_scanned == 2


def test_urls_are_mapped_by_the_rules() -> None:
    result = scan.scan_path(FIXTURES / "legacy", RULES)
    rules = {f.match.rsplit("/marketplace", 1)[1]: f.rule for f in result.findings if f.rule}
    assert rules == {
        "/InstalledAddOns/${sid}/Extensions": "preview_installed_add_on_extensions",
        "/AvailableAddOns/XB00000000000000000000000000000001/Extensions": (
            "preview_available_add_on_extensions"
        ),
        "/InstalledAddOns/XE00000000000000000000000000000001": "preview_installed_add_on",
    }


@pytest.mark.parametrize(
    ("rest", "expected"),
    [
        ("", "https://marketplace.twilio.com/v1"),
        ("/", "https://marketplace.twilio.com/v1/"),
        ("/AvailableAddOns", "https://marketplace.twilio.com/v1/AvailableAddOns"),
        (
            "/InstalledAddOns?PageSize=20&Page=1",
            "https://marketplace.twilio.com/v1/InstalledAddOns?PageSize=20&Page=1",
        ),
        ("/InstalledAddOns/%s", "https://marketplace.twilio.com/v1/InstalledAddOns/%s"),
        (
            "/InstalledAddOns/{sid}/Extensions/{ext}",
            "https://marketplace.twilio.com/v1/InstalledAddOns/{sid}/Extensions/{ext}",
        ),
    ],
)
def test_map_preview_url(rest: str, expected: str) -> None:
    assert scan.map_preview_url(rest, RULES)[0] == expected


@pytest.mark.parametrize(
    ("rest", "expected", "rule"),
    [
        (
            "/InstalledAddOns/",  # a prefix code appends a SID to
            "https://marketplace.twilio.com/v1/InstalledAddOns/",
            "preview_installed_add_ons",
        ),
        (
            "/AvailableAddOns/XB\u2026/Extensions",  # a documentation placeholder
            "https://marketplace.twilio.com/v1/AvailableAddOns/XB\u2026/Extensions",
            "preview_available_add_on_extensions",
        ),
        ("/Nope", None, None),
        ("/InstalledAddOns/XE1/Bogus", None, None),
        ("/AvailableAddOns/a/Extensions/b/More?x=1", None, None),
        ("/marketplace/InstalledAddOns", None, None),
    ],
)
def test_a_path_no_rule_maps_gets_no_invented_url(
    rest: str, expected: str | None, rule: str | None
) -> None:
    assert scan.map_preview_url(rest, RULES) == (expected, rule)


@pytest.mark.parametrize(
    ("text", "path", "shown", "replacement"),
    [
        (
            "x = client.preview \\\n    .marketplace.installed_add_ons.list()\n",
            "a.py",
            "client.preview \\ .marketplace",
            "client.marketplace.v1",
        ),
        (
            "const x = await client.preview\n  .marketplace.installedAddOns.list();\n",
            "a.js",
            "client.preview .marketplace",
            "client.marketplace.v1",
        ),
        (
            "const x = this.client.preview.\r\n  marketplace.installedAddOns.list();\r\n",
            "a.ts",
            "this.client.preview. marketplace",
            "this.client.marketplace.v1",
        ),
        (
            "@client.preview\n  .marketplace\n  .installed_add_ons.list\n",
            "a.rb",
            "@client.preview .marketplace",
            "@client.marketplace.v1",
        ),
        (
            "$x = $twilio->preview\n    ->marketplace->installedAddOns->read();\n",
            "a.php",
            "$twilio->preview ->marketplace",
            "$twilio->marketplace->v1",
        ),
    ],
    ids=["python-backslash", "node-chain", "dot-at-line-end", "ruby", "php"],
)
def test_a_chain_split_over_two_lines_is_found(
    text: str, path: str, shown: str, replacement: str
) -> None:
    [finding] = scan.scan_text("# first line\n" + text, path, RULES)
    assert (finding.line, finding.match, finding.replacement) == (2, shown, replacement)
    assert finding.column == text.index(shown.split(".")[0].split("-")[0]) + 1


def test_split_chains_that_are_not_the_marketplace_are_not_reported() -> None:
    for text in (
        "client.preview \\\n    .sync.services.list()",
        "client.preview\n\n  .marketplace.x",  # a blank line between: not one chain
        "client.preview\n  .marketplaceish",
    ):
        assert findings_of(text, "a.py") == [], text


# The receiver patterns find their matches from the anchor backwards (Pattern.finditer); the
# textbook regex (the same regex, run by finditer alone) is the reference for what they find.
RECEIVER_CASES = [
    "a.b.preview.marketplace",
    "é.a.preview.marketplace x@a.preview.marketplace @@a.preview.marketplace",
    "@a.b.preview.marketplace.c.preview.marketplace$d.preview.marketplace",
    "9b.c.preview.marketplace (x).y.preview.marketplace a..b.preview.marketplace",
    "a.preview.marketplaceish.b.preview.marketplace _$.$_.preview.marketplace",
    "a.preview \\\n .marketplace b.preview.\n  marketplace.c.preview\n\n.marketplace",
]


def test_receiver_chains_are_found_as_the_regex_alone_finds_them() -> None:
    rng = random.Random(17)
    pieces = ["a", "b9", "é", "$", "@", ".", " ", "(", "\n", ".preview.marketplace", "\\\n"]
    corpus = RECEIVER_CASES + [
        "".join(rng.choice(pieces) for _ in range(rng.randrange(1, 30))) for _ in range(3000)
    ]
    for pattern in (*scan_patterns.PATTERNS, *scan_patterns.SPLIT_CHAINS):
        for text in corpus:
            found = [(m.span(), m.groupdict()) for m in pattern.finditer(text)]
            assert found == [(m.span(), m.groupdict()) for m in pattern.regex.finditer(text)], text


# Lines that made the receiver and line-break patterns quadratic: a long chain of names
# without the marketplace, a long run of blanks after ".preview", a PHP chain; and lines of
# many findings (each once checked against all the earlier ones).
LONG_LINES = {
    "chain": lambda n: "a." * (n // 2) + "x review",
    "chain-found": lambda n: "a." * (n // 2) + "preview.marketplace",
    "blanks": lambda n: "c.preview" + " " * n + "x\n.marketplace",
    "php": lambda n: "$a" + "->a" * (n // 3) + " review",
    "many": lambda n: "a.preview.marketplace." * (n // 22),
    "many-split": lambda n: "a.preview.\nmarketplace." * (n // 23),
}


@pytest.mark.parametrize("shape", LONG_LINES)
def test_scan_time_is_linear_in_the_line(shape: str) -> None:
    def run(length: int) -> None:
        scan.scan_text(LONG_LINES[shape](length), "a.py", RULES)

    with deadline(10, f"scanning a {shape} line"):
        small, large = growth(lambda: run(10_000), lambda: run(100_000), 30)
    # ten times the text: about ten times the time when linear, a hundred when quadratic
    assert large < 30 * small, (small, large)


def test_every_preview_rule_maps_to_its_target() -> None:
    sample = {"Sid": "XE" + "a" * 32, "AvailableAddOnSid": "XB" + "b" * 32}
    sample["InstalledAddOnSid"] = "XE" + "c" * 32
    for rule in RULES.rules:
        if not rule.deprecated:
            continue
        path = rule.source.render(sample)
        url, name = scan.map_preview_url(path.removeprefix("/marketplace"), RULES)
        assert name == rule.name
        assert url == "https://marketplace.twilio.com" + rule.target.render(sample)


def test_url_forms() -> None:
    assert findings_of("see http://preview.twilio.com/marketplace/AvailableAddOns.") == [
        (
            "http://preview.twilio.com/marketplace/AvailableAddOns",
            "https://marketplace.twilio.com/v1/AvailableAddOns",
        )
    ]
    assert findings_of("host = 'preview.twilio.com/marketplace'") == [
        ("preview.twilio.com/marketplace", "https://marketplace.twilio.com/v1")
    ]
    assert findings_of("https://preview.twilio.com/marketplaces/x") == []
    assert findings_of("https://preview.twilio.com/Sync/Services") == []
    assert findings_of("https://marketplace.twilio.com/v1/InstalledAddOns") == []


def test_receivers_and_chains() -> None:
    assert findings_of("self.twilio.preview.marketplace.installed_add_ons", "a.py") == [
        ("self.twilio.preview.marketplace", "self.twilio.marketplace.v1")
    ]
    assert findings_of("getClient().preview.marketplace.installedAddOns", "a.ts") == [
        (".preview.marketplace", ".marketplace.v1")
    ]
    assert findings_of("$this->client->preview->marketplace->availableAddOns", "a.php") == [
        ("$this->client->preview->marketplace", "$this->client->marketplace->v1")
    ]
    assert findings_of("use Twilio\\\\Rest\\\\Preview\\\\Marketplace;") == [
        ("Twilio\\\\Rest\\\\Preview\\\\Marketplace", "Twilio\\\\Rest\\\\Marketplace\\\\V1")
    ]
    assert findings_of("c.Preview.FetchMarketplaceAvailableAddOnExtension(a, b)", "m.go") == [
        (
            "c.Preview.FetchMarketplaceAvailableAddOnExtension",
            "c.MarketplaceV1.FetchAvailableAddOnExtension",
        )
    ]


def test_v1_and_unrelated_preview_code_is_not_reported() -> None:
    clean = [
        "client.marketplace.v1.installed_add_ons.list()",
        "client.preview.sync.services.list()",
        "client.preview.marketplaceish",
        "com.twilio.rest.marketplace.v1.InstalledAddOn",
        "client.MarketplaceV1.ListMarketplaceInstalledAddOn(nil)",  # twilio-go 1.21 v1 naming
        "import { preview } from './preview'",
    ]
    for line in clean:
        assert findings_of(line, "a.py") == [], line


def test_kind_is_narrowed_by_extension() -> None:
    line = "client.preview.marketplace.x"
    kinds = {
        path: scan.scan_text(line, path, RULES)[0].kind
        for path in ("a.py", "a.mjs", "a.rb", "README.md")
    }
    assert kinds == {
        "a.py": "python",
        "a.mjs": "node",
        "a.rb": "ruby",
        "README.md": "python/node/ruby",
    }


def test_skips_vendor_dirs_binary_and_large_files(tmp_path: Path) -> None:
    legacy = "client.preview.marketplace.installed_add_ons.list()\n"
    for skipped in (".git", "node_modules", ".venv", "__pycache__"):
        (tmp_path / skipped).mkdir()
        (tmp_path / skipped / "x.py").write_text(legacy)
    (tmp_path / "blob.bin").write_bytes(b"\0\1" + legacy.encode())
    (tmp_path / "big.py").write_text(legacy + "#" * 5000)
    (tmp_path / "real.py").write_text(legacy)
    result = scan.scan_path(tmp_path, RULES, max_bytes=4096)
    assert [f.path for f in result.findings] == ["real.py"]
    assert result.files_scanned == 1
    assert result.files_skipped == 2


def test_undecodable_text_is_still_scanned(tmp_path: Path) -> None:
    (tmp_path / "latin1.py").write_bytes(
        b"# caf\xe9\nclient.preview.marketplace.available_add_ons.list()\n"
    )
    result = scan.scan_path(tmp_path, RULES)
    assert [(f.path, f.line) for f in result.findings] == [("latin1.py", 2)]


def test_cli_text_output_and_exit_status(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_scan(str(FIXTURES / "legacy")) == 1
    out = capsys.readouterr().out
    assert (
        "addons.py:8: client.preview.marketplace -> client.marketplace.v1  [python]"
        in out.splitlines()
    )
    assert "legacy/" not in out  # paths are relative to the scanned directory
    assert f"{len(EXPECTED)} Preview Marketplace usage(s) in 9 file(s)" in out
    assert (
        "split.py:7: https://preview.twilio.com/marketplace/Nope/Resource -> "
        "(no v1 equivalent: no gateway rule maps this path)  [url]"
    ) in out.splitlines()


def test_cli_clean_exit_zero(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_scan(str(FIXTURES / "clean")) == 0
    assert "No Preview Marketplace usage found" in capsys.readouterr().out


def test_cli_single_file(capsys: pytest.CaptureFixture[str]) -> None:
    target = FIXTURES / "legacy" / "addons.rb"
    assert run_scan(str(target)) == 1
    out = capsys.readouterr().out
    assert out.startswith(f"{target}:3: @client.preview.marketplace -> @client.marketplace.v1")


def test_cli_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert run_scan(str(FIXTURES / "legacy"), "--format", "json") == 1
    data = json.loads(capsys.readouterr().out)
    assert data["files_scanned"] == 9
    assert data["findings"][-1]["replacement"] is None  # not an invented v1 URL
    assert len(data["findings"]) == len(EXPECTED)
    first = data["findings"][0]
    assert set(first) == {"path", "line", "column", "match", "replacement", "kind", "rule"}
    assert first["path"] == "AddOns.java" and first["column"] == 8


def test_cli_usage_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_scan(str(tmp_path / "missing")) == 2
    assert "no such file or directory" in capsys.readouterr().err
    with pytest.raises(SystemExit) as zero:
        run_scan(str(tmp_path), "--max-bytes", "0")
    assert zero.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "gateway scan: error: argument --max-bytes: expected a size like 512K or 1M, got '0'"
    )
    bad_rules = tmp_path / "rules"
    bad_rules.mkdir()
    (bad_rules / "x.toml").write_text("not toml [")
    assert run_scan(str(tmp_path), "--rules", str(bad_rules)) == 2
    with pytest.raises(SystemExit) as exc:
        run_scan(str(tmp_path), "--format", "xml")
    assert exc.value.code == 2


def test_scans_its_own_copy_of_the_fixtures(tmp_path: Path) -> None:
    """The tree is found wherever it lives (no reliance on the repository layout)."""
    shutil.copytree(FIXTURES, tmp_path / "copy")
    result = scan.scan_path(tmp_path / "copy", RULES)
    assert len(result.findings) == len(EXPECTED)
    assert {f.path.split("/")[0] for f in result.findings} == {"legacy"}


def test_gateway_cli_verb(capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.cli import main

    assert main(["scan", str(FIXTURES / "legacy"), "--format", "json"], environ={}) == 1
    assert len(json.loads(capsys.readouterr().out)["findings"]) == len(EXPECTED)
    assert main(["scan", str(FIXTURES / "clean")], environ={}) == 0
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        main(["scan"], environ={})
    assert exc.value.code == 2


@pytest.mark.parametrize(("size", "limit"), [("1M", 1024**2), ("512K", 512 * 1024), ("40", 40)])
def test_max_bytes_takes_sizes_like_every_size_flag(
    tmp_path: Path, size: str, limit: int, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "small.py").write_text("x = 1\n")
    (tmp_path / "big.txt").write_bytes(b"a" * (limit + 1))
    assert run_scan(str(tmp_path), "--max-bytes", size, "--format", "json") == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["files_scanned"], data["files_skipped"]) == (1, 1)


@pytest.mark.parametrize("fill", ["empty", "binary", "too large"])
def test_nothing_scanned_exits_2_so_a_ci_gate_cannot_pass_on_nothing(
    tmp_path: Path, fill: str, capsys: pytest.CaptureFixture[str]
) -> None:
    if fill == "binary":
        (tmp_path / "image.png").write_bytes(b"\x89PNG\0\0")
    elif fill == "too large":
        (tmp_path / "dump.sql").write_bytes(b"preview.twilio.com/marketplace " * 100)
    for output in ("text", "json"):
        assert run_scan(str(tmp_path), "--max-bytes", "1K", "--format", output) == 2
        out, err = capsys.readouterr()
        assert out == ""
        (line,) = err.splitlines()
        assert line.startswith(f"gateway scan: nothing scanned: {tmp_path} holds no text file")
