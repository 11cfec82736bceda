"""Giving freed memory back to the OS (glibc's allocator; nothing happens elsewhere).

Large bodies come and go in bursts (a flood of slow readers, several 15 MB pages at once).
Without help, glibc keeps what they used in the heap for the life of the process.
"""

from __future__ import annotations

import ctypes
import os
from typing import Any


def _libc() -> Any:
    try:
        return ctypes.CDLL(None)
    except OSError:
        return None


def return_large_blocks_to_the_os() -> None:
    """With glibc, give every allocation of 1 MiB or more (a large body) a mapping of its own,
    returned to the OS as soon as it is freed. By default glibc raises that threshold to the
    largest block freed so far (up to 32 MiB), after which a burst of large bodies keeps its
    memory in the heap. A ``MALLOC_MMAP_THRESHOLD_`` in the environment is left to decide."""
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is None:  # not glibc (or musl's stub): nothing to tune
        return
    m_mmap_threshold = -3  # from <malloc.h>
    mallopt(m_mmap_threshold, 1 << 20)


def trim() -> None:
    """Hand the heap's free pages back to the OS (``malloc_trim(0)``: the pieces of a large
    body, read or written a chunk at a time, leave holes that glibc otherwise keeps). Costs
    about 0.1 ms; ctypes releases the GIL while it runs, so call it from a worker thread."""
    malloc_trim = getattr(_libc(), "malloc_trim", None)
    if malloc_trim is not None:
        malloc_trim(0)
