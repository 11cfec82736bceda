"""Summarise a py-spy speedscope profile: top functions by self and by inclusive time.

    python benchmarks/profile_summary.py /tmp/profile.json [--top 25] [--filter gateway/]

py-spy writes one "sampled" profile per thread; all threads are pooled. Without ``--lines``
the lines of one function are added up. Idle time is not sampled unless py-spy ran with --idle.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any


def _label(frame: dict[str, Any], lines: bool) -> str:
    """``function (dir/file.py)``, plus ``:line`` when ``lines``; gateway frames keep their
    package directory so they stand out."""
    file = Path(frame.get("file") or "?")
    where = f"{file.parent.name}/{file.name}"
    if lines and frame.get("line") is not None:
        where += f":{frame['line']}"
    return f"{frame['name']} ({where})"


def summarise(path: Path, lines: bool = False) -> tuple[float, Counter[str], Counter[str]]:
    """Total weight and per-frame self / inclusive weights (py-spy weights are seconds)."""
    doc = json.loads(path.read_text())
    frames = doc["shared"]["frames"]
    names = [_label(f, lines) for f in frames]
    total = 0.0
    self_counts: Counter[str] = Counter()
    incl_counts: Counter[str] = Counter()
    for profile in doc["profiles"]:
        for stack, weight in zip(profile["samples"], profile["weights"], strict=True):
            if not stack:
                continue
            total += weight
            self_counts[names[stack[-1]]] += weight
            for key in {names[i] for i in stack}:
                incl_counts[key] += weight
    return total, self_counts, incl_counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--filter", default="", help="only list frames whose text contains this")
    parser.add_argument("--lines", action="store_true", help="one entry per source line")
    args = parser.parse_args()
    total, self_counts, incl_counts = summarise(args.profile, args.lines)
    if not total:
        raise SystemExit("no samples")

    def show(title: str, counts: Counter[str]) -> None:
        print(f"\n{title} (% of {total:.1f} s of sampled CPU time)")
        shown = 0
        for name, count in counts.most_common():
            if args.filter not in name:
                continue
            print(f"{100 * count / total:6.1f}%  {name}")
            shown += 1
            if shown >= args.top:
                break

    show("self", self_counts)
    show("inclusive", incl_counts)


if __name__ == "__main__":
    main()
