"""Server-side ``ssl`` contexts: TLS 1.2 or newer, HTTP/1.1 by ALPN.

Python's ``ssl`` module loads certificates from files only. A minted leaf is handed to it
through an anonymous in-memory file (Linux's ``memfd_create``), so neither the leaf nor its key
ever touches a disk.
"""

from __future__ import annotations

import contextlib
import os
import ssl
from collections.abc import Iterator
from pathlib import Path

from gateway.frontdoor.certificates import CertificateError


def _no_password() -> bytes:
    """An encrypted key fails to load instead of prompting on the terminal."""
    return b""


def server_context() -> ssl.SSLContext:
    """An empty server context with the gateway's protocol settings."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    return context


@contextlib.contextmanager
def _memory_file(data: bytes) -> Iterator[str]:
    """A path that reads back ``data`` from memory, valid inside the ``with`` block.

    OpenSSL seeks in the file it loads, so a pipe will not do; without ``memfd_create``
    (Linux) the leaf would have to touch a disk, which this module refuses to do.
    """
    memfd_create = getattr(os, "memfd_create", None)
    if memfd_create is None:
        raise CertificateError(
            "minting certificates in memory needs memfd_create (Linux); "
            "the proxy front door is not available on this platform"
        )
    fd = memfd_create("gateway-leaf", getattr(os, "MFD_CLOEXEC", 0))
    try:
        os.write(fd, data)
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)


def context_from_memory(cert_pem: bytes, key_pem: bytes) -> ssl.SSLContext:
    """A server context for a certificate and key held in memory."""
    context = server_context()
    with _memory_file(key_pem + b"\n" + cert_pem) as path:
        context.load_cert_chain(path, password=_no_password)
    return context


def listener_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """The main listener's context from PEM files (``--tls-cert``/``--tls-key``)."""
    context = server_context()
    try:
        context.load_cert_chain(cert_file, key_file, password=_no_password)
    except FileNotFoundError as exc:  # ssl names no file: find which one it was
        raise CertificateError(f"no such file: {_first_missing(exc, cert_file, key_file)}") from exc
    except PermissionError as exc:
        unreadable = next((f for f in (cert_file, key_file) if not os.access(f, os.R_OK)), None)
        raise CertificateError(
            f"cannot read {exc.filename or unreadable or cert_file}: permission denied"
        ) from exc
    except ssl.SSLError as exc:
        raise CertificateError(
            f"{cert_file} / {key_file}: not a PEM certificate chain and its unencrypted key "
            f"({exc.reason or 'ssl error'})"
        ) from exc
    return context


def _first_missing(exc: FileNotFoundError, *files: Path) -> str:
    """The file ``exc`` is about: its own name when it has one, else the first of ``files``
    that is not there (``SSLContext.load_cert_chain`` raises without a file name)."""
    if exc.filename is not None:
        return str(exc.filename)
    return str(next((f for f in files if not f.exists()), files[0]))
