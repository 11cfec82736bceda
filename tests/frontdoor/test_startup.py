"""Start-up: certificates are loaded once and every problem is a one-line config error."""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.config.settings import ConfigError, load_config
from gateway.frontdoor.certificates import mint_leaf
from gateway.frontdoor.startup import load_proxy_ca, main_base, prepare

from .conftest import CAFiles, new_ca, write_ca, write_one_level_ca


def test_nothing_to_prepare_by_default() -> None:
    doors = prepare(load_config({}, {}))
    assert (doors.tls, doors.proxy) == (None, None)


def test_the_proxy_intercepts_the_hosts_of_the_ca(tmp_path: Path) -> None:
    ca = write_ca(tmp_path, ("preview.twilio.com", "preview-edge.example.com"))
    config = load_config(
        {
            "proxy_listen": "127.0.0.1:0",
            "proxy_ca_cert": str(ca.cert),
            "proxy_ca_key": str(ca.key),
            "proxy_tunnel_hosts": "",
        },
        {},
    )
    doors = prepare(config)
    assert doors.proxy is not None
    assert doors.proxy.policy.intercepted == {"preview.twilio.com", "preview-edge.example.com"}
    assert doors.proxy.policy.tunnelled == ()
    assert doors.proxy.error_base == "http://127.0.0.1:8080"
    assert doors.proxy.leaves.minted == 2  # minted at start-up, not at the first CONNECT


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        ({"tls_cert": __file__}, "tls_cert and tls_key must be given together"),
        ({"tls_listen": "127.0.0.1:0"}, "tls_listen needs tls_cert and tls_key"),
        ({"proxy_listen": "127.0.0.1:0"}, "proxy_listen needs proxy_ca_cert and proxy_ca_key"),
        ({"proxy_tunnel_hosts": "*.twilio.com"}, "HOST:PORT"),
        ({"proxy_max_tunnels": "0"}, "count >= 1"),
    ],
)
def test_options_that_belong_together(flags: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(flags, {})


def _proxy_config(cert: Path, key: Path) -> object:
    return load_config(
        {"proxy_listen": "127.0.0.1:0", "proxy_ca_cert": str(cert), "proxy_ca_key": str(key)}, {}
    )


def test_unusable_ca_files_are_config_errors(tmp_path: Path, ca_files: CAFiles) -> None:
    # named as the config names it, before anything is loaded
    missing = tmp_path / "missing.pem"
    with pytest.raises(ConfigError, match=rf"^flag --proxy-ca-cert: {missing}: no such file"):
        _proxy_config(missing, ca_files.key)
    other = write_ca(tmp_path / "other")
    with pytest.raises(ConfigError, match="neither to the CA certificate nor to") as caught:
        prepare(_proxy_config(ca_files.cert, other.key))  # type: ignore[arg-type]
    assert "PRIVATE" not in str(caught.value)
    assert other.key.read_text().splitlines()[1] not in str(caught.value)
    with pytest.raises(ConfigError, match="does not belong to the CA certificate"):
        prepare(_proxy_config(ca_files.intermediate, other.key))  # type: ignore[arg-type]


def test_the_intermediate_is_read_beside_ca_pem_or_named_directly(ca_files: CAFiles) -> None:
    for cert in (ca_files.cert, ca_files.intermediate):
        doors = prepare(_proxy_config(cert, ca_files.key))  # type: ignore[arg-type]
        assert doors.proxy is not None
        assert doors.proxy.policy.intercepted == {"preview.twilio.com"}
    ca = load_proxy_ca(ca_files.cert, ca_files.key)
    assert ca.chain_pem == ca_files.intermediate.read_bytes()
    ca_files.intermediate.unlink()
    with pytest.raises(ConfigError) as caught:
        prepare(_proxy_config(ca_files.cert, ca_files.key))  # type: ignore[arg-type]
    message = str(caught.value)
    assert "\n" not in message
    assert f"{ca_files.intermediate}, the intermediate it would belong to, is missing" in message


def test_a_one_level_ca_is_served_with_one_warning_that_says_what_to_do(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old = write_one_level_ca(tmp_path / "old ca")
    config = _proxy_config(old.cert, old.key)
    with caplog.at_level(logging.WARNING, logger="gateway"):
        doors = prepare(config, warn=False)  # type: ignore[arg-type]
        assert caplog.records == []
        doors = prepare(config)  # type: ignore[arg-type]
    assert doors.proxy is not None and doors.proxy.leaves.minted == 1
    [record] = caplog.records
    message = record.getMessage()
    assert record.levelno == logging.WARNING and "\n" not in message
    assert f"{old.cert} is a one-level CA" in message
    assert "Java" in message and "impersonate any site" in message
    assert f"`gateway tls init '{tmp_path / 'old ca'}' --force`" in message


def test_a_readable_ca_key_is_warned_about(
    ca_files: CAFiles, caplog: pytest.LogCaptureFixture
) -> None:
    ca_files.key.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="gateway"):
        prepare(_proxy_config(ca_files.cert, ca_files.key), warn=False)  # type: ignore[arg-type]
        assert caplog.records == []
        prepare(_proxy_config(ca_files.cert, ca_files.key))  # type: ignore[arg-type]
    assert "chmod 600" in caplog.text
    assert "one-level" not in caplog.text  # a two-level CA: nothing else to say


def test_tls_listener_files(tmp_path: Path) -> None:
    leaf = mint_leaf(new_ca(("gateway.internal.example",)), "gateway.internal.example")
    (tmp_path / "cert.pem").write_bytes(leaf.full_chain_pem)
    (tmp_path / "key.pem").write_bytes(leaf.key_pem)
    config = load_config(
        {"tls_cert": str(tmp_path / "cert.pem"), "tls_key": str(tmp_path / "key.pem")}, {}
    )
    assert prepare(config).tls is not None
    assert main_base(config) == "https://127.0.0.1:8080"
    broken = replace(config, tls_key=tmp_path / "cert.pem")
    with pytest.raises(ConfigError, match="tls_cert/tls_key"):
        prepare(broken)


def test_a_platform_without_memfd_fails_at_start_up(
    ca_files: CAFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    monkeypatch.delattr(os, "memfd_create", raising=False)
    with pytest.raises(ConfigError, match="memfd_create"):
        prepare(_proxy_config(ca_files.cert, ca_files.key))  # type: ignore[arg-type]
