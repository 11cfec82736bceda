"""``gateway consumers``: where each consumer stands in the staged migration.

One row per consumer, listed (``[[consumers]]`` in the config file) or observed calling (in the
metrics, not on the list): name, SID, group, owner, stage, deprecated calls, last deprecated
call, cut-off and days left. It reads the same sources as ``gateway report``, through the same
reader (:mod:`gateway.tools.report_reader`): a running gateway's ``/metrics`` (calls since the
gateway started) or a Prometheus server scraping the fleet (calls within ``--window``). The rows
and stages are :mod:`gateway.migration.standing`'s, as on the migration page.

Exit status: 0; 1 with ``--fail-if-called`` while a consumer whose cut-off has passed still
makes deprecated calls (they are refused: that app is broken); 2 when the source or the config
cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from typing import Any

from gateway.config.instants import iso
from gateway.config.settings import ConfigError, load_config
from gateway.migration.standing import QUIET_DAYS, Standing, standings
from gateway.tools.report import add_source_arguments, read_source, source_flags_problem
from gateway.tools.report_reader import ReportError

EXIT_OK = 0
EXIT_CALLED_AFTER_CUTOFF = 1
EXIT_USAGE = 2
DEFAULT_WINDOW = "30d"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``gateway consumers``' arguments to ``parser``."""
    add_source_arguments(parser, DEFAULT_WINDOW, "calls")
    parser.add_argument(
        "--quiet-days",
        type=float,
        default=QUIET_DAYS,
        metavar="N",
        help=f"a listed consumer with no deprecated call for N days is 'quiet', ready to cut "
        f"off (default {QUIET_DAYS})",
    )
    parser.add_argument(
        "--format", choices=("text", "json"), default="text", help="output format (default text)"
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help="the gateway's config file, whose [[consumers]] list the rows start from "
        "(env GATEWAY_CONFIG)",
    )
    parser.add_argument(
        "--timeout", type=float, default=10.0, metavar="SECONDS", help="HTTP timeout (default 10)"
    )
    parser.add_argument(
        "--fail-if-called",
        action="store_true",
        help="exit 1 while a consumer whose cut-off has passed still makes deprecated calls",
    )


def _column(rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]


def format_text(rows: Sequence[Standing], source: str, scope: str, now: float) -> str:
    """The rows as a table, and what needs attention."""
    table = [("NAME", "SID", "GROUP", "OWNER", "STAGE", "CALLS", "LAST CALL", "CUT-OFF", "DAYS")]
    for row in rows:
        sid = row.sids[0] if row.sids else "-"
        if len(row.sids) > 1:
            sid += f" (+{len(row.sids) - 1})"
        days = row.days_left(now)
        table.append(
            (
                row.name,
                sid,
                row.group or "-",
                row.owner or "-",
                row.stage_text,
                str(row.deprecated_calls),
                iso(row.last_call) or "-",
                (iso(row.cutoff) or "-")[:10],
                "-" if days is None else f"{days:g}",
            )
        )
    lines = [f"source: {source} ({scope}), at {iso(now)}", "", *_column(table)]
    broken = [row.name for row in rows if row.called_after_cutoff]
    if broken:
        lines += [
            "",
            f"Still calling after their cut-off (refused with 410, code 88013): "
            f"{', '.join(broken)}",
        ]
    if not rows:
        lines += ["", "No consumer is listed or was seen calling a deprecated route."]
    return "\n".join(lines)


def to_json(
    rows: Sequence[Standing], source: str, window: str | None, quiet_days: float, now: float
) -> dict[str, Any]:
    return {
        "source": source,
        "generated_at": iso(now),
        "window": window,
        "quiet_days": quiet_days,
        "called_after_cutoff": [row.name for row in rows if row.called_after_cutoff],
        "consumers": [row.to_json(now) for row in rows],
    }


def run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    """Run ``gateway consumers``; the exit status."""
    problem = source_flags_problem(args)
    if problem is not None:
        print(f"gateway consumers: {problem}", file=sys.stderr)
        return EXIT_USAGE
    if not 0 < args.quiet_days < 10_000:
        print("gateway consumers: --quiet-days: expected a number of days > 0", file=sys.stderr)
        return EXIT_USAGE
    try:
        config = load_config({"config": args.config}, environ)
        source, window, samples = read_source(args, DEFAULT_WINDOW)
    except (ReportError, ConfigError) as exc:
        print(f"gateway consumers: {exc}", file=sys.stderr)
        return EXIT_USAGE
    scope = f"calls in the last {window}" if window else "calls since gateway start"
    now = time.time()
    rows = standings(
        config.consumers,
        samples.consumer_calls(),
        samples.consumer_last_seen,
        now,
        args.quiet_days,
    )
    if args.format == "json":
        print(json.dumps(to_json(rows, source, window, args.quiet_days, now), indent=2))
    else:
        print(format_text(rows, source, scope, now))
    if args.fail_if_called and any(row.called_after_cutoff for row in rows):
        return EXIT_CALLED_AFTER_CUTOFF
    return EXIT_OK
