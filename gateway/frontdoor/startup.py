"""Building the front doors from the config at start-up.

:func:`prepare` reads and checks every certificate and key once, raising ``ConfigError`` with
the option at fault, so ``gateway serve`` fails before any worker starts. It imports no metric
declarations (the ``--workers`` supervisor must write no metric files of its own). It is run
more than once per start (by the CLI, then by each process that serves), and only the first
run logs the warnings about the files (``warn``), so that each is logged once.
"""

from __future__ import annotations

import logging
import ssl
import stat
from dataclasses import dataclass
from pathlib import Path

from gateway.config.settings import ConfigError, GatewayConfig
from gateway.frontdoor.ca_folder import load_ca_beside, one_level_warning
from gateway.frontdoor.certificates import CertificateAuthority, CertificateError
from gateway.frontdoor.leaves import LeafContexts
from gateway.frontdoor.settings import HANDSHAKE_TIMEOUT, ProxySettings
from gateway.frontdoor.targets import Policy
from gateway.frontdoor.tls_context import listener_context

log = logging.getLogger("gateway")


@dataclass(frozen=True, slots=True)
class FrontDoors:
    """The HTTPS listener's context (None: no HTTPS; the main listener's, or with ``tls_listen``
    the second listener's) and the proxy's settings (None: off)."""

    tls: ssl.SSLContext | None
    proxy: ProxySettings | None


def main_base(config: GatewayConfig) -> str:
    """The main listener's base URL (``public_base_url`` when set)."""
    scheme = "https" if config.main_is_tls else "http"
    return config.public_base_url or f"{scheme}://{config.listen_host}:{config.listen_port}"


def _read(path: Path, option: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{option} {path}: {exc.strerror or exc}") from exc


def load_proxy_ca(cert_file: Path, key_file: Path, *, warn: bool = True) -> CertificateAuthority:
    """The interception CA from its files (``intermediate.pem`` read beside ``cert_file`` when
    the key belongs to it); ``ConfigError`` naming the option at fault."""
    cert_pem = _read(cert_file, "proxy_ca_cert")
    key_pem = _read(key_file, "proxy_ca_key")
    try:
        ca = load_ca_beside(cert_file, cert_pem, key_pem)
    except CertificateError as exc:
        raise ConfigError(f"proxy_ca_cert/proxy_ca_key: {exc}") from exc
    if warn:
        if key_file.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            log.warning("%s can be read by other users; chmod 600 it", key_file)
        if ca.one_level:
            log.warning("%s", one_level_warning(cert_file))
    return ca


def prepare(config: GatewayConfig, *, warn: bool = True) -> FrontDoors:
    """Load the certificates the config names; raise ``ConfigError`` when one is unusable.
    ``warn=False``: the files were checked, and their warnings logged, earlier in this
    start (by the CLI before it forked workers or served)."""
    tls = None
    if config.tls_cert is not None and config.tls_key is not None:
        try:
            tls = listener_context(config.tls_cert, config.tls_key)
        except CertificateError as exc:
            raise ConfigError(f"tls_cert/tls_key: {exc}") from exc
    proxy = None
    if config.proxy_listen is not None:
        assert config.proxy_ca_cert is not None and config.proxy_ca_key is not None
        ca = load_proxy_ca(config.proxy_ca_cert, config.proxy_ca_key, warn=warn)
        leaves = LeafContexts(ca)
        try:  # mint each host's leaf now: fails here rather than at a client's first CONNECT
            for host in ca.hosts:
                leaves.context_for(host)
        except CertificateError as exc:
            raise ConfigError(f"proxy_listen: {exc}") from exc
        proxy = ProxySettings(
            policy=Policy.of(ca.hosts, config.proxy_tunnel_hosts),
            leaves=leaves,
            connect_timeout=config.connect_timeout,
            idle_timeout=config.proxy_tunnel_idle_timeout,
            total_timeout=config.proxy_tunnel_total_timeout,
            max_tunnels=config.proxy_max_tunnels,
            error_base=main_base(config),
            handshake_timeout=min(HANDSHAKE_TIMEOUT, config.client_header_timeout),
            allowed_networks=config.proxy_tunnel_allow_networks,
        )
    return FrontDoors(tls, proxy)
