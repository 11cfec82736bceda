"""The access log: one JSON line per request, secrets never in it."""

from __future__ import annotations

import base64
import logging

import orjson
import pytest

from tests.conftest import GatewayFactory
from tests.fake_upstream import FakeUpstream, sid
from tests.processes import python_output

SECRET = "tok_7f3e9c1d2b4a"


@pytest.mark.upstream
async def test_one_json_line_per_request_without_secrets(
    fake_upstream: FakeUpstream, gateway_client: GatewayFactory, caplog: pytest.LogCaptureFixture
) -> None:
    client = await gateway_client(fake_upstream.url)
    account = "AC" + "9" * 32
    auth = "Basic " + base64.b64encode(f"{account}:{SECRET}".encode()).decode()
    with caplog.at_level(logging.INFO, logger="gateway.access"):
        await client.get(
            f"/marketplace/InstalledAddOns/{sid('XE', 1)}?PageToken=x",
            headers={"Authorization": auth, "Cookie": f"session={SECRET}"},
        )
        await client.get("/nowhere", headers={"Authorization": f"Bearer {SECRET}"})
    lines = [r.getMessage() for r in caplog.records if r.name == "gateway.access"]
    assert len(lines) == 2
    first, second = (orjson.loads(line) for line in lines)
    assert first["route"] == "preview_installed_add_on"
    assert first["status"] == 200 and first["upstream_status"] == 200
    assert first["consumer"] == account and first["deprecated"] is True
    assert first["path"] == f"/marketplace/InstalledAddOns/{sid('XE', 1)}"
    assert first["latency_ms"] >= 0
    assert second["route"] == "unmatched" and second["status"] == 404
    assert second["consumer"] == "bearer"
    for line in lines:
        assert SECRET not in line and "Basic" not in line and "Authorization" not in line


@pytest.mark.upstream
async def test_access_log_switch(
    fake_upstream: FakeUpstream, gateway_client: GatewayFactory, caplog: pytest.LogCaptureFixture
) -> None:
    client = await gateway_client(fake_upstream.url, access_log=False)
    with caplog.at_level(logging.DEBUG, logger="gateway.access"):
        await client.get("/v1/AvailableAddOns")
    assert [r for r in caplog.records if r.name == "gateway.access"] == []


@pytest.mark.upstream
async def test_serve_writes_lines_straight_to_its_stream(
    fake_upstream: FakeUpstream, gateway_client: GatewayFactory
) -> None:
    import io

    from gateway.telemetry.access_log import ACCESS_LOGGER, LineHandler

    stream = io.StringIO()
    logger = logging.getLogger(ACCESS_LOGGER)
    handler = LineHandler(stream)
    saved = (logger.handlers[:], logger.propagate, logger.level)
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    try:
        client = await gateway_client(fake_upstream.url)
        await client.get(f"/marketplace/InstalledAddOns/{sid('XE', 3)}")
        await client.get("/v1/AvailableAddOns")
    finally:
        logger.handlers[:], logger.propagate = saved[0], saved[1]
        logger.setLevel(saved[2])
    lines = stream.getvalue().splitlines()
    assert [orjson.loads(line)["route"] for line in lines] == [
        "preview_installed_add_on",
        "v1_available_add_ons",
    ]


def test_every_log_record_is_one_line_without_control_characters() -> None:
    from gateway.telemetry.access_log import OneLineFormatter

    formatter = OneLineFormatter("%(levelname)s %(message)s")
    try:
        raise ValueError("bad path /x\r\nX-Injected: 1\x1b[31m")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "gateway",
            logging.ERROR,
            __file__,
            1,
            "failed on %s",
            ("/a\nb\x1b]0;t\x07",),
            sys.exc_info(),
        )
    line = formatter.format(record)
    assert "\n" not in line and "\r" not in line and "\x1b" not in line and "\x07" not in line
    assert line.startswith("ERROR failed on /a\\nb\\x1b]0;t\\x07")
    assert "Traceback (most recent call last):\\n" in line
    assert "X-Injected" in line  # kept, but on the same line


def test_serve_installs_the_one_line_formatter() -> None:
    code = (
        "import logging;"
        "from gateway.telemetry.access_log import configure_logging, OneLineFormatter;"
        "configure_logging('info');"
        "handlers = logging.getLogger().handlers;"
        "print(all(isinstance(h.formatter, OneLineFormatter) for h in handlers))"
    )
    assert python_output(code) == "True\n"


class _CountingStream:
    def __init__(self) -> None:
        self.writes: list[str] = []
        self.flushes = 0

    def write(self, text: str) -> None:
        self.writes.append(text)

    def flush(self) -> None:
        self.flushes += 1


async def test_lines_of_one_loop_pass_are_written_together_and_none_is_lost() -> None:
    import asyncio

    from gateway.telemetry.access_log import LineHandler

    stream = _CountingStream()
    handler = LineHandler(stream)
    for number in range(3):
        handler.write_line(f'{{"n":{number}}}\n')
    assert stream.writes == []  # gathered until the loop's pass ends
    await asyncio.sleep(0)
    assert stream.writes == ['{"n":0}\n{"n":1}\n{"n":2}\n'] and stream.flushes == 1
    handler.write_line('{"n":3}\n')
    handler.flush()  # logging's shutdown flush: nothing waits for the loop
    assert stream.writes[-1] == '{"n":3}\n'
    await asyncio.sleep(0)
    assert len(stream.writes) == 2  # the scheduled pass found nothing left


def test_without_a_running_loop_a_line_is_written_at_once() -> None:
    from gateway.telemetry.access_log import LineHandler

    stream = _CountingStream()
    LineHandler(stream).write_line("x\n")
    assert stream.writes == ["x\n"] and stream.flushes == 1
