"""The gateway's one immutable configuration, built once at start-up.

Precedence, highest first: command-line flags, ``GATEWAY_*`` environment variables, the TOML
file named by ``--config`` / ``GATEWAY_CONFIG``, then the defaults of the option table in
:mod:`gateway.config.options`, which is the only place defaults are written. Every field of
:class:`GatewayConfig` is an option of the same name; what is derived from several options
(the upstream table, the deprecation policy, the listen host and port) is a property. A bad
value raises :class:`ConfigError` naming where it came from.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any

from gateway.config.consumers import Consumer, EntryError, check_references
from gateway.config.hosts import HostPattern, Network
from gateway.config.instants import parse_instant
from gateway.config.option import Option
from gateway.config.options import OPTIONS, OPTIONS_BY_NAME
from gateway.config.policy import DeprecationPolicy, Schedule, Window
from gateway.config.upstreams import NAMES as UPSTREAM_NAMES
from gateway.config.upstreams import Upstream


class ConfigError(ValueError):
    """A configuration value is invalid; the message names its source."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GatewayConfig:
    """Every setting of one gateway process, one field per option. Built and validated by
    :func:`load_config`; never mutated."""

    listen: tuple[str, int]
    public_base_url: str | None
    trust_forwarded_headers: bool
    forwarded_header: str
    forwarded_hops: int
    client_header_timeout: float
    client_body_timeout: float
    client_body_total_timeout: float
    client_keepalive_timeout: float
    client_send_timeout: float
    max_client_connections: int
    max_body_size: int
    max_buffered_body_size: int
    workers: int
    rules: Path | None
    watch_config: bool
    log_level: str
    access_log: bool
    access_log_level: str
    metrics_listen: tuple[str, int] | None
    metrics_public: bool
    max_metrics_connections: int
    marketplace_upstream: str
    marketplace_public_origins: tuple[str, ...]
    api_upstream: str
    api_public_origins: tuple[str, ...]
    connect_timeout: float
    read_timeout: float
    total_timeout: float
    max_response_size: int
    max_buffered_response_size: int
    insecure_skip_tls_verify: bool
    ca_bundle: Path | None
    pool_size: int
    pool_size_per_host: int
    keepalive_timeout: float
    upstream_transport: str
    deprecation_date: str
    sunset_date: str
    deprecation_link: str | None
    sunset_link: str | None
    brownouts: Schedule
    brownout: tuple[Window, ...]
    consumer_labels: bool
    consumer_cap: int
    consumer_names: Mapping[str, str]
    consumers: tuple[Consumer, ...]
    unknown_consumers_cutoff: datetime | None
    migration_prometheus_url: str | None
    tls_cert: Path | None
    tls_key: Path | None
    tls_listen: tuple[str, int] | None
    proxy_listen: tuple[str, int] | None
    proxy_ca_cert: Path | None
    proxy_ca_key: Path | None
    proxy_tunnel_hosts: tuple[HostPattern, ...]
    proxy_tunnel_allow_networks: tuple[Network, ...]
    proxy_max_tunnels: int
    proxy_tunnel_idle_timeout: float
    proxy_tunnel_total_timeout: float

    @property
    def listen_host(self) -> str:
        return self.listen[0]

    @property
    def listen_port(self) -> int:
        return self.listen[1]

    @property
    def main_is_tls(self) -> bool:
        """Whether the main listener speaks HTTPS: ``tls_cert`` without ``tls_listen`` (with
        ``tls_listen`` the HTTPS listener is a second one, the main one stays plain HTTP)."""
        return self.tls_cert is not None and self.tls_listen is None

    @property
    def tls_verify(self) -> bool:
        """Whether upstream certificates are verified (``insecure_skip_tls_verify`` unset)."""
        return not self.insecure_skip_tls_verify

    @property
    def upstreams(self) -> Mapping[str, Upstream]:
        """The upstream table with this config's addresses, by name (read-only)."""
        return MappingProxyType(
            {
                name: Upstream(
                    name,
                    getattr(self, f"{name}_upstream"),
                    getattr(self, f"{name}_public_origins"),
                )
                for name in UPSTREAM_NAMES
            }
        )

    @property
    def deprecation(self) -> DeprecationPolicy:
        """The configured Deprecation and Sunset dates and documentation links."""
        return DeprecationPolicy(
            parse_instant(self.deprecation_date),
            parse_instant(self.sunset_date),
            self.deprecation_link,
            self.sunset_link,
        )

    @property
    def schedule(self) -> Schedule:
        """Every brownout window: the string form's and the ``[[brownout]]`` tables'."""
        if not self.brownout:
            return self.brownouts
        return Schedule(self.brownouts.windows + self.brownout)


FIELD_NAMES = tuple(field.name for field in fields(GatewayConfig))


def _read_file(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:  # TOML is UTF-8; tomllib lets the decoder's error through
        raise ConfigError(
            f"config file {path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
            f"{exc.start}); save it as UTF-8"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: invalid TOML: {exc}") from exc
    section = data.get("gateway", data)
    if not isinstance(section, dict):
        raise ConfigError(f"config file {path}: [gateway] must be a table")
    outside = sorted(key for key in data if key != "gateway") if section is not data else []
    if outside:  # would otherwise be ignored without a word
        hint = ""
        if outside[0] in OPTIONS_BY_NAME and OPTIONS_BY_NAME[outside[0]].file_only:
            hint = f" (in a file with a [gateway] table, write [[gateway.{outside[0]}]])"
        raise ConfigError(f"config file {path}: unknown key {outside[0]!r} outside [gateway]{hint}")
    for key in section:
        if key not in OPTIONS_BY_NAME:
            raise ConfigError(f"config file {path}: unknown key {key!r}")
    return section


def _file_value(option: Option, raw: Any, path: str) -> Any:
    """A TOML value may be typed already; lists become comma-joined text. A file-only
    option's parser takes the value as it was read. A relative path is relative to the file's
    folder (as nginx and Prometheus read theirs), not to the current directory: the folder as
    named, symlinks not followed, so that a Kubernetes ConfigMap mount
    (``gateway.toml -> ..data/gateway.toml``) resolves beside the mount point."""
    if option.file_only:
        try:
            return option.parse(raw)
        except EntryError as exc:
            raise ConfigError(f"config file {path}, {exc}") from exc
        except ValueError as exc:
            raise ConfigError(f"config file {path}, key {option.name}: {exc}") from exc
    if isinstance(raw, bool):
        raw = "true" if raw else "false"
    elif isinstance(raw, dict):
        raw = ",".join(f"{key}={value}" for key, value in raw.items())
    elif isinstance(raw, list):
        raw = ",".join(str(item) for item in raw)
    where = f"config file {path}, key {option.name}"
    try:
        value = option.parse(str(raw))
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from exc
    if isinstance(value, Path):
        hint = ""
        if not value.is_absolute():
            value = Path(os.path.abspath(path)).parent / value
            hint = " (a relative path in a config file is relative to its folder)"
        _check_exists(value, where, hint)
    return value


def _check_exists(path: Path, where: str, hint: str = "") -> None:
    """A file or folder an option names must be there from the start: said now, naming the
    option and where it was set, rather than as a traceback when it is first opened."""
    if not path.exists():
        raise ConfigError(f"{where}: {path}: no such file or directory{hint}")


def _value(
    option: Option, flags: Mapping[str, Any], environ: Mapping[str, str], file: dict[str, Any]
) -> Any:
    """One option's parsed value, from the first layer that sets it."""
    if option.file_only:
        if option.name in file:
            return _file_value(option, file[option.name], str(flags.get("config")))
        return option.default
    flag_value = flags.get(option.name)
    if flag_value is not None:
        source, text = f"flag {option.flag}", str(flag_value)
    elif option.env in environ:
        source, text = f"environment variable {option.env}", environ[option.env]
    elif option.name in file:
        return _file_value(option, file[option.name], str(flags.get("config")))
    elif option.default is None or not isinstance(option.default, str):
        return option.default
    else:
        source, text = "default", option.default
    try:
        value = option.parse(text)
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    if isinstance(value, Path):  # relative to the current directory, as a shell user expects
        _check_exists(value, source)
    return value


def load_config(flags: Mapping[str, Any], environ: Mapping[str, str]) -> GatewayConfig:
    """Build the immutable :class:`GatewayConfig` from parsed flags and the environment."""
    config_path = flags.get("config") or environ.get("GATEWAY_CONFIG")
    file_values = _read_file(config_path) if config_path else {}
    flags = {**flags, "config": config_path}
    values = {option.name: _value(option, flags, environ, file_values) for option in OPTIONS}
    if flags.get("brownouts") is not None or "GATEWAY_BROWNOUTS" in environ:
        values["brownout"] = ()  # --brownouts / GATEWAY_BROWNOUTS replace both file forms
    config = GatewayConfig(**values)
    try:
        check_references(config.consumers, config.brownout, config.consumer_names)
    except EntryError as exc:
        raise ConfigError(f"config file {config_path}, {exc}") from exc
    if config.total_timeout < config.connect_timeout:
        raise ConfigError("total_timeout must not be shorter than connect_timeout")
    if not config.metrics_public and config.metrics_listen is None:
        raise ConfigError(
            "metrics_public is false but metrics_listen is not set: "
            "/metrics would be served nowhere"
        )
    _check_front_doors(config)
    check_budgets(config)
    try:
        config.deprecation  # noqa: B018 (building the policy checks the dates' order)
    except ValueError as exc:
        raise ConfigError(f"sunset_date/deprecation_date: {exc}") from exc
    return config


def check_budgets(config: GatewayConfig) -> None:
    """Each memory budget holds at least one body of the largest size it lets in. (A reload
    checks again: it keeps the running budgets, which need a restart, with new size caps.)"""
    if config.max_buffered_body_size < config.max_body_size:
        raise ConfigError(
            "max_buffered_body_size must not be smaller than max_body_size "
            "(a body of the largest accepted size could never be buffered)"
        )
    if config.max_buffered_response_size < config.max_response_size:
        raise ConfigError(
            "max_buffered_response_size must not be smaller than max_response_size "
            "(an answer of the largest accepted size could never be buffered)"
        )


def _check_front_doors(config: GatewayConfig) -> None:
    """Options that only work together are given together."""
    if (config.tls_cert is None) != (config.tls_key is None):
        raise ConfigError("tls_cert and tls_key must be given together")
    if config.tls_listen is not None and config.tls_cert is None:
        raise ConfigError("tls_listen needs tls_cert and tls_key (the certificate it serves)")
    if config.tls_listen is not None and config.tls_listen == config.listen:
        raise ConfigError("tls_listen must differ from listen (one port speaks one protocol)")
    if config.proxy_listen is not None and (
        config.proxy_ca_cert is None or config.proxy_ca_key is None
    ):
        raise ConfigError(
            "proxy_listen needs proxy_ca_cert and proxy_ca_key (make them with `gateway tls init`)"
        )


@dataclass(frozen=True, slots=True)
class ConfigSource:
    """Where the running config came from, to read it again: the command's flags and the
    process environment (fixed for the process's life) and the file they name."""

    flags: Mapping[str, Any]
    environ: Mapping[str, str]

    @property
    def path(self) -> Path | None:
        given = self.flags.get("config") or self.environ.get("GATEWAY_CONFIG")
        return Path(given) if given else None

    def load(self) -> GatewayConfig:
        return load_config(self.flags, self.environ)
