"""Per-host leaf certificates as ready ``ssl`` contexts (the leaf, then the intermediate that
signed it), minted on first use and kept in memory.

The cache is bounded (least recently used out) and an entry is minted again when less than a
quarter of its lifetime is left, so a long-running gateway never serves an expired leaf.
"""

from __future__ import annotations

import datetime
import ssl
from collections import OrderedDict
from collections.abc import Callable

from gateway.frontdoor.certificates import LEAF_LIFETIME, CertificateAuthority, mint_leaf
from gateway.frontdoor.tls_context import context_from_memory

Clock = Callable[[], datetime.datetime]


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class LeafContexts:
    """``ssl`` server contexts by host, each holding a leaf minted from ``ca``."""

    def __init__(
        self,
        ca: CertificateAuthority,
        *,
        lifetime: datetime.timedelta = LEAF_LIFETIME,
        capacity: int = 64,
        clock: Clock = _utc_now,
    ) -> None:
        self._ca = ca
        self._lifetime = lifetime
        self._capacity = capacity
        self._clock = clock
        self._entries: OrderedDict[str, tuple[ssl.SSLContext, datetime.datetime]] = OrderedDict()
        self.minted = 0  # how many leaves were made (for tests and curiosity)

    def __len__(self) -> int:
        return len(self._entries)

    def context_for(self, host: str) -> ssl.SSLContext:
        """The context whose certificate names ``host``; minted now if missing or stale."""
        now = self._clock()
        entry = self._entries.get(host)
        if entry is not None and entry[1] - now > self._lifetime / 4:
            self._entries.move_to_end(host)
            return entry[0]
        leaf = mint_leaf(self._ca, host, lifetime=self._lifetime, now=now)
        context = context_from_memory(leaf.full_chain_pem, leaf.key_pem)
        self.minted += 1
        self._entries[host] = (context, leaf.not_after)
        self._entries.move_to_end(host)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)
        return context
