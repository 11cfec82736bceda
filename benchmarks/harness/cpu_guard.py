#!/usr/bin/env python3
"""Who used the CPU during a measurement: the target, the load side, or someone else?

The box may be shared, and a run that competed for its cores is not comparable with one that
did not. measure.sh takes a snapshot of every process's CPU time before and after the wrk run
and asks for the difference per group:

  cpu_guard.py snap FILE
      write a snapshot: pid -> (parent pid, command name, user + system ticks)
  cpu_guard.py report BEFORE AFTER SECONDS GROUP=PID[,PID...] [GROUP=PID,...]...
      print "sut_cpu=98.7 load_cpu=99.1 foreign_cpu=3.1 foreign_top=python:2.0,tar:1.1"

Percentages are of one core. A group is its PIDs and all their descendants (the first group
a process belongs to counts it); "foreign" is every other process, kernel threads left out.
A process that started and ended between the two snapshots is not seen.
"""

from __future__ import annotations

import json
import os
import sys

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")
Snapshot = dict[str, tuple[int, str, int]]


def snapshot() -> Snapshot:
    found: Snapshot = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as handle:
                stat = handle.read()
        except OSError:
            continue  # gone meanwhile
        # the command name may hold spaces and parentheses: it ends at the last ")"
        command = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        parent, user, system = int(fields[1]), int(fields[11]), int(fields[12])
        found[name] = (parent, command, user + system)
    return found


def with_descendants(tree: Snapshot, roots: set[str]) -> set[str]:
    members = set(roots)
    grew = True
    while grew:
        grew = False
        for pid, (parent, _, _) in tree.items():
            if pid not in members and str(parent) in members:
                members.add(pid)
                grew = True
    return members


def report(before: Snapshot, after: Snapshot, seconds: float, specs: list[str]) -> str:
    groups: list[tuple[str, set[str]]] = []
    for spec in specs:
        name, _, pids = spec.partition("=")
        groups.append((name, with_descendants(after, {p for p in pids.split(",") if p})))
    used = {name: 0 for name, _ in groups}
    foreign: dict[str, int] = {}
    for pid, (parent, command, ticks) in after.items():
        if parent == 2 or pid in ("2", str(os.getpid())):
            continue  # kernel threads, and this process
        earlier = before.get(pid)
        start = earlier[2] if earlier is not None and earlier[1] == command else 0  # pid reused
        spent = ticks - start
        if spent <= 0:
            continue
        group = next((name for name, members in groups if pid in members), None)
        if group is None:
            foreign[command] = foreign.get(command, 0) + spent
        else:
            used[group] += spent

    def percent(ticks: int) -> float:
        return 100.0 * ticks / TICKS_PER_SECOND / seconds

    parts = [f"{name}_cpu={percent(ticks):.1f}" for name, ticks in used.items()]
    parts.append(f"foreign_cpu={percent(sum(foreign.values())):.1f}")
    top = sorted(foreign.items(), key=lambda item: -item[1])[:3]
    named = ",".join(f"{command.replace(' ', '_')}:{percent(t):.1f}" for command, t in top)
    parts.append(f"foreign_top={named or '-'}")
    return " ".join(parts)


def _load(path: str) -> Snapshot:
    with open(path) as handle:
        return {pid: (row[0], row[1], row[2]) for pid, row in json.load(handle).items()}


def main(argv: list[str]) -> None:
    if argv[0] == "snap":
        with open(argv[1], "w") as handle:
            json.dump(snapshot(), handle)
        return
    print(report(_load(argv[1]), _load(argv[2]), float(argv[3]), argv[4:]))


if __name__ == "__main__":
    main(sys.argv[1:])
