"""One policy, a fleet: 3 independent ``gateway serve`` replicas (separate processes and
registries, as pods) behind the test's own round robin, the simulator upstream, 1,000 calls from 10
consumers at different stages. Every replica gives each consumer the same answer (the decision
is a pure function of config, time and SID: nothing is shared), and the refusals the replicas
count add up to the 410s the clients saw."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from tests.fleet import deprecated_call, fleet_processes, iso, scrape, total, wait_fleet_ready

pytestmark = [pytest.mark.slow, pytest.mark.upstream]

REPLICAS = 3
CALLS_EACH = 100
CONCURRENCY = 16
LEGACY = "/marketplace/AvailableAddOns?PageSize=1"


@dataclass(frozen=True)
class Consumer:
    label: str
    sid: str | None
    expected: int  # the status every call of it gets
    rehearsal: str | None = None


def sid(number: int) -> str:
    return f"AC{number:032x}"


CONSUMERS = [
    Consumer("cut-a", sid(1), 410),  # cut off
    Consumer("cut-b", sid(2), 410),  # cut off
    Consumer("exempt", sid(3), 200),  # in the browned-out group, exempt
    Consumer("browned", sid(4), 410),  # in the browned-out group
    Consumer("excepted", sid(5), 200),  # in the group, but the window's `except`
    Consumer("later", sid(6), 200),  # cut-off still to come, not targeted
    Consumer("rehearsing", sid(7), 410, rehearsal="cutoff"),  # listed, rehearses its cut-off
    Consumer("stranger", sid(8), 410),  # not listed, past unknown_consumers_cutoff
    Consumer("anonymous", None, 410),  # no credentials, likewise
    Consumer("early", sid(10), 200),  # listed, nothing applies
]


def write_policy(directory: Path, now: float) -> Path:
    past, future = iso(now - 86400), iso(now + 30 * 86400)
    entries = {
        "cut-a": f"cutoff = {past}",
        "cut-b": f'group = "batch"\ncutoff = {past}',
        "exempt": f'group = "web"\nexempt_until = {future}',
        "browned": 'group = "web"',
        "excepted": 'group = "web"',
        "later": f"cutoff = {future}",
        "rehearsing": f"cutoff = {future}",
        "early": "",
    }
    text = f'unknown_consumers_cutoff = "{past}"\n'
    for consumer in CONSUMERS:
        if consumer.label in entries:
            text += (
                f'\n[[consumers]]\nsid = "{consumer.sid}"\nname = "{consumer.label}"\n'
                f"{entries[consumer.label]}\n"
            )
    text += (
        f"\n[[brownout]]\nstart = {iso(now - 3600)}\nend = {iso(now + 3600)}\n"
        'groups = ["web"]\nexcept = ["excepted"]\n'
    )
    path = directory / "policy.toml"
    path.write_text(text, "utf-8")
    return path


async def drive(urls: tuple[str, ...]) -> list[tuple[Consumer, int, int]]:
    """Call number k goes to replica k mod 3; consumer by consumer in turn, so each consumer's
    calls land on every replica. ``(consumer, replica, status)`` per call."""
    plan = [
        (index * len(CONSUMERS) + number, consumer)
        for index in range(CALLS_EACH)
        for number, consumer in enumerate(CONSUMERS)
    ]
    queue = iter(plan)
    seen: list[tuple[Consumer, int, int]] = []

    async def worker(session: aiohttp.ClientSession) -> None:
        for position, consumer in queue:
            replica = position % REPLICAS
            rehearsal = {"Gateway-Rehearsal": consumer.rehearsal} if consumer.rehearsal else {}
            status = await deprecated_call(session, urls[replica], consumer.sid, LEGACY, rehearsal)
            seen.append((consumer, replica, status))

    async with aiohttp.ClientSession() as session:
        await asyncio.gather(*(worker(session) for _ in range(CONCURRENCY)))
    return seen


async def test_every_replica_answers_each_consumer_alike_and_the_410s_add_up(
    tmp_path: Path,
) -> None:
    policy = write_policy(tmp_path, time.time())
    with fleet_processes(REPLICAS, ["--config", str(policy)], tmp_path) as (fleet, gateways):
        await wait_fleet_ready(fleet, gateways)
        started = time.monotonic()
        seen = await drive(fleet.urls)
        elapsed = time.monotonic() - started
        await asyncio.sleep(0.2)  # each replica records in its loop's next pass
        scrapes = [await asyncio.to_thread(scrape, url) for url in fleet.urls]
    assert len(seen) == len(CONSUMERS) * CALLS_EACH == 1000
    answers: dict[str, set[tuple[int, int]]] = defaultdict(set)
    for consumer, replica, status in seen:
        answers[consumer.label].add((replica, status))
    for consumer in CONSUMERS:
        replicas = {replica for replica, _ in answers[consumer.label]}
        statuses = {status for _, status in answers[consumer.label]}
        assert replicas == {0, 1, 2}, consumer.label  # it met every replica ...
        assert statuses == {consumer.expected}, (consumer.label, statuses)  # ... and one answer
    gone = sum(1 for _, _, status in seen if status == 410)
    refusals = sum(total(s, "gateway_policy_refusals_total") for s in scrapes)
    brownouts = sum(total(s, "gateway_brownout_rejections_total") for s in scrapes)
    assert refusals + brownouts == gone == 600
    by_reason: Counter[str] = Counter()
    for samples in scrapes:
        for (name, labels), value in samples.items():
            if name == "gateway_policy_refusals_total":
                by_reason[dict(labels)["reason"]] += int(value)
    assert by_reason == {"cutoff": 200, "unknown_consumer": 200, "rehearsal": 100}
    assert brownouts == 100
    print(f"1,000 calls over {REPLICAS} replicas in {elapsed:.2f} s")
