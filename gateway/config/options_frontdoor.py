"""The option table's "HTTPS front doors" group: the TLS listener and the HTTPS-proxy front door."""

from __future__ import annotations

from gateway.config.hosts import DEFAULT_TUNNEL_HOSTS, parse_host_patterns, parse_networks
from gateway.config.option import Option
from gateway.config.parsers import (
    parse_optional_listen,
    parse_optional_path,
    parse_positive_float,
    parse_positive_int,
)

TITLE = "HTTPS front doors"

OPTIONS: tuple[Option, ...] = (
    Option(
        "tls_cert",
        parse_optional_path,
        None,
        "serve HTTPS with this PEM certificate chain (with --tls-key): on --tls-listen when it "
        "is set, else the main listener becomes HTTPS",
        "FILE",
    ),
    Option("tls_key", parse_optional_path, None, "the private key of --tls-cert (PEM)", "FILE"),
    Option(
        "tls_listen",
        parse_optional_listen,
        None,
        "serve HTTPS (--tls-cert, --tls-key) on this address too, the main listener staying "
        "plain HTTP",
        "HOST:PORT",
    ),
    Option(
        "proxy_listen",
        parse_optional_listen,
        None,
        "also serve the HTTPS-proxy front door (CONNECT) on this address",
        "HOST:PORT",
    ),
    Option(
        "proxy_ca_cert",
        parse_optional_path,
        None,
        "ca.pem from `gateway tls init` (intermediate.pem is then read beside it), or the "
        "intermediate itself; its Name Constraints name the intercepted hosts",
        "FILE",
    ),
    Option(
        "proxy_ca_key",
        parse_optional_path,
        None,
        "ca-key.pem from `gateway tls init`: the key of the intermediate CA that signs",
        "FILE",
    ),
    Option(
        "proxy_tunnel_hosts",
        parse_host_patterns,
        DEFAULT_TUNNEL_HOSTS,
        "CONNECT targets tunnelled blindly, 'HOST:PORT' or '*.DOMAIN:PORT', comma-separated "
        "(empty: none)",
        "PATTERNS",
    ),
    Option(
        "proxy_tunnel_allow_networks",
        parse_networks,
        "",
        "internal address ranges a blind tunnel may connect to, CIDRs comma-separated; a "
        "tunnel target that resolves only to loopback, private, link-local, unique-local or "
        "other non-public addresses outside them is refused with 403",
        "CIDRS",
    ),
    Option(
        "proxy_max_tunnels",
        parse_positive_int,
        256,
        "proxy connections open at once, intercepted and tunnelled (503 above)",
        "N",
    ),
    Option(
        "proxy_tunnel_idle_timeout",
        parse_positive_float,
        300.0,
        "close a blind tunnel after this long without a byte either way",
        "SECONDS",
    ),
    Option(
        "proxy_tunnel_total_timeout",
        parse_positive_float,
        3600.0,
        "close a proxy connection (blind, or intercepted once its request is done) after this long",
        "SECONDS",
    ),
)
