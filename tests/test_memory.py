"""gateway.memory: freed large-body memory goes back to the OS (glibc), harmlessly elsewhere."""

from __future__ import annotations

import os
import subprocess
import sys

from gateway import memory


def _rss_kib() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_trim_gives_a_fragmented_heap_back() -> None:
    """Interleaved small and large-ish pieces, the large ones freed: trim returns their pages."""
    code = (
        "import gateway.memory as m\n"
        "def rss():\n"
        "    lines = open('/proc/self/status').read().splitlines()\n"
        "    return int([x for x in lines if x.startswith('VmRSS')][0].split()[1])\n"
        "keep, pieces = [], []\n"
        "for i in range(2000):\n"
        "    pieces.append(bytes(60_000)); keep.append(bytes(200))\n"
        "before = rss(); pieces.clear(); freed = rss(); m.trim(); after = rss()\n"
        "print(before - after > 60_000, after <= freed)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout == "True True\n"


def test_large_blocks_get_mappings_of_their_own_unless_the_environment_says() -> None:
    code = "import gateway.memory as m; m.return_large_blocks_to_the_os(); print('ok')"
    for extra in ({}, {"MALLOC_MMAP_THRESHOLD_": "4096"}):
        env = {**os.environ, **extra}
        result = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
        )
        assert result.stdout == "ok\n"
    memory.trim()  # callable in this process too
    assert _rss_kib() > 0
