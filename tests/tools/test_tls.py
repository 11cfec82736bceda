"""``gateway tls init`` (the CA files, their modes, no silent overwrite, the trust lines) and
``gateway tls issue`` (a listener certificate the CA may sign)."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography import x509

from gateway.cli import main
from gateway.frontdoor.certificates import load_ca


def test_writes_a_constrained_ca_with_a_private_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "ca"
    assert main(["tls", "init", str(folder)]) == 0
    cert, key = folder / "ca.pem", folder / "ca-key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    ca = load_ca(cert.read_bytes(), key.read_bytes())
    assert ca.hosts == ("preview.twilio.com",)
    out = capsys.readouterr().out
    for needle in (
        "REQUESTS_CA_BUNDLE",
        f"NODE_EXTRA_CA_CERTS={cert}",
        "keytool -importcert",
        "SSL_CERT_FILE",
        f"--cacert {cert}",
        "update-ca-certificates",
        ".NET",
        "HTTPS_PROXY=",
        "HTTP_PROXY=",
        f"--proxy-ca-key {key}",
    ):
        assert needle in out, needle
    assert "PRIVATE KEY" not in out and key.read_text().splitlines()[1] not in out


def test_refuses_to_overwrite_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tls", "init", str(tmp_path)]) == 0
    before = (tmp_path / "ca.pem").read_bytes(), (tmp_path / "ca-key.pem").read_bytes()
    capsys.readouterr()
    assert main(["tls", "init", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--force" in err and "exists" in err
    assert ((tmp_path / "ca.pem").read_bytes(), (tmp_path / "ca-key.pem").read_bytes()) == before
    (tmp_path / "ca-key.pem").chmod(0o644)
    assert main(["tls", "init", str(tmp_path), "--force"]) == 0
    assert (tmp_path / "ca.pem").read_bytes() != before[0]
    assert stat.S_IMODE((tmp_path / "ca-key.pem").stat().st_mode) == 0o600


def test_hosts_and_days(tmp_path: Path) -> None:
    assert main(["tls", "init", str(tmp_path), "--hosts", "preview.twilio.com,Legacy.Example.com",
                 "--days", "30"]) == 0  # fmt: skip
    certificate = x509.load_pem_x509_certificate((tmp_path / "ca.pem").read_bytes())
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert 29 < lifetime.days <= 30
    ca = load_ca((tmp_path / "ca.pem").read_bytes(), (tmp_path / "ca-key.pem").read_bytes())
    assert ca.hosts == ("preview.twilio.com", "legacy.example.com")


@pytest.mark.parametrize(
    "args", [["--hosts", "*.twilio.com"], ["--hosts", "10.0.0.1"], ["--hosts", ""], ["--days", "0"]]
)
def test_bad_input_is_a_one_line_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str]
) -> None:
    assert main(["tls", "init", str(tmp_path / "x"), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gateway: ") and err.count("\n") == 1
    assert not (tmp_path / "x").exists()


def test_an_unwritable_folder_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "file").write_text("not a folder")
    assert main(["tls", "init", str(tmp_path / "file")]) == 2
    assert capsys.readouterr().err.startswith("gateway: ")


def test_issue_signs_a_listener_certificate_for_a_permitted_host(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tls", "init", str(tmp_path)]) == 0
    assert main(["tls", "issue", str(tmp_path)]) == 0
    cert, key = tmp_path / "preview.twilio.com.pem", tmp_path / "preview.twilio.com-key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    certificate = x509.load_pem_x509_certificate(cert.read_bytes())
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["preview.twilio.com"]
    lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
    assert 89 <= lifetime.days <= 90
    assert f"--tls-cert {cert} --tls-key {key}" in capsys.readouterr().out
    assert main(["tls", "issue", str(tmp_path)]) == 2  # exists
    assert main(["tls", "issue", str(tmp_path), "--host", "example.com"]) == 2
    assert "may only vouch for preview.twilio.com" in capsys.readouterr().err
    assert main(["tls", "issue", str(tmp_path / "empty")]) == 2
    assert "tls init" in capsys.readouterr().err
