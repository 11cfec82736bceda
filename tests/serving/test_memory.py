"""gateway.serving.memory: freed large-body memory goes back to the OS (glibc), harmlessly
elsewhere."""

from __future__ import annotations

import pytest

from gateway.serving import memory
from tests.processes import python_output


def test_trim_gives_a_fragmented_heap_back() -> None:
    """Interleaved small and large-ish pieces, the large ones freed: trim returns their pages."""
    code = (
        "import gateway.serving.memory as m\n"
        "def rss():\n"
        "    lines = open('/proc/self/status').read().splitlines()\n"
        "    return int([x for x in lines if x.startswith('VmRSS')][0].split()[1])\n"
        "keep, pieces = [], []\n"
        "for i in range(2000):\n"
        "    pieces.append(bytes(60_000)); keep.append(bytes(200))\n"
        "before = rss(); pieces.clear(); freed = rss(); m.trim(); after = rss()\n"
        "print(before - after > 60_000, after <= freed)\n"
    )
    assert python_output(code) == "True True\n"


def test_large_blocks_get_their_own_mapping_unless_the_environment_decides(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import ctypes

    calls: list[tuple[int, int]] = []

    class FakeLibc:
        def mallopt(self, option: int, value: int) -> int:
            calls.append((option, value))
            return 1

    monkeypatch.setattr(ctypes, "CDLL", lambda name: FakeLibc())
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    memory.return_large_blocks_to_the_os()
    assert calls == [(-3, 1024 * 1024)]  # M_MMAP_THRESHOLD, 1 MiB
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    memory.return_large_blocks_to_the_os()
    assert len(calls) == 1

    def no_libc(name: object) -> object:
        raise OSError("no libc here")

    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_")
    monkeypatch.setattr(ctypes, "CDLL", no_libc)
    memory.return_large_blocks_to_the_os()  # nothing to tune, nothing raised
