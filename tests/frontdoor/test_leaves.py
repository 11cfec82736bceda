"""The leaf cache: one mint per host, again when the leaf ages, bounded in size."""

from __future__ import annotations

import datetime

from gateway.frontdoor.leaves import LeafContexts

from .conftest import new_ca


class Clock:
    def __init__(self) -> None:
        self.now = datetime.datetime.now(datetime.UTC)

    def __call__(self) -> datetime.datetime:
        return self.now


def test_minted_once_then_reused_then_renewed_before_expiry() -> None:
    clock = Clock()
    ca = new_ca(("preview.twilio.com",))
    leaves = LeafContexts(ca, lifetime=datetime.timedelta(hours=24), clock=clock)
    first = leaves.context_for("preview.twilio.com")
    assert leaves.context_for("preview.twilio.com") is first
    clock.now += datetime.timedelta(hours=17)
    assert leaves.context_for("preview.twilio.com") is first
    clock.now += datetime.timedelta(hours=2)  # under a quarter of the lifetime left
    renewed = leaves.context_for("preview.twilio.com")
    assert renewed is not first
    assert leaves.minted == 2


def test_bounded() -> None:
    ca = new_ca(("a.example", "b.example", "c.example"))
    leaves = LeafContexts(ca, capacity=2)
    for host in ("a.example", "b.example", "c.example", "a.example"):
        leaves.context_for(host)
    assert len(leaves) == 2
    assert leaves.minted == 4  # a.example fell out and was minted again
