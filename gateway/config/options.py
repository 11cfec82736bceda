"""The option table: every setting's name, parser, default and help, in one place.

From it come all three spellings of a setting, so they cannot drift apart: option
``max_body_size`` is flag ``--max-body-size``, variable ``GATEWAY_MAX_BODY_SIZE`` and config-file
key ``max_body_size``. The parsers that turn text into typed values live in
:mod:`gateway.config.parsers`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from gateway.config.hosts import DEFAULT_TUNNEL_HOSTS, parse_host_patterns
from gateway.config.parsers import (
    parse_bool,
    parse_count,
    parse_forwarded_header,
    parse_hops,
    parse_http_url,
    parse_instant_text,
    parse_listen,
    parse_log_level,
    parse_names,
    parse_optional_listen,
    parse_optional_path,
    parse_optional_url,
    parse_path,
    parse_positive_float,
    parse_positive_int,
    parse_size,
    parse_url_list,
    parse_workers,
)
from gateway.config.policy import parse_schedule
from gateway.config.upstreams import TABLE as UPSTREAM_TABLE

# Marketplace v1 went to twilio-oai main on 2024-06-18; Twilio announced the Preview API's
# discontinuation for December 2024 without a day, so the first of the month is assumed.
DEFAULT_DEPRECATION = "2024-06-18T00:00:00Z"
DEFAULT_SUNSET = "2024-12-01T00:00:00Z"
DEFAULT_DOCS = "https://www.twilio.com/docs/marketplace/api/migration-preview-to-v1"


@dataclass(frozen=True, slots=True)
class Option:
    """One setting: its name, how to parse it from text, its default and its help."""

    name: str
    parse: Callable[[str], Any]
    default: Any
    help: str
    metavar: str = "VALUE"
    is_flag: bool = False  # a boolean switch on the command line

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def env(self) -> str:
        return "GATEWAY_" + self.name.upper()


def _upstream_options() -> tuple[Option, ...]:
    """``<name>_upstream`` and ``<name>_public_origins`` for every row of the upstream table."""
    options: list[Option] = []
    for row in UPSTREAM_TABLE:
        options.append(
            Option(
                f"{row.name}_upstream",
                parse_http_url,
                row.origin,
                f"where {row.serves} go (Twilio, a mirror, an egress proxy or the simulator)",
                "URL",
            )
        )
        options.append(
            Option(
                f"{row.name}_public_origins",
                parse_url_list,
                row.origin,
                f"comma-separated origins that the responses of {row.serves} write their URLs with",
                "URL[,URL]",
            )
        )
    return tuple(options)


OPTIONS: tuple[Option, ...] = (
    Option("listen", parse_listen, "127.0.0.1:8080", "address to serve on", "HOST:PORT"),
    *_upstream_options(),
    Option(
        "public_base_url",
        parse_http_url,
        None,
        "the gateway's URL as clients see it, written into rewritten URLs "
        "(default: the request's scheme and Host)",
        "URL",
    ),
    Option(
        "trust_forwarded_headers",
        parse_bool,
        False,
        "derive the public URL from the forwarded headers trusted proxies set "
        "(--forwarded-header, --forwarded-hops; only behind proxies you control)",
        is_flag=True,
    ),
    Option(
        "forwarded_header",
        parse_forwarded_header,
        "x-forwarded",
        "headers the trusted proxies write: x-forwarded (X-Forwarded-Proto/-Host) or "
        "forwarded (RFC 7239); the other family is ignored",
        "x-forwarded|forwarded",
    ),
    Option(
        "forwarded_hops",
        parse_hops,
        1,
        "trusted proxies that append to those headers; the entry this many from the right "
        "is used, and none when there are fewer",
        "N",
    ),
    Option(
        "rules", parse_path, None, "directory of rule files replacing the built-in rules", "DIR"
    ),
    Option(
        "watch_config",
        parse_bool,
        False,
        "reload (as on SIGHUP) when the config file or a rule file changes; polled every "
        "second, so Kubernetes ConfigMap mounts work",
        is_flag=True,
    ),
    Option("log_level", parse_log_level, "info", "debug, info, warning or error", "LEVEL"),
    Option("connect_timeout", parse_positive_float, 5.0, "upstream connect deadline", "SECONDS"),
    Option("read_timeout", parse_positive_float, 30.0, "upstream read deadline", "SECONDS"),
    Option(
        "total_timeout", parse_positive_float, 60.0, "deadline for a whole upstream call", "SECONDS"
    ),
    Option("max_body_size", parse_size, "1M", "largest request body accepted (413 above)", "SIZE"),
    Option(
        "max_response_size", parse_size, "16M", "largest upstream body accepted (502 above)", "SIZE"
    ),
    Option(
        "insecure_skip_tls_verify",
        parse_bool,
        False,
        "do not verify upstream TLS certificates (dangerous; logs a warning)",
        is_flag=True,
    ),
    Option("ca_bundle", parse_path, None, "CA bundle for upstream TLS verification", "FILE"),
    Option("pool_size", parse_count, 100, "upstream connections in total (0: no limit)", "N"),
    Option(
        "pool_size_per_host", parse_count, 0, "upstream connections per host (0: no limit)", "N"
    ),
    Option(
        "keepalive_timeout",
        parse_positive_float,
        15.0,
        "seconds an idle upstream connection is kept",
        "SECONDS",
    ),
    Option(
        "client_header_timeout",
        parse_positive_float,
        60.0,
        "deadline for a client's request line and headers, from the connection opening or the "
        "request's first byte (then 408 and close)",
        "SECONDS",
    ),
    Option(
        "client_body_timeout",
        parse_positive_float,
        60.0,
        "longest pause between two reads of a request body (then 408 and close)",
        "SECONDS",
    ),
    Option(
        "client_body_total_timeout",
        parse_positive_float,
        120.0,
        "deadline for a whole request body (then 408 and close)",
        "SECONDS",
    ),
    Option(
        "client_keepalive_timeout",
        parse_positive_float,
        75.0,
        "seconds an idle client connection is kept open between requests",
        "SECONDS",
    ),
    Option(
        "client_send_timeout",
        parse_positive_float,
        60.0,
        "longest a response may wait for a client that reads nothing (then the connection is "
        "dropped)",
        "SECONDS",
    ),
    Option(
        "max_client_connections",
        parse_positive_int,
        1024,
        "open client connections per process; one more is answered 503 and closed",
        "N",
    ),
    Option(
        "max_buffered_body_size",
        parse_size,
        "64M",
        "request-body bytes one process holds in memory at once (503 above)",
        "SIZE",
    ),
    Option("workers", parse_workers, 1, "processes serving the same port (SO_REUSEPORT)", "N"),
    Option(
        "metrics_listen",
        parse_optional_listen,
        None,
        "serve /metrics on this separate address too",
        "HOST:PORT",
    ),
    Option(
        "metrics_public",
        parse_bool,
        True,
        "also serve /metrics on the main listener; false keeps it (and the consumer SIDs and "
        "names it shows) on --metrics-listen only",
        "true|false",
    ),
    Option(
        "consumer_labels",
        parse_bool,
        True,
        "label deprecated-route metrics with the caller's Account/API key SID",
        "true|false",
    ),
    Option(
        "consumer_cap",
        parse_count,
        100,
        "distinct consumer labels for the whole gateway (all --workers share one cap; each "
        "replica of a fleet has its own); the rest count as 'other'",
        "N",
    ),
    Option(
        "consumer_names",
        parse_names,
        "",
        "names for consumers, 'SID=name,SID=name' (file: a table of SID = name)",
        "SID=NAME,...",
    ),
    Option(
        "deprecation_date",
        parse_instant_text,
        DEFAULT_DEPRECATION,
        "when the legacy routes were deprecated (Deprecation header)",
        "ISO8601",
    ),
    Option(
        "sunset_date",
        parse_instant_text,
        DEFAULT_SUNSET,
        "when the legacy routes go away (Sunset header)",
        "ISO8601",
    ),
    Option(
        "deprecation_link",
        parse_optional_url,
        DEFAULT_DOCS,
        'documentation sent as Link rel="deprecation" (empty: none)',
        "URL",
    ),
    Option(
        "sunset_link", parse_optional_url, None, 'documentation sent as Link rel="sunset"', "URL"
    ),
    Option(
        "brownouts",
        parse_schedule,
        "",
        "windows when deprecated routes answer 410: 'START/END[@PERCENT];...'",
        "WINDOWS",
    ),
    Option(
        "tls_cert",
        parse_optional_path,
        None,
        "serve the main listener over HTTPS with this PEM certificate chain (with --tls-key)",
        "FILE",
    ),
    Option("tls_key", parse_optional_path, None, "the private key of --tls-cert (PEM)", "FILE"),
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
        "interception CA certificate from `gateway tls init` (its Name Constraints name the "
        "intercepted hosts)",
        "FILE",
    ),
    Option("proxy_ca_key", parse_optional_path, None, "the interception CA's private key", "FILE"),
    Option(
        "proxy_tunnel_hosts",
        parse_host_patterns,
        DEFAULT_TUNNEL_HOSTS,
        "CONNECT targets tunnelled blindly, 'HOST:PORT' or '*.DOMAIN:PORT', comma-separated "
        "(empty: none)",
        "PATTERNS",
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
    Option("access_log", parse_bool, True, "one JSON line per request on stderr", "true|false"),
    Option("access_log_level", parse_log_level, "info", "level of the access-log lines", "LEVEL"),
)

OPTIONS_BY_NAME: Mapping[str, Option] = {option.name: option for option in OPTIONS}


def add_arguments(parser: argparse.ArgumentParser, only: Collection[str] | None = None) -> None:
    """Add ``--config`` and one flag per option (or per option named in ``only``), all
    defaulting to "not given"; options left out still come from the environment, the config
    file or their defaults."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help="TOML config file (keys as the option names below; env GATEWAY_CONFIG)",
    )
    for option in OPTIONS:
        if only is not None and option.name not in only:
            continue
        default_text = "" if option.default is None else f" (default: {option.default})"
        help_text = f"{option.help}{default_text}; env {option.env}"
        if option.is_flag:
            parser.add_argument(
                option.flag,
                dest=option.name,
                action="store_const",
                const="true",
                default=None,
                help=help_text,
            )
        else:
            parser.add_argument(
                option.flag,
                dest=option.name,
                metavar=option.metavar,
                default=None,
                help=help_text.replace("%", "%%"),
            )
