"""The gateway's one immutable configuration, built once at start-up.

Precedence, highest first: command-line flags, ``GATEWAY_*`` environment variables, the TOML
file named by ``--config`` / ``GATEWAY_CONFIG``, then the defaults of the option table in
:mod:`gateway.options`. A bad value raises :class:`ConfigError` naming where it came from.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from gateway.brownout import Schedule
from gateway.deprecation import DeprecationPolicy, parse_instant
from gateway.options import (
    DEFAULT_DEPRECATION,
    DEFAULT_DOCS,
    DEFAULT_SUNSET,
    OPTIONS,
    OPTIONS_BY_NAME,
    Option,
)


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
    forwarded_header: str = "x-forwarded"  # which family trusted proxies write
    forwarded_hops: int = 1  # trusted proxies appending to it
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
        forwarded_header=values["forwarded_header"],
        forwarded_hops=values["forwarded_hops"],
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
