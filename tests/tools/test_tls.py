"""``gateway tls init`` (the two-level CA's three files, their modes, absolute paths, no silent
overwrite, never through a link) and ``gateway tls issue`` (a listener certificate followed by
the intermediate, signed with the only key on disk)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from gateway.cli import main
from gateway.frontdoor.certificates import CertificateAuthority, load_ca
from tests.frontdoor.conftest import write_one_level_ca

FILES = ("ca.pem", "intermediate.pem", "ca-key.pem")


def _load(folder: Path) -> CertificateAuthority:
    return load_ca(
        *((folder / n).read_bytes() for n in ("ca.pem", "ca-key.pem", "intermediate.pem"))
    )


def _certificates(path: Path) -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(path.read_bytes())


def test_writes_a_root_an_intermediate_and_only_the_intermediates_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["tls", "init", "ca"]) == 0  # a relative folder: absolute paths printed
    folder = tmp_path / "ca"
    cert, intermediate, key = (folder / name for name in FILES)
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILES)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    ca = load_ca(cert.read_bytes(), key.read_bytes(), intermediate.read_bytes())
    assert ca.hosts == ("preview.twilio.com",) and not ca.one_level
    [root] = _certificates(cert)
    [signer] = _certificates(intermediate)
    signer.verify_directly_issued_by(root)
    # the one private key on disk is the intermediate's; the root's was never written
    assert [p.name for p in folder.iterdir() if b"PRIVATE KEY" in p.read_bytes()] == [key.name]
    private = serialization.load_pem_private_key(key.read_bytes(), None)
    assert private.public_key() == signer.public_key() != root.public_key()
    out = capsys.readouterr().out
    for needle in (
        f"wrote {cert} ",
        f"{intermediate} ",
        f"{key} ",
        "REQUESTS_CA_BUNDLE",
        f"NODE_EXTRA_CA_CERTS={cert}\n",
        "keytool -importcert",
        "-Djavax.net.ssl.trustStorePassword=changeit",
        "-Djavax.net.ssl.trustStore=",
        "SSL_CERT_FILE",
        f"--cacert {cert}",
        "update-ca-certificates",
        ".NET",
        "certutil -addstore -f Root",
        "HTTPS_PROXY=",
        "HTTP_PROXY=",
        f"--proxy-ca-cert {cert} --proxy-ca-key {key}\n",
    ):
        assert needle in out, needle
    assert f"{os.sep}ca{os.sep}ca.pem" in out and " ca/ca.pem" not in out
    assert "PRIVATE KEY" not in out and key.read_text().splitlines()[1] not in out


def test_refuses_to_overwrite_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tls", "init", str(tmp_path)]) == 0
    before = {name: (tmp_path / name).read_bytes() for name in FILES}
    capsys.readouterr()
    for name in FILES:  # any one of the three already there is enough to refuse
        others = [n for n in FILES if n != name]
        for other in others:
            (tmp_path / other).rename(tmp_path / f"{other}.away")
        assert main(["tls", "init", str(tmp_path)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "--force" in err and f"{tmp_path / name} exists" in err
        for other in others:
            (tmp_path / f"{other}.away").rename(tmp_path / other)
    assert {name: (tmp_path / name).read_bytes() for name in FILES} == before
    (tmp_path / "ca-key.pem").chmod(0o644)
    assert main(["tls", "init", str(tmp_path), "--force"]) == 0
    for name in FILES:
        assert (tmp_path / name).read_bytes() != before[name]
    assert stat.S_IMODE((tmp_path / "ca-key.pem").stat().st_mode) == 0o600
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp file left


@pytest.mark.parametrize("name", FILES)
@pytest.mark.parametrize("force", [False, True])
def test_a_symlink_in_the_ca_folder_is_never_followed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, force: bool
) -> None:
    folder, elsewhere = tmp_path / "ca", tmp_path / "elsewhere"
    folder.mkdir()
    elsewhere.mkdir()
    dangling, existing = elsewhere / "planted.pem", elsewhere / "existing.pem"
    existing.write_bytes(b"someone else's file\n")
    (folder / name).symlink_to(dangling)
    (folder / "other-link.pem").symlink_to(existing)
    args = ["tls", "init", str(folder)] + (["--force"] if force else [])
    if not force:
        assert main(args) == 2
        assert f"{folder / name} exists; pass --force" in capsys.readouterr().err
        assert (folder / name).is_symlink()
    else:
        assert main(args) == 0
        assert not (folder / name).is_symlink() and (folder / name).is_file()
        _load(folder)
    assert not dangling.exists()  # nothing was written through the link
    assert existing.read_bytes() == b"someone else's file\n"
    if force:  # --force over a link to an existing file: the link is replaced, not its target
        os.unlink(folder / name)
        (folder / name).symlink_to(existing)
        assert main(args) == 0
        assert existing.read_bytes() == b"someone else's file\n"
        assert not (folder / name).is_symlink()


def test_hosts_and_days(tmp_path: Path) -> None:
    assert main(["tls", "init", str(tmp_path), "--hosts", "preview.twilio.com,Legacy.Example.com",
                 "--days", "30"]) == 0  # fmt: skip
    for name in ("ca.pem", "intermediate.pem"):
        [certificate] = _certificates(tmp_path / name)
        lifetime = certificate.not_valid_after_utc - certificate.not_valid_before_utc
        assert 29 < lifetime.days <= 30
    ca = _load(tmp_path)
    assert ca.hosts == ("preview.twilio.com", "legacy.example.com")


@pytest.mark.parametrize(
    "args",
    [
        ["--hosts", "*.twilio.com"],
        ["--hosts", "10.0.0.1"],
        ["--hosts", ""],
        ["--days", "0"],
        ["--hosts", "preview.twilio.com,edge.preview.twilio.com"],
    ],
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
    err = capsys.readouterr().err
    assert err.startswith("gateway: ") and err.count("\n") == 1


def test_issue_signs_with_the_intermediate_and_writes_it_after_the_leaf(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tls", "init", str(tmp_path)]) == 0
    capsys.readouterr()
    assert main(["tls", "issue", str(tmp_path)]) == 0
    cert, key = tmp_path / "preview.twilio.com.pem", tmp_path / "preview.twilio.com-key.pem"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    leaf, intermediate = _certificates(cert)
    assert intermediate == _certificates(tmp_path / "intermediate.pem")[0]
    leaf.verify_directly_issued_by(intermediate)
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["preview.twilio.com"]
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert 89 <= lifetime.days <= 90
    out = capsys.readouterr().out
    assert f"--tls-cert {cert} --tls-key {key}" in out
    assert main(["tls", "issue", str(tmp_path)]) == 2  # exists
    assert main(["tls", "issue", str(tmp_path), "--host", "example.com"]) == 2
    assert "may only vouch for preview.twilio.com" in capsys.readouterr().err
    assert main(["tls", "issue", str(tmp_path / "empty")]) == 2
    assert "tls init" in capsys.readouterr().err


def test_issue_writes_where_out_cert_and_out_key_say(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stable names for a Kubernetes Secret (tls.crt / tls.key), relative to the current
    folder as every path flag is."""
    assert main(["tls", "init", str(tmp_path / "ca")]) == 0
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secret").mkdir()
    args = ["tls", "issue", "ca", "--out-cert", "secret/tls.crt", "--out-key", "secret/tls.key"]
    capsys.readouterr()
    assert main(args) == 0
    cert, key = tmp_path / "secret" / "tls.crt", tmp_path / "secret" / "tls.key"
    assert len(_certificates(cert)) == 2 and stat.S_IMODE(key.stat().st_mode) == 0o600
    assert f"--tls-cert {cert} --tls-key {key}" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "ca").iterdir()) == sorted(FILES)
    assert main(args) == 2
    assert f"{cert} exists; pass --force" in capsys.readouterr().err
    assert main([*args, "--force"]) == 0
    assert main(["tls", "issue", "ca", "--out-cert", "same.pem", "--out-key", "same.pem"]) == 2


def test_issue_with_a_one_level_ca_warns_and_still_signs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = write_one_level_ca(tmp_path)
    assert main(["tls", "issue", str(tmp_path)]) == 0
    [leaf] = _certificates(tmp_path / "preview.twilio.com.pem")  # the root signed: no chain
    leaf.verify_directly_issued_by(_certificates(old.cert)[0])
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "one-level CA" in err and "tls init" in err


def test_issue_names_a_missing_intermediate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["tls", "init", str(tmp_path)]) == 0
    (tmp_path / "intermediate.pem").unlink()
    capsys.readouterr()
    assert main(["tls", "issue", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{tmp_path / 'intermediate.pem'}" in err
