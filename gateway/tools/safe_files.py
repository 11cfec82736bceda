"""Writing certificate and key files without following links (``gateway tls init``/``issue``).

A new file is created with ``O_CREAT | O_EXCL | O_NOFOLLOW``: it fails on anything already
there, a dangling symbolic link included, so nothing is ever written through a link. A file
replaced (``--force``) is written to a new temporary file beside it, created the same way, and
renamed over the old name: a link there is replaced itself, and its target is left alone. A key
has mode 0600 from its creation on.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def taken(paths: Sequence[Path]) -> list[Path]:
    """The names in ``paths`` that something already has (a dangling link counts)."""
    return [path for path in paths if os.path.lexists(path)]


def _write_new(path: Path, data: bytes, private: bool) -> None:
    descriptor = os.open(path, _CREATE, 0o600 if private else 0o644)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            if private:
                os.fchmod(handle.fileno(), 0o600)  # whatever the umask
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            path.unlink()
        raise


def write_file(path: Path, data: bytes, *, private: bool = False, replace: bool = False) -> None:
    """Write ``data`` to ``path`` as a new file; ``replace``: over whatever has that name
    (atomically, by a rename). ``private``: mode 0600. Raises ``OSError`` (``FileExistsError``
    when ``path`` is taken and not ``replace``)."""
    if not replace:
        _write_new(path, data, private)
        return
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    _write_new(temporary, data, private)
    try:
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise OSError(exc.errno, exc.strerror, str(path)) from exc  # name the file, not the temp
