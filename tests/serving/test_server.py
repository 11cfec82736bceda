"""gateway.serving.server: every private aiohttp name the gateway relies on still exists and still
means what it did. An aiohttp upgrade that breaks one fails here first, by name.

The behaviour each enables is tested where it shows: unparseable requests answered as Twilio
JSON in tests/test_bad_input.py, a DELETE never resent in tests/test_faults.py, the client
limits in tests/serving/test_client_limits.py, HTTP/0.9 and HTTP/2.0 answered 505 in
tests/serving/test_http_checks.py, a late upstream response never served in tests/test_upstream.py.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import tomllib
from importlib.metadata import version

import aiohttp
from aiohttp import _http_parser, client_proto, connector, http_parser, web
from aiohttp.base_protocol import BaseProtocol
from aiohttp.client_proto import ResponseHandler
from aiohttp.http import HttpVersion, HttpVersion11
from aiohttp.streams import DataQueue
from aiohttp.web_protocol import RequestHandler

from gateway.app import create_app
from gateway.serving.client_limits import CLIENT_LIMITS
from gateway.serving.server import (
    ERROR_BASE,
    GatewayRunner,
    _TurnTakingResponseHandler,
    _TwilioErrorProtocol,
    _TwilioErrorServer,
    _versioned_request,
    connection_handler,
    disable_connection_retry,
    discard_connections_speaking_out_of_turn,
    register_site,
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
    config = make_config("http://127.0.0.1:9", public_base_url="https://gw.example")
    app = create_app(config)
    runner = GatewayRunner(app, access_log=None, keepalive_timeout=7.5)
    await runner.setup()
    try:
        server = runner.server
        assert isinstance(server, _TwilioErrorServer)
        assert server.error_base is app[ERROR_BASE]
        assert app[ERROR_BASE].configured == "https://gw.example"
        assert server.limits == app[CLIENT_LIMITS]
        assert server.limits.header_timeout == config.client_header_timeout
        assert server.request_factory.func is _versioned_request  # type: ignore[attr-defined]
        ours = server()
        theirs = RequestHandler(server, loop=server._loop, **server._kwargs)
        assert isinstance(ours, _TwilioErrorProtocol)
        assert ours._manager is server
        # The app's handler_args win over the runner's: aiohttp's idle timer is only the
        # backstop of gateway.serving.server's own.
        backstop = config.client_keepalive_timeout + config.client_header_timeout
        assert (ours._keepalive_timeout, ours._request_count) == (backstop, 0)
        assert ours._keepalive_timeout == theirs._keepalive_timeout
        assert ours._request_factory is server.request_factory  # read when a handler is made
    finally:
        await runner.cleanup()


def test_request_handler_still_offers_the_hooks_the_client_limits_use() -> None:
    source = inspect.getsource(RequestHandler)
    # Every parsed message is answered through finish_response, after the response was written.
    assert list(inspect.signature(RequestHandler.finish_response).parameters) == [
        "self",
        "request",
        "resp",
        "start_time",
    ]
    assert source.count("await self.finish_response(request, resp, start_time)") >= 3
    assert "await resp.write_eof()" in inspect.getsource(RequestHandler.finish_response)
    # An unread body is read (to be discarded) only when the handler was not force-closed.
    assert "if not self._force_close and lingering_time" in source
    # The request being handled is kept while its handler runs.
    assert "_current_request" in RequestHandler.__slots__
    assert "self._current_request = request" in inspect.getsource(RequestHandler._handle_request)
    # The manager's request factory is read once, when the handler is made.
    init = inspect.getsource(RequestHandler.__init__)
    assert "self._request_factory: _RequestFactory | None = manager.request_factory" in init
    # Flow control reaches the protocol through pause_writing/resume_writing.
    assert RequestHandler.pause_writing is BaseProtocol.pause_writing
    assert RequestHandler.resume_writing is BaseProtocol.resume_writing
    assert isinstance(inspect.getattr_static(BaseProtocol, "writing_paused"), property)


def test_both_parsers_request_messages_can_be_rewritten_to_http_1_1() -> None:
    args = ("GET", "/", HttpVersion(2, 0), {}, (), False, None, False, False, None)
    for message_class in (http_parser.RawRequestMessage, _http_parser.RawRequestMessage):
        message = message_class(*args)
        replaced = message._replace(version=HttpVersion11, should_close=True)
        assert (replaced.version, replaced.should_close, replaced.method) == (
            HttpVersion11,
            True,
            "GET",
        )


def test_connector_makes_every_connection_with_its_factory() -> None:
    init = inspect.getsource(connector.BaseConnector.__init__)
    assert "self._factory = functools.partial(ResponseHandler, loop=loop)" in init
    direct = inspect.getsource(connector.TCPConnector._create_direct_connection)
    assert "self._factory" in direct


def test_response_handler_hooks_used_to_refuse_responses_out_of_turn() -> None:
    request_source = inspect.getsource(aiohttp.ClientSession._request)
    connect_at = request_source.index("conn = await self._connector.connect(")
    params_at = request_source.index("conn.protocol.set_response_params(")
    send_at = request_source.index("resp = await req.send(conn)")
    assert connect_at < params_at < send_at  # set for each request, before it is written
    received = inspect.getsource(ResponseHandler.data_received)
    assert "self.feed_data((message, payload), 0)" in received
    assert "self.feed_data((message, EMPTY_PAYLOAD), 0)" in received
    assert list(inspect.signature(DataQueue.feed_data).parameters) == ["self", "data", "size"]
    assert "self._buffer" in inspect.getsource(ResponseHandler.should_close.fget)  # type: ignore[attr-defined]
    assert client_proto.ResponseHandler is ResponseHandler


async def test_the_connector_factory_is_replaced_by_the_turn_taking_handler() -> None:
    tcp = aiohttp.TCPConnector()
    try:
        discard_connections_speaking_out_of_turn(tcp)
        made = tcp._factory()
        assert isinstance(made, _TurnTakingResponseHandler)
    finally:
        await tcp.close()


async def test_client_session_still_gates_its_silent_retry_on_retry_connection() -> None:
    source = inspect.getsource(aiohttp.ClientSession._request)
    assert "self._retry_connection and method in IDEMPOTENT_METHODS" in source
    async with aiohttp.ClientSession() as session:
        assert session._retry_connection is True
        disable_connection_retry(session)
        assert session._retry_connection is False


def test_a_site_hands_its_asyncio_server_to_aiohttp_in_server() -> None:
    # register_site sets BaseSite._server, as TCPSite.start does: the runner lists the site's
    # addresses from it, and BaseSite.stop closes it.
    assert "_server" in web.BaseSite.__slots__
    assert "self._server = await loop.create_server(" in inspect.getsource(web.TCPSite.start)
    assert "server = site._server" in inspect.getsource(web.BaseRunner.addresses.fget)  # type: ignore[attr-defined]
    assert "self._server.close()" in inspect.getsource(web.BaseSite.stop)
    assert "self._runner._reg_site(self)" in inspect.getsource(web.BaseSite.start)


async def test_register_site_and_connection_handler() -> None:
    app = create_app(make_config("http://127.0.0.1:9"))
    runner = GatewayRunner(app, access_log=None)
    await runner.setup()
    try:
        assert runner.server is not None
        lost: list[str] = []
        handler = connection_handler(runner.server, lambda: lost.append("slot"))
        assert isinstance(handler, _TwilioErrorProtocol) and handler._on_lost is not None
        assert isinstance(connection_handler(runner.server), _TwilioErrorProtocol)

        class Site(web.BaseSite):
            @property
            def name(self) -> str:
                return "test"

            async def start(self) -> None:
                await super().start()
                listener = await asyncio.get_running_loop().create_server(
                    asyncio.Protocol, "127.0.0.1", 0
                )
                register_site(self, listener)

        site = Site(runner)
        await site.start()
        [(host, port)] = [address[:2] for address in runner.addresses]
        assert host == "127.0.0.1" and port > 0
        await site.stop()
        assert runner.addresses == []
    finally:
        await runner.cleanup()


def test_no_other_module_touches_aiohttps_private_names() -> None:
    private = ("._retry_connection", "._make_server", "._manager", "._request_count", "._kwargs")
    private += ("web_protocol", "http_exceptions", "logging._", "client_proto", "._factory")
    private += ("request_factory", "._replace", "._current_request", "site._server", "._on_lost")
    offenders = {
        str(path.relative_to(ROOT)): found
        for path in sorted((ROOT / "gateway").rglob("*.py"))
        if path != ROOT / "gateway" / "serving" / "server.py"
        and (found := [word for word in private if word in path.read_text("utf-8")])
    }
    assert offenders == {}


def test_the_subclasses_own_names_shadow_nothing_of_aiohttps() -> None:
    ours = set(_TwilioErrorProtocol.__slots__) | {
        "_arm",
        "_disarm",
        "_expire",
        "_between",
        "_watch_send",
        "_check_send",
    }
    assert not ours & set(dir(RequestHandler))
    client_side = {"_awaiting", "_answered", "_out_of_turn"}
    assert not client_side & set(dir(ResponseHandler))
    server_side = {"error_base", "limits", "configure"}
    assert not (server_side | {"header_timeout_response"}) & set(dir(web.Server))
