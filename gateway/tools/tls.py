"""``gateway tls init DIR`` and ``gateway tls issue DIR``: certificates for the front doors.

``init`` writes a private, name-constrained CA, ``DIR/ca.pem`` and ``DIR/ca-key.pem`` (mode
0600), never over existing files unless ``--force``, and prints how each ecosystem is told to
trust it. ``issue`` signs a server certificate with that CA for the TLS listener (the DNS
deployment, where ``preview.twilio.com`` resolves to the gateway).
"""

from __future__ import annotations

import argparse
import datetime
import os
from pathlib import Path

from gateway.frontdoor.names import CA_DAYS, DEFAULT_HOSTS, check_host_name

CA_FILE = "ca.pem"
KEY_FILE = "ca-key.pem"


ISSUE_DAYS = 90


class InitError(Exception):
    """A usage error of ``tls init`` or ``tls issue`` (printed on one line, exit 2)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``tls init`` and ``tls issue`` below ``parser``."""
    verbs = parser.add_subparsers(dest="tls_verb", metavar="ACTION", required=True)
    add_init_arguments(
        verbs.add_parser(
            "init",
            help="create a private, name-constrained CA for the proxy front door",
            description="Create DIR/ca.pem and DIR/ca-key.pem (mode 0600): an EC P-256 CA "
            "whose X.509 Name Constraints permit only the intercepted hosts, and print how "
            "to make each ecosystem trust it. Refuses to overwrite without --force.",
        )
    )
    issue = verbs.add_parser(
        "issue",
        help="sign a server certificate for the TLS listener with the CA in DIR",
        description="Write DIR/HOST.pem and DIR/HOST-key.pem (mode 0600): a certificate for "
        "--tls-cert/--tls-key, signed by DIR/ca.pem and DIR/ca-key.pem, for a deployment "
        "where DNS sends HOST to the gateway. HOST must be one the CA permits.",
    )
    issue.add_argument("directory", metavar="DIR", help="folder holding ca.pem and ca-key.pem")
    issue.add_argument(
        "--host", default=DEFAULT_HOSTS[0], help=f"the server name (default {DEFAULT_HOSTS[0]})"
    )
    issue.add_argument(
        "--days",
        type=int,
        default=ISSUE_DAYS,
        metavar="N",
        help=f"validity in days (default {ISSUE_DAYS}; never past the CA's own)",
    )
    issue.add_argument("--force", action="store_true", help="replace existing files")


def add_init_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("directory", metavar="DIR", help="folder for ca.pem and ca-key.pem")
    parser.add_argument(
        "--hosts",
        default=",".join(DEFAULT_HOSTS),
        metavar="HOST[,HOST]",
        help="host names the CA may vouch for, and so the hosts the proxy front door "
        f"intercepts (default: {','.join(DEFAULT_HOSTS)})",
    )
    parser.add_argument(
        "--days",
        type=int,
        default=CA_DAYS,
        metavar="N",
        help=f"validity of the CA in days (default {CA_DAYS})",
    )
    parser.add_argument(
        "--force", action="store_true", help="replace an existing ca.pem / ca-key.pem"
    )


def write_ca(directory: Path, hosts: list[str], days: int, force: bool) -> tuple[Path, Path]:
    """Make the CA and write both files; the key is created with mode 0600 from the start."""
    from gateway.frontdoor.certificates import create_ca  # loads cryptography: only here

    try:
        cert_pem, key_pem = create_ca(hosts, days=days)
    except ValueError as exc:
        raise InitError(str(exc)) from exc
    cert_path, key_path = directory / CA_FILE, directory / KEY_FILE
    if not force:
        for path in (cert_path, key_path):
            if path.exists():
                raise InitError(f"{path} exists; pass --force to replace it")
    _write_pair(directory, cert_path, cert_pem, key_path, key_pem)
    return cert_path, key_path


def _write_pair(
    directory: Path, cert_path: Path, cert_pem: bytes, key_path: Path, key_pem: bytes
) -> None:
    """The key with mode 0600 from its creation on, then the certificate."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
        descriptor = os.open(key_path, flags, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)  # an existing file (--force) keeps no wider mode
            handle.write(key_pem)
        cert_path.write_bytes(cert_pem)
    except OSError as exc:
        raise InitError(f"{exc.filename or directory}: {exc.strerror or exc}") from exc


def issue_certificate(directory: Path, host: str, days: int, force: bool) -> tuple[Path, Path]:
    """Sign a server certificate for ``host`` with the CA in ``directory``."""
    from gateway.frontdoor.certificates import CertificateError, load_ca, mint_leaf

    try:
        ca = load_ca((directory / CA_FILE).read_bytes(), (directory / KEY_FILE).read_bytes())
    except OSError as exc:
        raise InitError(f"{exc.filename}: {exc.strerror}; run `gateway tls init` first") from exc
    except CertificateError as exc:
        raise InitError(f"{directory}: {exc}") from exc
    try:
        name = check_host_name(host)
    except ValueError as exc:
        raise InitError(str(exc)) from exc
    if name not in ca.hosts:
        raise InitError(f"the CA in {directory} may only vouch for {', '.join(ca.hosts)}")
    if not 1 <= days <= 825:
        raise InitError(f"days must be 1 to 825, got {days}")
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}-key.pem"
    if not force:
        for path in (cert_path, key_path):
            if path.exists():
                raise InitError(f"{path} exists; pass --force to replace it")
    leaf = mint_leaf(ca, name, lifetime=datetime.timedelta(days=days))
    _write_pair(directory, cert_path, leaf.cert_pem, key_path, leaf.key_pem)
    return cert_path, key_path


def trust_instructions(cert_path: Path, hosts: list[str]) -> str:
    """What to run so that each ecosystem trusts the CA (printed by ``tls init``)."""
    ca, key = cert_path, cert_path.with_name(KEY_FILE)
    store = "/usr/local/share/ca-certificates/marketplace-gateway.crt"
    return f"""\
Interception CA for {", ".join(hosts)} (Name Constraints: no other name, no IP address).

Run the gateway with it:
  gateway serve --proxy-listen 127.0.0.1:8443 --proxy-ca-cert {ca} --proxy-ca-key {key}

Point the app at the proxy, HTTPS_PROXY=http://127.0.0.1:8443 and HTTP_PROXY=http://127.0.0.1:8443
(twilio-cli and twilio-node read HTTP_PROXY), then make it trust the CA:
  Python requests, twilio-python:
    cat "$(python3 -m certifi)" {ca} > bundle.pem    # public CAs + this one
    export REQUESTS_CA_BUNDLE=$PWD/bundle.pem
  Node, twilio-node, twilio-cli (added to the built-in CAs):
    export NODE_EXTRA_CA_CERTS={ca}
  Java, twilio-java (and -Dhttps.proxyHost=127.0.0.1 -Dhttps.proxyPort=8443):
    keytool -importcert -noprompt -alias marketplace-gateway -file {ca} \\
      -cacerts -storepass changeit
  curl, Go, OpenSSL: curl --cacert {ca}, or SSL_CERT_FILE=bundle.pem, or the system store:
    cp {ca} {store} && update-ca-certificates
  .NET, twilio-csharp: the system store (update-ca-certificates as above on Linux;
    certutil -addstore Root {ca} on Windows)

Keep {key} secret (mode 0600): the gateway needs it, the apps never do.
"""


def run(args: argparse.Namespace) -> int:
    if args.tls_verb == "issue":
        cert_path, key_path = issue_certificate(
            Path(args.directory), args.host, args.days, args.force
        )
        print(f"wrote {cert_path} and {key_path} (mode 0600)")
        print(f"  gateway serve --tls-cert {cert_path} --tls-key {key_path}")
        print("Clients trust it through the CA, as printed by `gateway tls init`.")
        return 0
    hosts = [h.strip() for h in args.hosts.split(",") if h.strip()]
    cert_path, _ = write_ca(Path(args.directory), hosts, args.days, args.force)
    print(f"wrote {cert_path} and {cert_path.with_name(KEY_FILE)} (mode 0600)\n")
    print(trust_instructions(cert_path, [h.lower() for h in hosts]), end="")
    return 0
