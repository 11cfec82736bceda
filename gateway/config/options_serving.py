"""The option table's "Serving clients" group: where and how the gateway listens, what it
trusts of its clients, and the bounds every client connection is held to."""

from __future__ import annotations

from gateway.config.option import Option
from gateway.config.parsers import (
    parse_bool,
    parse_forwarded_header,
    parse_hops,
    parse_http_url,
    parse_listen,
    parse_log_level,
    parse_optional_listen,
    parse_path,
    parse_positive_float,
    parse_positive_int,
    parse_size,
    parse_workers,
)

TITLE = "Serving clients"

OPTIONS: tuple[Option, ...] = (
    Option("listen", parse_listen, "127.0.0.1:8080", "address to serve on", "HOST:PORT"),
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
        "open client connections per process on the main listener (and as many on "
        "--tls-listen), counted at accept, before TLS; one more is answered 503 and closed "
        "(over TLS: closed)",
        "N",
    ),
    Option("max_body_size", parse_size, "1M", "largest request body accepted (413 above)", "SIZE"),
    Option(
        "max_buffered_body_size",
        parse_size,
        "64M",
        "request-body bytes one process holds in memory at once (503 above)",
        "SIZE",
    ),
    Option("workers", parse_workers, 1, "processes serving the same port (SO_REUSEPORT)", "N"),
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
    Option("access_log", parse_bool, True, "one JSON line per request on stderr", "true|false"),
    Option("access_log_level", parse_log_level, "info", "level of the access-log lines", "LEVEL"),
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
        "max_metrics_connections",
        parse_positive_int,
        64,
        "open connections on --metrics-listen, a cap of its own so that a flood on the main "
        "address cannot blind it; one more is answered 503 and closed",
        "N",
    ),
)
