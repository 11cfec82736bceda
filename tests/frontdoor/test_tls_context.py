"""Server contexts: TLS 1.2 minimum, HTTP/1.1 only, leaves loaded from memory, clean errors."""

from __future__ import annotations

import os
import ssl
from pathlib import Path

import pytest

from gateway.frontdoor import tls_context
from gateway.frontdoor.certificates import CertificateError, mint_leaf
from gateway.frontdoor.tls_context import context_from_memory, listener_context, server_context

from .conftest import new_ca


def test_protocol_settings() -> None:
    context = server_context()
    assert context.minimum_version is ssl.TLSVersion.TLSv1_2
    assert context.protocol is ssl.PROTOCOL_TLS_SERVER
    assert context.options & ssl.OP_NO_COMPRESSION


def _leaf() -> tuple[bytes, bytes]:
    leaf = mint_leaf(new_ca(), "preview.twilio.com")
    return leaf.full_chain_pem, leaf.key_pem


def test_a_leaf_is_loaded_without_a_file_on_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cert_pem, key_pem = _leaf()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    before = set(os.listdir("/proc/self/fd"))
    context = context_from_memory(cert_pem, key_pem)
    assert context.get_ca_certs() == []  # a server context holding our chain, nothing else
    assert list(tmp_path.iterdir()) == []
    assert set(os.listdir("/proc/self/fd")) <= before  # the memory file is closed again


def test_without_memfd_it_refuses_rather_than_write_a_file(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cert_pem, key_pem = _leaf()
    monkeypatch.delattr(os, "memfd_create", raising=False)
    with pytest.raises(CertificateError, match="memfd_create"):
        tls_context.context_from_memory(cert_pem, key_pem)


def test_listener_context_errors_name_the_files(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(CertificateError, match=f"^no such file: {missing}$"):
        listener_context(missing, tmp_path / "missing-key.pem")
    (tmp_path / "bad.pem").write_text("not a certificate")
    with pytest.raises(CertificateError, match="bad.pem"):
        listener_context(tmp_path / "bad.pem", tmp_path / "bad.pem")
    cert_pem, key_pem = _leaf()
    (tmp_path / "cert.pem").write_bytes(cert_pem)
    (tmp_path / "key.pem").write_bytes(key_pem)
    # ssl's own error names no file ("no such file: None" before): the key's absence is named
    with pytest.raises(CertificateError, match=f"^no such file: {tmp_path / 'gone-key.pem'}$"):
        listener_context(tmp_path / "cert.pem", tmp_path / "gone-key.pem")
    assert isinstance(listener_context(tmp_path / "cert.pem", tmp_path / "key.pem"), ssl.SSLContext)
