"""gateway.transport.factory: the transport ``upstream_transport`` names, with the config's
pool limits and TLS settings; a warning when verification is off."""

from __future__ import annotations

import logging

import pytest

from gateway.transport.aiohttp_client import AiohttpTransport
from gateway.transport.factory import TRANSPORTS, make_transport
from gateway.transport.lean import LeanTransport
from tests.conftest import make_config, pool_settings


@pytest.mark.parametrize(
    ("name", "kind"), [("lean", LeanTransport), ("aiohttp", AiohttpTransport)], ids=str
)
async def test_the_option_names_the_transport_with_the_configured_pool(
    name: str, kind: type
) -> None:
    config = make_config(
        upstream_transport=name, pool_size=9, pool_size_per_host=4, keepalive_timeout=3.5
    )
    transport = make_transport(config)
    try:
        assert isinstance(transport, kind)
        assert pool_settings(transport) == (9, 4, 3.5)
        assert not transport.closed
    finally:
        await transport.close()
    assert transport.closed


def test_lean_is_the_default_and_both_are_offered() -> None:
    assert TRANSPORTS == ("lean", "aiohttp")
    from gateway.config.settings import load_config

    assert load_config({}, {}).upstream_transport == "lean"


@pytest.mark.parametrize("name", TRANSPORTS)
async def test_switching_verification_off_warns_once_per_transport(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="gateway"):
        transport = make_transport(
            make_config(upstream_transport=name, insecure_skip_tls_verify=True)
        )
        await transport.close()
    warnings = [r.getMessage() for r in caplog.records if "TLS" in r.getMessage()]
    assert len(warnings) == 1 and "OFF" in warnings[0]
