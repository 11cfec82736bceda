"""The option table: every setting's name, parser, default and help, in one place.

From it come all three spellings of a setting, so they cannot drift apart: option
``max_body_size`` is flag ``--max-body-size``, variable ``GATEWAY_MAX_BODY_SIZE`` and config-file
key ``max_body_size``. The parsers turn text into typed values and raise ``ValueError`` with a
message that :mod:`gateway.config` prefixes with the value's source.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from yarl import URL

from gateway.brownout import parse_schedule
from gateway.consumers import parse_names
from gateway.instants import parse_instant
from gateway.upstreams import TABLE as UPSTREAM_TABLE

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


def parse_bool(text: str) -> bool:
    """``true/false``, ``1/0``, ``yes/no``, ``on/off`` (any case)."""
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6) to a host and a port."""
    host, sep, port_text = text.rpartition(":")
    if not sep or not host:
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ValueError(f"port out of range in {text!r}")
    return host.strip("[]"), port


def parse_http_url(text: str) -> str:
    """An absolute http(s) URL without query or fragment, returned without a trailing slash."""
    url = URL(text.strip())
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"expected an absolute http(s) URL, got {text!r}")
    if url.query_string or url.fragment:
        raise ValueError(f"URL must not carry a query or fragment: {text!r}")
    return str(url).rstrip("/")


def parse_url_list(text: str) -> tuple[str, ...]:
    """Comma-separated absolute URLs."""
    return tuple(parse_http_url(part) for part in text.split(",") if part.strip())


def parse_positive_float(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):  # also refuses "nan"
        raise ValueError(f"expected a positive number, got {text!r}")
    return value


def parse_size(text: str) -> int:
    """A byte count, optionally with a K, M or G suffix (powers of 1024)."""
    cleaned = text.strip().upper().removesuffix("B")
    scale = {"K": 1024, "M": 1024**2, "G": 1024**3}.get(cleaned[-1:], 1)
    number = cleaned[:-1] if scale > 1 else cleaned
    value = int(number) * scale
    if value <= 0:
        raise ValueError(f"expected a positive size, got {text!r}")
    return value


def parse_count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(f"expected a count >= 0, got {text!r}")
    return value


def parse_positive_count(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(f"expected a count >= 1, got {text!r}")
    return value


def parse_log_level(text: str) -> str:
    level = text.strip().lower()
    if level not in ("debug", "info", "warning", "error"):
        raise ValueError(f"expected debug, info, warning or error, got {text!r}")
    return level


def parse_path(text: str) -> Path:
    return Path(text).expanduser()


def parse_workers(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 64:
        raise ValueError(f"expected 1 to 64 workers, got {text!r}")
    return value


def parse_instant_text(text: str) -> str:
    parse_instant(text)  # validate now, keep the text for the policy built later
    return text.strip()


def parse_optional_url(text: str) -> str | None:
    return parse_http_url(text) if text.strip() else None


def parse_optional_listen(text: str) -> tuple[str, int] | None:
    return parse_listen(text) if text.strip() else None


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
        "derive the public URL from Forwarded / X-Forwarded-Proto / X-Forwarded-Host "
        "(only behind a proxy you control)",
        is_flag=True,
    ),
    Option(
        "rules", parse_path, None, "directory of rule files replacing the built-in rules", "DIR"
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
        parse_positive_count,
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
        "serve /metrics on this separate address too (it is always on the main one)",
        "HOST:PORT",
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
        "distinct consumer labels per process; the rest count as 'other'",
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
