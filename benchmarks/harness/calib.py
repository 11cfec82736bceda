#!/usr/bin/env python3
"""How fast is this CPU right now? Milliseconds for a fixed piece of work shaped like a proxy's
per-request work (serialise a 60 KB JSON document, replace bytes in it, hash it, parse it back),
20 times. measure.sh runs it pinned to the system-under-test CPU just before every measurement
and reports it as calib_ms=: lower is a faster host. A shared VM's speed drifts (up to 1.7x
within minutes has been seen), so compare targets within one run, never across runs."""

from __future__ import annotations

import hashlib
import json
import time

DOCUMENT = {f"k{i}": [i, "v" * 20, {"x": i}] for i in range(2000)}


def one_pass() -> None:
    encoded = json.dumps(DOCUMENT).encode()
    replaced = encoded
    for _ in range(5):
        replaced = encoded.replace(b"v" * 20, b"w" * 21)
        hashlib.sha1(replaced).digest()
    json.loads(replaced)


def main() -> None:
    one_pass()  # warm up: allocator, caches
    started = time.perf_counter()
    for _ in range(20):
        one_pass()
    print(f"{(time.perf_counter() - started) * 1000:.1f}")


if __name__ == "__main__":
    main()
