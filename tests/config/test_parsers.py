"""gateway.config.parsers: every option's text form to its value, and a clear message otherwise."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gateway.config import parsers

GOOD = [
    (parsers.parse_bool, " Yes ", True),
    (parsers.parse_bool, "off", False),
    (parsers.parse_listen, "[::1]:8080", ("::1", 8080)),
    (parsers.parse_listen, "0.0.0.0:0", ("0.0.0.0", 0)),
    (parsers.parse_http_url, "https://gw.example/base/", "https://gw.example/base"),
    (parsers.parse_url_list, "http://a.b, https://c.d/", ("http://a.b", "https://c.d")),
    (parsers.parse_positive_float, "2.5", 2.5),
    (parsers.parse_size, "512K", 512 * 1024),
    (parsers.parse_size, "1mb", 1024**2),
    (parsers.parse_count, "0", 0),
    (parsers.parse_positive_int, "7", 7),
    (parsers.parse_log_level, "WARNING", "warning"),
    (parsers.parse_upstream_transport, " Lean", "lean"),
    (parsers.parse_upstream_transport, "aiohttp", "aiohttp"),
    (parsers.parse_workers, "64", 64),
    (parsers.parse_hops, "2", 2),
    (parsers.parse_forwarded_header, "Forwarded", "forwarded"),
    (parsers.parse_instant_text, " 2024-12-01 ", "2024-12-01"),
    (parsers.parse_optional_url, "", None),
    (parsers.parse_optional_listen, " ", None),
    (parsers.parse_optional_path, "", None),
    (parsers.parse_path, "~/rules", Path("~/rules").expanduser()),
]

BAD = [
    (parsers.parse_bool, "maybe", "expected true or false"),
    (parsers.parse_listen, "8080", "expected HOST:PORT"),
    (parsers.parse_listen, "host:99999", "port out of range"),
    (parsers.parse_http_url, "ftp://x", "expected an absolute http(s) URL"),
    (parsers.parse_http_url, "https://x/?a=1", "must not carry a query"),
    (parsers.parse_positive_float, "nan", "expected a positive number"),
    (parsers.parse_positive_float, "soon", "expected a positive number"),
    (parsers.parse_size, "lots", "expected a size like 512K or 1M"),
    (parsers.parse_size, "0", "expected a size like 512K or 1M"),
    (parsers.parse_count, "-1", "expected a count >= 0"),
    (parsers.parse_count, "\u0663", "expected a count >= 0"),  # Arabic-Indic digit three
    (parsers.parse_workers, "65", "expected 1 to 64 workers"),
    (parsers.parse_hops, "0", "from 1 to 16"),
    (parsers.parse_forwarded_header, "x-real-ip", "expected x-forwarded or forwarded"),
    (parsers.parse_log_level, "trace", "expected debug, info, warning or error"),
    (parsers.parse_upstream_transport, "httpx", "expected lean or aiohttp"),
    (parsers.parse_instant_text, "tomorrow", "expected an ISO 8601 date or date-time"),
]


@pytest.mark.parametrize(("parse", "text", "expected"), GOOD)
def test_parses(parse: Any, text: str, expected: Any) -> None:
    assert parse(text) == expected


@pytest.mark.parametrize(("parse", "text", "message"), BAD)
def test_refuses_with_a_message_saying_what_was_expected(
    parse: Any, text: str, message: str
) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(text)
