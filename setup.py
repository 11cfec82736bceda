"""Build hook for the optional C accelerator, gateway/rewrite/_rewrite_accel.c (everything else
is in pyproject.toml).

As aiohttp, yarl and multidict do it: the extension is built when a C compiler is available
and skipped with a warning when it is not (the pure-Python path is then used, with the same
results); MARKETPLACE_GATEWAY_NO_EXTENSIONS=1 skips it on purpose.
"""

from __future__ import annotations

import os
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext


class OptionalBuildExt(build_ext):
    """``build_ext`` that turns a failed compile into a warning."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # no compiler at all, missing headers, ...
            _skipped(exc)

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            _skipped(exc)


def _skipped(exc: Exception) -> None:
    print(
        f"WARNING: the optional C accelerator was not built ({exc}); "
        "marketplace-gateway runs in pure Python",
        file=sys.stderr,
    )


EXTENSIONS = [
    Extension(
        "gateway.rewrite._rewrite_accel",
        ["gateway/rewrite/_rewrite_accel.c"],
        extra_compile_args=["-O2"] if os.name == "posix" else [],
    )
]

setup(
    ext_modules=[] if os.environ.get("MARKETPLACE_GATEWAY_NO_EXTENSIONS") else EXTENSIONS,
    cmdclass={"build_ext": OptionalBuildExt},
)
