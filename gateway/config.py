"""The gateway's one immutable configuration, built once at start-up.

Precedence, highest first: command-line flags, ``GATEWAY_*`` environment variables, the TOML
file named by ``--config`` / ``GATEWAY_CONFIG``, then the defaults below. Every option has all
three spellings, derived from one table (:data:`OPTIONS`) so they cannot drift apart: option
``max_body_size`` is flag ``--max-body-size``, variable ``GATEWAY_MAX_BODY_SIZE`` and file key
``max_body_size``. A bad value raises :class:`ConfigError` naming where it came from.
"""

from __future__ import annotations

import argparse
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from yarl import URL

from gateway.brownout import Schedule, parse_schedule
from gateway.consumers import parse_names
from gateway.deprecation import DeprecationPolicy, parse_instant


class ConfigError(ValueError):
    """A configuration value is invalid; the message names its source."""


@dataclass(frozen=True, slots=True)
class Upstream:
    """Where one family of routes is forwarded, and the origins its URLs are written with."""

    name: str
    base: str  # e.g. "https://marketplace.twilio.com" (no trailing slash; may carry a path)
    public_origins: tuple[str, ...]  # absolute URL prefixes recognised as this upstream's

    @property
    def url_prefixes(self) -> tuple[str, ...]:
        """Every prefix that marks a URL in a response body as this upstream's."""
        seen: dict[str, None] = {self.base: None}
        for origin in self.public_origins:
            seen.setdefault(origin, None)
        return tuple(seen)


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayConfig:
    """Every setting of one gateway process. Built by :func:`load_config`; never mutated."""

    listen_host: str = "127.0.0.1"
    listen_port: int = 8080
    upstreams: Mapping[str, Upstream] = field(default_factory=dict)
    public_base_url: str | None = None
    trust_forwarded_headers: bool = False
    rules_dir: Path | None = None
    log_level: str = "info"
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    total_timeout: float = 60.0
    max_body_size: int = 1024 * 1024
    max_response_size: int = 16 * 1024 * 1024
    tls_verify: bool = True
    ca_bundle: Path | None = None
    pool_size: int = 100
    pool_size_per_host: int = 0
    keepalive_timeout: float = 15.0
    consumer_labels: bool = True
    consumer_cap: int = 100
    consumer_names: Mapping[str, str] = field(default_factory=dict)
    deprecation: DeprecationPolicy = field(
        default_factory=lambda: DeprecationPolicy(
            parse_instant(DEFAULT_DEPRECATION), parse_instant(DEFAULT_SUNSET), DEFAULT_DOCS
        )
    )
    brownouts: Schedule = field(default_factory=Schedule)
    access_log: bool = True
    access_log_level: str = "info"
    metrics_listen: tuple[str, int] | None = None
    workers: int = 1


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


OPTIONS: tuple[Option, ...] = (
    Option("listen", parse_listen, "127.0.0.1:8080", "address to serve on", "HOST:PORT"),
    Option(
        "marketplace_upstream",
        parse_http_url,
        "https://marketplace.twilio.com",
        "where Marketplace v1 calls go (Twilio, a mirror, an egress proxy or the simulator)",
        "URL",
    ),
    Option(
        "marketplace_public_origins",
        parse_url_list,
        "https://marketplace.twilio.com",
        "comma-separated origins that Marketplace responses write their URLs with",
        "URL[,URL]",
    ),
    Option(
        "api_upstream",
        parse_http_url,
        "https://api.twilio.com",
        "where 2010 API (AssignedAddOns) calls go",
        "URL",
    ),
    Option(
        "api_public_origins",
        parse_url_list,
        "https://api.twilio.com",
        "comma-separated origins that 2010 API responses write their URLs with",
        "URL[,URL]",
    ),
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


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--config`` and one flag per option, all defaulting to "not given"."""
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help="TOML config file (keys as the option names below; env GATEWAY_CONFIG)",
    )
    for option in OPTIONS:
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


def _read_file(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: invalid TOML: {exc}") from exc
    section = data.get("gateway", data)
    if not isinstance(section, dict):
        raise ConfigError(f"config file {path}: [gateway] must be a table")
    outside = sorted(key for key in data if key != "gateway") if section is not data else []
    if outside:  # would otherwise be ignored without a word
        raise ConfigError(f"config file {path}: unknown key {outside[0]!r} outside [gateway]")
    return section


def _file_value(option: Option, raw: Any, path: str) -> Any:
    """A TOML value may be typed already; lists become comma-joined text."""
    if isinstance(raw, bool):
        raw = "true" if raw else "false"
    elif isinstance(raw, dict):
        raw = ",".join(f"{key}={value}" for key, value in raw.items())
    elif isinstance(raw, list):
        raw = ",".join(str(item) for item in raw)
    try:
        return option.parse(str(raw))
    except ValueError as exc:
        raise ConfigError(f"config file {path}, key {option.name}: {exc}") from exc


def resolve(
    flags: Mapping[str, Any], environ: Mapping[str, str], extra_keys: Sequence[str] = ()
) -> dict[str, Any]:
    """Each option's parsed value, taking flags over env over the config file over defaults.

    ``extra_keys`` names config-file keys owned by other parts of the program (accepted here
    and left alone); any other unknown file key is an error.
    """
    config_path = flags.get("config") or environ.get("GATEWAY_CONFIG")
    file_values = _read_file(config_path) if config_path else {}
    known = set(OPTIONS_BY_NAME) | set(extra_keys)
    for key in file_values:
        if key not in known:
            raise ConfigError(f"config file {config_path}: unknown key {key!r}")
    values: dict[str, Any] = {}
    for option in OPTIONS:
        flag_value = flags.get(option.name)
        if flag_value is not None:
            source, text = f"flag {option.flag}", str(flag_value)
        elif option.env in environ:
            source, text = f"environment variable {option.env}", environ[option.env]
        elif option.name in file_values:
            values[option.name] = _file_value(option, file_values[option.name], str(config_path))
            continue
        elif option.default is None:
            values[option.name] = None
            continue
        elif not isinstance(option.default, str):
            values[option.name] = option.default
            continue
        else:
            source, text = "default", str(option.default)
        try:
            values[option.name] = option.parse(text)
        except ValueError as exc:
            raise ConfigError(f"{source}: {exc}") from exc
    values["_file"] = file_values
    return values


def load_config(flags: Mapping[str, Any], environ: Mapping[str, str]) -> GatewayConfig:
    """Build the immutable :class:`GatewayConfig` from parsed flags and the environment."""
    values = resolve(flags, environ)
    host, port = values["listen"]
    if values["total_timeout"] < values["connect_timeout"]:
        raise ConfigError("total_timeout must not be shorter than connect_timeout")
    upstreams = MappingProxyType(  # read-only, so the frozen config cannot be changed
        {
            "marketplace": Upstream(
                "marketplace",
                values["marketplace_upstream"],
                values["marketplace_public_origins"],
            ),
            "api": Upstream("api", values["api_upstream"], values["api_public_origins"]),
        }
    )
    try:
        policy = DeprecationPolicy(
            parse_instant(values["deprecation_date"]),
            parse_instant(values["sunset_date"]),
            values["deprecation_link"],
            values["sunset_link"],
        )
    except ValueError as exc:
        raise ConfigError(f"sunset_date/deprecation_date: {exc}") from exc
    return GatewayConfig(
        listen_host=host,
        listen_port=port,
        upstreams=upstreams,
        public_base_url=values["public_base_url"],
        trust_forwarded_headers=values["trust_forwarded_headers"],
        rules_dir=values["rules"],
        log_level=values["log_level"],
        connect_timeout=values["connect_timeout"],
        read_timeout=values["read_timeout"],
        total_timeout=values["total_timeout"],
        max_body_size=values["max_body_size"],
        max_response_size=values["max_response_size"],
        tls_verify=not values["insecure_skip_tls_verify"],
        ca_bundle=values["ca_bundle"],
        pool_size=values["pool_size"],
        pool_size_per_host=values["pool_size_per_host"],
        keepalive_timeout=values["keepalive_timeout"],
        consumer_labels=values["consumer_labels"],
        consumer_cap=values["consumer_cap"],
        consumer_names=values["consumer_names"],
        deprecation=policy,
        brownouts=values["brownouts"],
        access_log=values["access_log"],
        access_log_level=values["access_log_level"],
        metrics_listen=values["metrics_listen"],
        workers=values["workers"],
    )
