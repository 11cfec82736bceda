"""Turn the raw lines of benchmarks/run.sh into the summary table and the target verdicts.

    python3 benchmarks/report.py results.tsv [--meta meta.txt] [--markdown report.md]

Input rows: ``section round target path line`` (tab-separated), ``line`` being the
``key=value`` output of benchmarks/harness/measure.sh plus ``rss_kb=`` (or the memory keys).
Every figure is the median over the rounds of one run. Standard library only.
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

TARGETS = ("direct", "nginx-1w", "yardstick", "raw-pool", "gateway")
PATHS = ("list", "single")
REFERENCES = ("yardstick", "raw-pool")  # what the gateway is compared with, in that order

# The targets of issue 20 (all with the full feature set, one core, in one run); the raw pool
# (raw_pool_proxy.py) is the ceiling a Python proxy reaches, reported without a target.
MIN_VS_YARDSTICK = {"list": 0.8, "single": 0.8}  # gateway rps / yardstick rps
MAX_ADDED_P50_VS_YARDSTICK = 1.0  # CONNS=1: (gateway - direct p50) / (yardstick - direct p50)
MAX_RSS_MB = 48.0  # per worker, after MEM_REQUESTS: no worse than before (47.2 MB at c411a76)
MAX_GROWTH_MB = 5.0  # between MEM_MARK and MEM_REQUESTS


@dataclass
class Table:
    title: str
    header: tuple[str, ...]
    rows: list[tuple[str, ...]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def parse(path: Path) -> dict[tuple[str, str, str], list[dict[str, str]]]:
    runs: dict[tuple[str, str, str], list[dict[str, str]]] = defaultdict(list)
    for raw in path.read_text().splitlines()[1:]:
        if not raw.strip() or raw.startswith("#"):
            continue
        section, _round, target, req_path, line = raw.split("\t", 4)
        kv = dict(item.split("=", 1) for item in line.split() if "=" in item)
        if 'reason="' in line:
            kv["reason"] = line.split('reason="', 1)[1].rsplit('"', 1)[0]
        runs[(section, target, req_path)].append(kv)
    return runs


def median(runs: Iterable[dict[str, str]], key: str) -> float:
    values = []
    for run in runs:
        text = run.get(key, "NA").rstrip("%")
        if text not in ("", "NA") and run.get("check", "ok") in ("ok", "skipped"):
            try:
                values.append(float(text))
            except ValueError:
                continue
    return statistics.median(values) if values else float("nan")


def fmt(value: float, digits: int = 1) -> str:
    return "-" if value != value else f"{value:.{digits}f}"  # NaN -> "-"


def verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("PASS" if ok else "FAIL")


def nan_free(*values: float) -> bool:
    return all(v == v for v in values)


Figures = dict[str, float]  # the ratios by name, for the summary


def throughput(
    runs: dict[tuple[str, str, str], list[dict[str, str]]], figures: Figures
) -> list[Table]:
    table = Table(
        "Throughput (CONNS=32 closed loop; medians of the rounds)",
        (
            "path",
            "target",
            "req/s",
            "p50 ms",
            "p99 ms",
            "errors",
            "target CPU %",
            "load CPU %",
            "RSS MB",
            "runs",
        ),
    )
    rps: dict[tuple[str, str], float] = {}
    for req_path in PATHS:
        for target in TARGETS:
            got = runs.get(("throughput", target, req_path))
            if not got:
                continue
            rps[(target, req_path)] = median(got, "rps")
            errors = sum(int(r["errors"]) for r in got if r.get("errors", "NA").isdigit())
            bad = [r for r in got if r.get("check") != "ok"]
            dirty = sum(1 for r in got if r.get("contaminated") == "yes")
            rss = (
                median(got, "rss_kb") / 1024 if target in ("gateway", *REFERENCES) else float("nan")
            )
            runs_text = str(len(got))
            if dirty:
                runs_text += f" ({dirty} contaminated)"
            if bad:
                runs_text += f" CHECK FAILED: {bad[0].get('reason', bad[0].get('check', '?'))}"
            table.rows.append(
                (
                    req_path,
                    target,
                    fmt(rps[(target, req_path)]),
                    fmt(median(got, "p50_ms"), 2),
                    fmt(median(got, "p99_ms"), 2),
                    str(errors),
                    fmt(median(got, "sut_cpu"), 0),
                    fmt(median(got, "load_cpu"), 0),
                    fmt(rss),
                    runs_text,
                )
            )
    if not table.rows:
        return []
    ratios = Table("Throughput ratios", ("path", "ratio", "value", "target", "verdict"))
    for req_path, other, minimum in (
        ("list", "yardstick", MIN_VS_YARDSTICK["list"]),
        ("single", "yardstick", MIN_VS_YARDSTICK["single"]),
        ("list", "raw-pool", None),
        ("single", "raw-pool", None),
        ("list", "nginx-1w", None),
        ("single", "nginx-1w", None),
    ):
        gw, ref = rps.get(("gateway", req_path)), rps.get((other, req_path))
        if gw is None or ref is None:
            continue
        value = gw / ref if ref else float("nan")
        figures[f"{req_path} gateway/{other} req/s"] = value
        ok = None if minimum is None or not nan_free(value) else value >= minimum
        ratios.rows.append(
            (
                req_path,
                f"gateway/{other} req/s",
                fmt(value, 3),
                "-" if minimum is None else f">= {minimum}",
                verdict(ok),
            )
        )
    if ("nginx-1w", "single") in rps:
        ratios.notes.append(
            "nginx-1w on single tends to be load-bound (see its load CPU %), so that ratio "
            "flatters the gateway; it has no target."
        )
    return [table, ratios]


def latency(
    runs: dict[tuple[str, str, str], list[dict[str, str]]], figures: Figures
) -> list[Table]:
    table = Table(
        "Added latency at one connection (CONNS=1; minus the direct upstream's p50, medians)",
        (
            "path",
            "direct p50",
            "yardstick p50",
            "raw-pool p50",
            "gateway p50",
            "gateway p99",
            "added p50 yardstick",
            "added p50 raw-pool",
            "added p50 gateway",
            "gateway/yardstick",
            "gateway/raw-pool",
            f"verdict (<= {MAX_ADDED_P50_VS_YARDSTICK})",
        ),
    )
    for req_path in PATHS:
        direct = runs.get(("latency", "direct", req_path))
        gateway = runs.get(("latency", "gateway", req_path))
        if not direct or not gateway:
            continue
        yardstick = runs.get(("latency", "yardstick", req_path)) or []
        raw_pool = runs.get(("latency", "raw-pool", req_path)) or []
        d50 = median(direct, "p50_ms")
        y50, r50 = median(yardstick, "p50_ms"), median(raw_pool, "p50_ms")
        g50, g99 = median(gateway, "p50_ms"), median(gateway, "p99_ms")
        added_y, added_r, added_g = y50 - d50, r50 - d50, g50 - d50
        ratio = _ratio(added_g, added_y)
        ratio_raw = _ratio(added_g, added_r)
        figures[f"{req_path} added p50 gateway/yardstick"] = ratio
        figures[f"{req_path} added p50 gateway/raw-pool"] = ratio_raw
        ok = ratio <= MAX_ADDED_P50_VS_YARDSTICK if nan_free(ratio) else None
        table.rows.append(
            (
                req_path,
                fmt(d50, 3),
                fmt(y50, 3),
                fmt(r50, 3),
                fmt(g50, 3),
                fmt(g99, 3),
                fmt(added_y, 3),
                fmt(added_r, 3),
                fmt(added_g, 3),
                fmt(ratio, 2),
                fmt(ratio_raw, 2),
                verdict(ok),
            )
        )
    if table.rows:
        table.notes.append(
            "added p50 = target p50 - direct p50; the ratio compares the gateway's own service "
            "time with the yardstick's (the issue's third ratio)"
        )
    return [table] if table.rows else []


def _ratio(part: float, whole: float) -> float:
    return part / whole if nan_free(part, whole) and whole > 0 else float("nan")


def summary(figures: Figures) -> list[Table]:
    """The issue's three ratios, each with its target and verdict, in one place, and the
    gateway against the raw pool (the ceiling; no target)."""
    table = Table("Issue 20 targets", ("path", "ratio", "value", "target", "verdict"))
    for req_path in PATHS:
        for name, target, at_least in (
            (f"{req_path} gateway/yardstick req/s", MIN_VS_YARDSTICK[req_path], True),
            (f"{req_path} added p50 gateway/yardstick", MAX_ADDED_P50_VS_YARDSTICK, False),
        ):
            value = figures.get(name)
            if value is None:
                continue
            ok = (value >= target if at_least else value <= target) if nan_free(value) else None
            sign = ">=" if at_least else "<="
            label = name.split(" ", 1)[1]
            table.rows.append((req_path, label, fmt(value, 3), f"{sign} {target}", verdict(ok)))
        for name in (
            "gateway/raw-pool req/s",
            "added p50 gateway/raw-pool",
            "gateway/nginx-1w req/s",
        ):
            value = figures.get(f"{req_path} {name}")
            if value is not None:
                table.rows.append((req_path, name, fmt(value, 3), "-", "-"))
    return [table] if table.rows else []


def memory(runs: dict[tuple[str, str, str], list[dict[str, str]]]) -> list[Table]:
    table = Table(
        "Memory (fresh gateway, CONNS=32; RSS = VmRSS of the largest gateway process)",
        (
            "path",
            "requests",
            "RSS start MB",
            "RSS @mark MB",
            "RSS end MB",
            "growth MB",
            f"verdict (end <= {MAX_RSS_MB:g}, growth <= {MAX_GROWTH_MB:g})",
        ),
    )
    for (section, _target, req_path), got in runs.items():
        if section != "memory":
            continue
        run = got[-1]
        start, mark, end = (
            int(run.get(k, "0")) / 1024 for k in ("rss_start_kb", "rss_mark_kb", "rss_end_kb")
        )
        requests, goal = int(run.get("requests", "0")), int(run.get("goal", "0"))
        growth = end - mark
        ok = end <= MAX_RSS_MB and growth <= MAX_GROWTH_MB and requests >= goal
        table.rows.append(
            (
                req_path,
                f"{run.get('mark_requests')} / {requests}",
                fmt(start),
                fmt(mark),
                fmt(end),
                fmt(growth),
                verdict(ok),
            )
        )
        if requests < goal:
            table.notes.append(f"only {requests} of {goal} requests were sent (MEM_MAX_TIME)")
        if goal != 100_000:
            table.notes.append(
                f"scaled down: {goal} requests (mark {run.get('mark_requests')}), not the "
                "target's 100,000 / 20,000"
            )
        table.notes.append(
            f"processes: {run.get('procs')}, summed RSS at the end "
            f"{int(run.get('rss_end_total_kb', '0')) / 1024:.1f} MB, {run.get('errors')} errors, "
            f"{run.get('rps')} req/s in the second phase"
        )
    return [table] if table.rows else []


def render_text(tables: list[Table]) -> str:
    out: list[str] = []
    for table in tables:
        widths = [
            max(len(row[i]) for row in [table.header, *table.rows])
            for i in range(len(table.header))
        ]
        out.append(table.title)
        for row in [table.header, *table.rows]:
            out.append(
                "  ".join(
                    cell.rjust(w) if i > 1 else cell.ljust(w)
                    for i, (cell, w) in enumerate(zip(row, widths, strict=True))
                )
            )
        out.extend(f"  note: {note}" for note in table.notes)
        out.append("")
    return "\n".join(out)


def render_markdown(tables: list[Table], meta: str) -> str:
    out = [f"```\n{meta.strip()}\n```", ""] if meta.strip() else []
    for table in tables:
        out.append(f"**{table.title}**")
        out.append("")
        out.append("| " + " | ".join(table.header) + " |")
        out.append(
            "|" + "|".join("---" if i < 2 else "---:" for i in range(len(table.header))) + "|"
        )
        out.extend("| " + " | ".join(row) + " |" for row in table.rows)
        out.append("")
        out.extend(f"- {note}" for note in table.notes)
        if table.notes:
            out.append("")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("tsv", type=Path)
    parser.add_argument("--meta", type=Path)
    parser.add_argument("--markdown", type=Path, help="also write the tables as Markdown here")
    args = parser.parse_args()
    runs = parse(args.tsv)
    figures: Figures = {}
    tables = throughput(runs, figures) + latency(runs, figures) + memory(runs)
    tables = summary(figures) + tables
    meta = args.meta.read_text() if args.meta and args.meta.exists() else ""
    codes = {line.split("code ", 1)[1] for line in meta.splitlines() if "gateway start" in line}
    if len(codes) > 1:
        meta += (
            "# WARNING: the gateway sources changed during this run (see the 'gateway start' "
            "lines); its figures mix code versions\n"
        )
    print(meta.strip())
    print()
    print(render_text(tables))
    if args.markdown:
        args.markdown.write_text(render_markdown(tables, meta))


if __name__ == "__main__":
    main()
