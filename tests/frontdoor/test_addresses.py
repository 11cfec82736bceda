"""Tunnel targets are resolved once and checked (issue 17.6): a name a tunnel pattern allows but
that resolves to a loopback, private, link-local (metadata), unique-local or other internal
address is refused with 403 and nothing is connected to, unless --proxy-tunnel-allow-networks
names its range; the tunnel connects to an address that was checked, never to the name again;
names the hosts file serves keep working.

The end-to-end cases run in a network namespace of their own (``unshare -rnm``) with its own
hosts file and resolv.conf bind-mounted, so that no lookup leaves the machine."""

from __future__ import annotations

import ipaddress
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gateway.config.hosts import parse_networks
from gateway.frontdoor.addresses import allowed, is_internal
from tests.paths import ROOT
from tests.processes import gateway_output, require_binary


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1", "127.9.9.9", "::1",  # loopback
        "10.1.2.3", "172.16.0.1", "192.168.1.1",  # private
        "169.254.169.254", "169.254.0.1", "fe80::1",  # link-local: the metadata service
        "fd00::1", "fd00:ec2::254", "fc00::1",  # unique-local (AWS's IPv6 metadata too)
        "100.64.0.1", "100.100.100.200",  # shared (carrier-grade NAT; Alibaba's metadata)
        "0.0.0.0", "::", "255.255.255.255", "240.0.0.1",  # unspecified, broadcast, reserved
        "224.0.0.1", "ff02::1",  # multicast
        "192.0.2.1", "2001:db8::1",  # documentation
        "fec0::1",  # site-local
        "::ffff:127.0.0.1", "::ffff:169.254.169.254",  # IPv4-mapped
        "64:ff9b::a9fe:a9fe", "64:ff9b::a00:1",  # NAT64 of the metadata and a private address
        "2002:a9fe:a9fe::1",  # 6to4 of the metadata address
    ],
)  # fmt: skip
def test_internal_addresses(address: str) -> None:
    parsed = ipaddress.ip_address(address)
    assert is_internal(parsed)
    assert not allowed(parsed, ())


@pytest.mark.parametrize(
    "address", ["1.2.3.4", "54.172.60.1", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]
)
def test_public_addresses(address: str) -> None:
    parsed = ipaddress.ip_address(address)
    assert not is_internal(parsed) and allowed(parsed, ())


def test_only_the_ranges_named_are_allowed() -> None:
    networks = parse_networks("10.0.0.0/8, fd00::/8")
    assert allowed(ipaddress.ip_address("10.1.2.3"), networks)
    assert allowed(ipaddress.ip_address("fd00::1"), networks)
    assert not allowed(ipaddress.ip_address("169.254.169.254"), networks)
    assert not allowed(ipaddress.ip_address("127.0.0.1"), networks)


def test_the_allow_option_parses_cidrs() -> None:
    assert parse_networks("") == ()
    assert [str(n) for n in parse_networks("10.0.0.0/8,127.0.0.1")] == [
        "10.0.0.0/8",
        "127.0.0.1/32",
    ]
    for bad in ("10.0.0.1/8", "example.com", "10.0.0.0/33"):
        with pytest.raises(ValueError, match="address range"):
            parse_networks(bad)


# -- end to end, in a network namespace -------------------------------------------------------

PORT = 8443
HOSTS = """\
127.0.0.1 localhost
::1 localhost
1.2.3.4 api.twilio.com
10.1.2.3 internal.twilio.com
127.0.0.1 loop.twilio.com
169.254.169.254 metadata.twilio.com
fd00::1 ula.twilio.com
100.64.0.1 cgnat.twilio.com
::ffff:127.0.0.1 mapped.twilio.com
10.1.2.3 mixed.twilio.com
1.2.3.4 mixed.twilio.com
"""
# No server listens on the namespace's loopback port 53: names the hosts file does not hold
# fail at once. The search domain shows that one applies; none of the names needs it.
RESOLV = "nameserver 127.0.0.1\nsearch corp.example\noptions timeout:1 attempts:1\n"
ADDRESSES = ["1.2.3.4", "10.1.2.3", "169.254.169.254", "fd00::1", "100.64.0.1"]
INTERNAL = ["internal", "loop", "metadata", "ula", "cgnat", "mapped"]


def in_namespace(tmp_path: Path, serve_loop: str, *flags: str) -> dict[str, Any]:
    """Run tests/frontdoor/netns_tunnels.py in a new user, network and mount namespace."""
    unshare = require_binary("unshare", "util-linux provides it")
    require_binary("ip", "scripts/install-system-deps.sh installs iproute2")
    ca = tmp_path / "ca"
    if not (ca / "ca.pem").exists():
        gateway_output("tls", "init", str(ca))
    (tmp_path / "hosts").write_text(HOSTS)
    (tmp_path / "resolv.conf").write_text(RESOLV)
    names = [f"{name}.twilio.com" for name in [*INTERNAL, "api", "mixed", "nowhere"]]
    script = (
        f'mount --bind "{tmp_path / "hosts"}" /etc/hosts && '
        f'mount --bind "{tmp_path / "resolv.conf"}" /etc/resolv.conf && '
        f'exec "{sys.executable}" -m tests.frontdoor.netns_tunnels "$@"'
    )
    argv = [serve_loop, str(ca), str(PORT), *ADDRESSES, "--", *flags, "--", *names]
    result = subprocess.run(
        [unshare, "-rnm", "sh", "-c", script, "netns", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    found: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


def test_internal_addresses_are_refused_and_the_checked_one_is_dialled(
    tmp_path: Path, serve_loop: str
) -> None:
    run = in_namespace(tmp_path, serve_loop, "--proxy-tunnel-hosts", f"*.twilio.com:{PORT}")
    answers, connections, received = run["answers"], run["connections"], run["received"]
    for name in INTERNAL:  # refused before any connection, the pipelined bytes sent nowhere
        answer = answers[f"{name}.twilio.com"]
        assert answer["status"] == "403", (name, answer)
        body = json.loads(answer["body"])
        assert body["code"] == 88011 and "internal addresses" in body["message"]
    assert set(connections) == {"1.2.3.4"}, connections  # nothing internal was dialled
    # A name from the hosts file (as Kubernetes hostAliases write it) is tunnelled.
    assert answers["api.twilio.com"]["status"] == "200"
    assert answers["api.twilio.com"]["body"] == "pipelined"[::-1]
    # A name with an internal and a public address: the tunnel dials the checked public one.
    assert answers["mixed.twilio.com"]["status"] == "200"
    assert connections == {"1.2.3.4": 2} and received == {"1.2.3.4": "pipelined" * 2}
    # A name nothing resolves: 502, and no lookup left the namespace to try.
    assert answers["nowhere.twilio.com"]["status"] == "502"
    assert "could not be resolved" in answers["nowhere.twilio.com"]["body"]
    assert "refused a tunnel: metadata.twilio.com resolves only to internal" in run["log"]


def test_an_internal_range_named_by_the_option_is_tunnelled_and_only_it(
    tmp_path: Path, serve_loop: str
) -> None:
    run = in_namespace(
        tmp_path, serve_loop,
        "--proxy-tunnel-hosts", f"*.twilio.com:{PORT}",
        "--proxy-tunnel-allow-networks", "10.0.0.0/8",
    )  # fmt: skip
    answers = run["answers"]
    assert answers["internal.twilio.com"]["status"] == "200"
    assert answers["internal.twilio.com"]["body"] == "pipelined"[::-1]
    # internal.twilio.com, and mixed.twilio.com if the resolver gave its private address first
    assert run["connections"].get("10.1.2.3", 0) >= 1
    assert set(run["connections"]) <= {"10.1.2.3", "1.2.3.4"}
    for name in ["loop", "metadata", "ula", "cgnat", "mapped"]:
        assert answers[f"{name}.twilio.com"]["status"] == "403", name
