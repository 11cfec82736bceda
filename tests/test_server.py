"""gateway.server: every private aiohttp name the gateway relies on still exists and still
means what it did. An aiohttp upgrade that breaks one fails here first, by name.

The behaviour each enables is tested where it shows: unparseable requests answered as Twilio
JSON in tests/test_bad_input.py, a DELETE never resent in tests/test_faults.py.
"""

from __future__ import annotations

import inspect
import re
import tomllib
from importlib.metadata import version

import aiohttp
from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from gateway.app import create_app
from gateway.server import (
    ERROR_BASE,
    GatewayRunner,
    _TwilioErrorProtocol,
    _TwilioErrorServer,
    disable_connection_retry,
)
from tests.conftest import make_config
from tests.paths import ROOT


def _pinned_range() -> tuple[tuple[int, int], tuple[int, int]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    [spec] = [dep for dep in project["dependencies"] if dep.startswith("aiohttp")]
    found = re.fullmatch(r"aiohttp>=(\d+)\.(\d+),<(\d+)\.(\d+)", spec)
    assert found is not None, f"pin aiohttp to minor versions: {spec}"
    a, b, c, d = (int(part) for part in found.groups())
    return (a, b), (c, d)


def test_the_installed_aiohttp_is_one_this_file_proved() -> None:
    (low, high) = _pinned_range()
    installed = tuple(int(part) for part in version("aiohttp").split(".")[:2])
    assert low <= installed < high, (version("aiohttp"), low, high)


def test_request_handler_keeps_its_manager_request_count_and_handle_error() -> None:
    assert {"_manager", "_request_count"} <= set(RequestHandler.__slots__)
    parameters = list(inspect.signature(RequestHandler.handle_error).parameters)
    assert parameters == ["self", "request", "status", "exc", "message"]
    source = inspect.getsource(RequestHandler)
    assert "self._request_count += 1" in source  # counts requests per connection
    assert "self.handle_error(" in source  # parse failures are answered through it


def test_web_server_builds_handlers_from_its_loop_and_kwargs() -> None:
    source = inspect.getsource(web.Server.__call__)
    assert "RequestHandler(self, loop=self._loop, **self._kwargs)" in source


def test_app_runner_makes_its_server_in_make_server() -> None:
    assert inspect.iscoroutinefunction(web.AppRunner._make_server)
    assert list(inspect.signature(web.AppRunner._make_server).parameters) == ["self"]


async def test_the_runner_swaps_in_the_twilio_error_handler_with_aiohttps_settings() -> None:
    app = create_app(make_config("http://127.0.0.1:9", public_base_url="https://gw.example"))
    runner = GatewayRunner(app, access_log=None, keepalive_timeout=7.5)
    await runner.setup()
    try:
        server = runner.server
        assert isinstance(server, _TwilioErrorServer)
        assert server.error_base is app[ERROR_BASE]
        assert app[ERROR_BASE].configured == "https://gw.example"
        ours = server()
        theirs = RequestHandler(server, loop=server._loop, **server._kwargs)
        assert isinstance(ours, _TwilioErrorProtocol)
        assert ours._manager is server
        assert (ours._keepalive_timeout, ours._request_count) == (7.5, 0)
        assert ours._keepalive_timeout == theirs._keepalive_timeout
    finally:
        await runner.cleanup()


async def test_client_session_still_gates_its_silent_retry_on_retry_connection() -> None:
    source = inspect.getsource(aiohttp.ClientSession._request)
    assert "self._retry_connection and method in IDEMPOTENT_METHODS" in source
    async with aiohttp.ClientSession() as session:
        assert session._retry_connection is True
        disable_connection_retry(session)
        assert session._retry_connection is False


def test_no_other_module_touches_aiohttps_private_names() -> None:
    private = ("._retry_connection", "._make_server", "._manager", "._request_count", "._kwargs")
    private += ("web_protocol", "http_exceptions", "logging._")
    offenders = {
        str(path.relative_to(ROOT)): found
        for path in sorted((ROOT / "gateway").rglob("*.py"))
        if path != ROOT / "gateway" / "server.py"
        and (found := [word for word in private if word in path.read_text("utf-8")])
    }
    assert offenders == {}
