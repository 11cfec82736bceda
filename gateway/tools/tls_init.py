"""``gateway tls init DIR``: a private, name-constrained CA for the proxy front door.

Writes ``DIR/ca.pem`` and ``DIR/ca-key.pem`` (mode 0600), never over existing files unless
``--force``, and prints how each ecosystem is told to trust the CA.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from gateway.frontdoor.certificates import CA_DAYS, DEFAULT_HOSTS, create_ca

CA_FILE = "ca.pem"
KEY_FILE = "ca-key.pem"


class InitError(Exception):
    """A usage error of ``tls init`` (printed on one line, exit 2)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
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
    try:
        cert_pem, key_pem = create_ca(hosts, days=days)
    except ValueError as exc:
        raise InitError(str(exc)) from exc
    cert_path, key_path = directory / CA_FILE, directory / KEY_FILE
    if not force:
        for path in (cert_path, key_path):
            if path.exists():
                raise InitError(f"{path} exists; pass --force to replace it")
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
    hosts = [h.strip() for h in args.hosts.split(",") if h.strip()]
    cert_path, _ = write_ca(Path(args.directory), hosts, args.days, args.force)
    print(f"wrote {cert_path} and {cert_path.with_name(KEY_FILE)} (mode 0600)\n")
    print(trust_instructions(cert_path, [h.lower() for h in hosts]), end="")
    return 0
