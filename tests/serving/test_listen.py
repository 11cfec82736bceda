"""gateway.serving.listen: opening a listening socket, with one sentence when it cannot be
opened."""

from __future__ import annotations

import errno
import socket

import pytest
from aiohttp import web

from gateway.serving.listen import ListenError, address, check_bindable, listen_error
from gateway.serving.site import start_site


def test_address_brackets_ipv6() -> None:
    assert address("127.0.0.1", 80) == "127.0.0.1:80"
    assert address("::1", 8080) == "[::1]:8080"


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (OSError(errno.EADDRINUSE, "x"), "the address is already in use"),
        (OSError(errno.EACCES, "x"), "permission denied (ports below 1024 need privileges)"),
        (OSError(errno.EADDRNOTAVAIL, "x"), "the address is not one of this machine's"),
        (socket.gaierror(socket.EAI_NONAME, "x"), "the host name does not resolve"),
        (OSError(errno.EMFILE, "Too many open files"), "too many open files"),
    ],
)
def test_listen_error_says_why_in_words(exc: OSError, reason: str) -> None:
    assert str(listen_error("::1", 80, exc)) == f"cannot listen on [::1]:80: {reason}"


async def test_start_site_returns_the_port_really_bound(busy_port: int) -> None:
    runner = web.AppRunner(web.Application())
    await runner.setup()
    try:
        port = await start_site(runner, "127.0.0.1", 0)
        assert port > 0
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
        with pytest.raises(ListenError) as caught:
            await start_site(runner, "127.0.0.1", busy_port)
        assert str(caught.value) == (
            f"cannot listen on 127.0.0.1:{busy_port}: the address is already in use"
        )
    finally:
        await runner.cleanup()


def test_check_bindable(busy_port: int) -> None:
    check_bindable("127.0.0.1", 0)
    with pytest.raises(ListenError, match="already in use"):
        check_bindable("127.0.0.1", busy_port)
