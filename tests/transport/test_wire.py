"""gateway.transport.wire: the origin of an upstream URL and the request head, byte for byte."""

from __future__ import annotations

import pytest

from gateway.transport.wire import Origin, request_head, split_url


@pytest.mark.parametrize(
    ("origin", "tls", "host", "port", "host_header"),
    [
        ("http://127.0.0.1:18081", False, "127.0.0.1", 18081, "127.0.0.1:18081"),
        ("http://upstream.test", False, "upstream.test", 80, "upstream.test"),
        (
            "https://marketplace.twilio.com",
            True,
            "marketplace.twilio.com",
            443,
            "marketplace.twilio.com",
        ),
        ("https://m.test:443", True, "m.test", 443, "m.test"),
        ("https://m.test:8443", True, "m.test", 8443, "m.test:8443"),
        ("http://[::1]:9000", False, "::1", 9000, "[::1]:9000"),
    ],
)
def test_an_origin_names_its_host_port_and_host_header(
    origin: str, tls: bool, host: str, port: int, host_header: str
) -> None:
    assert Origin.parse(origin) == Origin(tls, host, port, host_header)


@pytest.mark.parametrize("origin", ["ftp://x.test", "http://", "http://user:pw@x.test"])
def test_anything_but_a_plain_http_origin_is_refused(origin: str) -> None:
    with pytest.raises(ValueError):
        Origin.parse(origin)


@pytest.mark.parametrize(
    ("url", "origin", "target"),
    [
        ("http://h:1/v1/A?PageToken=PT%3D%3D", "http://h:1", "/v1/A?PageToken=PT%3D%3D"),
        ("https://h/v1/A/XE1", "https://h", "/v1/A/XE1"),
        ("http://h:1", "http://h:1", "/"),
        ("http://h:1?q=/a", "http://h:1", "/?q=/a"),
        ("http://h/a/b?c=d/e", "http://h", "/a/b?c=d/e"),
    ],
)
def test_a_url_splits_into_origin_and_target_as_encoded(url: str, origin: str, target: str) -> None:
    assert split_url(url) == (origin, target)


def test_a_relative_url_is_refused() -> None:
    with pytest.raises(ValueError):
        split_url("/v1/AvailableAddOns")


def test_a_get_carries_the_headers_in_order_and_no_framing() -> None:
    head = request_head(
        "GET",
        "/v1/AvailableAddOns?PageSize=5",
        "upstream.test:8080",
        [("Authorization", "Basic eDp5"), ("Accept-Encoding", "identity"), ("Via", "1.1 gw")],
        0,
    )
    assert head == (
        b"GET /v1/AvailableAddOns?PageSize=5 HTTP/1.1\r\n"
        b"Host: upstream.test:8080\r\n"
        b"Authorization: Basic eDp5\r\n"
        b"Accept-Encoding: identity\r\n"
        b"Via: 1.1 gw\r\n"
        b"\r\n"
    )


@pytest.mark.parametrize(
    ("method", "size", "framing"),
    [
        ("POST", 12, b"Content-Length: 12\r\n"),
        ("POST", 0, b"Content-Length: 0\r\n"),  # a POST always says how long its body is
        ("DELETE", 0, b""),
        ("DELETE", 3, b"Content-Length: 3\r\n"),
    ],
)
def test_a_body_is_framed_by_its_length(method: str, size: int, framing: bytes) -> None:
    head = request_head(method, "/v1/X", "h", [], size)
    assert head == f"{method} /v1/X HTTP/1.1\r\nHost: h\r\n".encode() + framing + b"\r\n"


def test_header_values_go_out_as_utf8_as_aiohttp_sends_them() -> None:
    head = request_head("GET", "/", "h", [("Authorization", "Basic caf\u00e9")], 0)
    assert b"Authorization: Basic caf\xc3\xa9\r\n" in head
