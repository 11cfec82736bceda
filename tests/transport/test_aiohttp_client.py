"""gateway.transport.aiohttp_client: the reference transport keeps aiohttp as the gateway set
it up before the seam (no silent retry, the out-of-turn guard, no cookies, nothing decoded),
and its errors become the seam's failures."""

from __future__ import annotations

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey

from gateway.serving.server import _TurnTakingResponseHandler
from gateway.transport.aiohttp_client import AiohttpTransport, _no_connection, _translate

KEY = ConnectionKey("upstream.test", 443, True, True, None, None, None)


async def test_the_session_is_set_up_as_before_the_seam() -> None:
    transport = AiohttpTransport(pool_size=5, pool_size_per_host=2, keepalive_timeout=1.0, tls=True)
    try:
        session = transport.session
        assert session._retry_connection is False  # upstream.forward decides retries
        connector = session.connector
        assert connector is not None
        assert connector._factory.func is _TurnTakingResponseHandler  # type: ignore[attr-defined]
        assert isinstance(session.cookie_jar, aiohttp.DummyCookieJar)
    finally:
        await transport.close()


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (TimeoutError(), "timeout"),
        (aiohttp.ServerTimeoutError(), "timeout"),
        (aiohttp.ClientPayloadError("cut"), "truncated"),
        (aiohttp.ServerDisconnectedError(), "reset"),
        (aiohttp.ClientOSError(104, "reset by peer"), "reset"),
        (aiohttp.ClientError("other"), "bad_response"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else value,
)
def test_errors_after_the_connect_become_the_seams_failures(error: Exception, kind: str) -> None:
    assert _translate(error).kind == kind


def test_connect_errors_become_no_answer_of_their_kind() -> None:
    refused = aiohttp.ClientConnectorError(KEY, ConnectionRefusedError(111, "refused"))
    assert _no_connection(refused).error.kind == "refused"
    dns = aiohttp.ClientConnectorDNSError(KEY, OSError(-2, "Name or service not known"))
    wrapped = _no_connection(dns)
    assert wrapped.error.kind == "dns"
    assert (
        wrapped.log_line
        == "upstream host upstream.test does not resolve: Name or service not known"
    )
    tls = aiohttp.ClientConnectorCertificateError(KEY, ValueError("bad certificate"))
    assert _no_connection(tls).error.kind == "tls"
