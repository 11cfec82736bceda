"""``gateway tls init DIR`` and ``gateway tls issue DIR``: certificates for the front doors.

``init`` writes a private, name-constrained CA in two levels: ``DIR/ca.pem``, the root users
trust, whose key is discarded once it has signed; ``DIR/intermediate.pem``, the CA that signs,
with the same Name Constraints (which Java applies only below the root); and its key,
``DIR/ca-key.pem`` (mode 0600). Nothing is written over an existing name unless ``--force``, and
never through a symbolic link (:mod:`gateway.tools.safe_files`). It prints, with absolute paths,
how each ecosystem is told to trust the root. ``issue`` signs a server certificate for the TLS
listener (the DNS deployment, where ``preview.twilio.com`` resolves to the gateway) and writes
it followed by the intermediate.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from gateway.frontdoor.names import (
    CA_DAYS,
    DEFAULT_HOSTS,
    INTERMEDIATE_FILE,
    KEY_FILE,
    ROOT_FILE,
    check_host_name,
)
from gateway.tools.safe_files import taken, write_file
from gateway.tools.trust import trust_instructions

ISSUE_DAYS = 90


class InitError(Exception):
    """A usage error of ``tls init`` or ``tls issue`` (printed on one line, exit 2)."""


@dataclass(frozen=True, slots=True)
class CAPaths:
    """The files of a CA folder, as absolute paths."""

    root: Path
    intermediate: Path
    key: Path

    @classmethod
    def of(cls, directory: Path) -> CAPaths:
        folder = Path(os.path.abspath(directory))
        return cls(folder / ROOT_FILE, folder / INTERMEDIATE_FILE, folder / KEY_FILE)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``tls init`` and ``tls issue`` below ``parser``."""
    verbs = parser.add_subparsers(dest="tls_verb", metavar="ACTION", required=True)
    add_init_arguments(
        verbs.add_parser(
            "init",
            help="create a private, name-constrained CA for the proxy front door",
            description="Create DIR/ca.pem (the root CA that apps trust; its key is discarded "
            "once it has signed), DIR/intermediate.pem (the CA that signs, with the same "
            "critical Name Constraints, which Java applies only below a root) and "
            "DIR/ca-key.pem (the intermediate's key, mode 0600). EC P-256; the constraints "
            "permit only the intercepted hosts, not their subdomains and no IP address. Prints "
            "how to make each ecosystem trust ca.pem. Refuses to overwrite without --force.",
        )
    )
    issue = verbs.add_parser(
        "issue",
        help="sign a server certificate for the TLS listener with the CA in DIR",
        description="Sign a certificate for --tls-cert/--tls-key with the CA in DIR (the key "
        "DIR/ca-key.pem and the certificate it belongs to, DIR/intermediate.pem), for a "
        "deployment where DNS sends HOST to the gateway. Writes DIR/HOST.pem (the "
        "certificate followed by the intermediate) and DIR/HOST-key.pem (mode 0600), or the "
        "files --out-cert and --out-key name. HOST must be one the CA permits.",
    )
    issue.add_argument("directory", metavar="DIR", help="folder made by `gateway tls init`")
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
    issue.add_argument(
        "--out-cert",
        metavar="FILE",
        help="where to write the certificate and the intermediate (default DIR/HOST.pem)",
    )
    issue.add_argument(
        "--out-key",
        metavar="FILE",
        help="where to write its key, mode 0600 (default DIR/HOST-key.pem)",
    )
    issue.add_argument("--force", action="store_true", help="replace existing files")


def add_init_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "directory", metavar="DIR", help="folder for ca.pem, intermediate.pem and ca-key.pem"
    )
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
        "--force",
        action="store_true",
        help="replace an existing ca.pem / intermediate.pem / ca-key.pem",
    )


def _refuse_taken(paths: list[Path]) -> None:
    existing = taken(paths)
    if existing:
        raise InitError(f"{existing[0]} exists; pass --force to replace it")


def _write_all(files: list[tuple[Path, bytes, bool]], force: bool) -> None:
    """Each (path, data, private) in order; a key is private (mode 0600) from its creation."""
    if not force:
        _refuse_taken([path for path, _, _ in files])
    for path, data, private in files:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_file(path, data, private=private, replace=force)
        except FileExistsError as exc:  # appeared since the check above
            raise InitError(f"{path} exists; pass --force to replace it") from exc
        except OSError as exc:
            raise InitError(f"{exc.filename or path}: {exc.strerror or exc}") from exc


def write_ca(directory: Path, hosts: list[str], days: int, force: bool) -> CAPaths:
    """Make the CA and write its three files (absolute paths); the root's key is never
    written."""
    from gateway.frontdoor.authority import create_ca  # loads cryptography: only here

    try:
        created = create_ca(hosts, days=days)
    except ValueError as exc:
        raise InitError(str(exc)) from exc
    paths = CAPaths.of(directory)
    _write_all(
        [
            (paths.key, created.key_pem, True),
            (paths.intermediate, created.intermediate_pem, False),
            (paths.root, created.root_pem, False),
        ],
        force,
    )
    return paths


def issue_certificate(
    directory: Path,
    host: str,
    days: int,
    force: bool,
    out_cert: Path | None = None,
    out_key: Path | None = None,
) -> tuple[Path, Path]:
    """Sign a server certificate for ``host`` with the CA in ``directory``; the paths of the
    certificate (followed by the intermediate) and of its key, absolute."""
    from gateway.frontdoor.ca_folder import load_ca_beside, one_level_warning
    from gateway.frontdoor.certificates import CertificateError, mint_leaf

    paths = CAPaths.of(directory)
    try:
        cert_pem, key_pem = paths.root.read_bytes(), paths.key.read_bytes()
    except OSError as exc:
        raise InitError(f"{exc.filename}: {exc.strerror}; run `gateway tls init` first") from exc
    try:
        ca = load_ca_beside(paths.root, cert_pem, key_pem)
    except CertificateError as exc:
        raise InitError(f"{paths.root.parent}: {exc}") from exc
    if ca.one_level:
        print(f"gateway: warning: {one_level_warning(paths.root)}", file=sys.stderr)
    try:
        name = check_host_name(host)
    except ValueError as exc:
        raise InitError(str(exc)) from exc
    if name not in ca.hosts:
        raise InitError(f"the CA in {directory} may only vouch for {', '.join(ca.hosts)}")
    if not 1 <= days <= 825:
        raise InitError(f"days must be 1 to 825, got {days}")
    folder = paths.root.parent
    cert_path = Path(os.path.abspath(out_cert or folder / f"{name}.pem"))
    key_path = Path(os.path.abspath(out_key or folder / f"{name}-key.pem"))
    if cert_path == key_path:
        raise InitError(f"--out-cert and --out-key both name {cert_path}")
    if not force:
        _refuse_taken([cert_path, key_path])
    leaf = mint_leaf(ca, name, lifetime=datetime.timedelta(days=days))
    _write_all([(key_path, leaf.key_pem, True), (cert_path, leaf.full_chain_pem, False)], force)
    return cert_path, key_path


def run(args: argparse.Namespace) -> int:
    if args.tls_verb == "issue":
        out_cert = Path(args.out_cert) if args.out_cert else None
        out_key = Path(args.out_key) if args.out_key else None
        cert_path, key_path = issue_certificate(
            Path(args.directory), args.host, args.days, args.force, out_cert, out_key
        )
        print(f"wrote {cert_path} (the certificate, then the intermediate)")
        print(f"  and {key_path} (its key, mode 0600)")
        print(f"  gateway serve --tls-cert {cert_path} --tls-key {key_path}")
        print("Clients trust it through ca.pem, as printed by `gateway tls init`.")
        return 0
    hosts = [h.strip() for h in args.hosts.split(",") if h.strip()]
    paths = write_ca(Path(args.directory), hosts, args.days, args.force)
    print(f"wrote {paths.root} (the root CA: what apps trust; its key was not kept)")
    print(f"  {paths.intermediate} (the intermediate CA, which signs)")
    print(f"  {paths.key} (the intermediate's key, mode 0600)\n")
    print(trust_instructions(paths.root, paths.key, [h.lower() for h in hosts]), end="")
    return 0
