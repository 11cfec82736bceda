"""gateway.serving.error_response: every GatewayError leaves as Twilio's error JSON, one way."""

from __future__ import annotations

import orjson

from gateway.errors import BadRequest, Brownout, GatewayBusy, RequestTimeout, RouteNotFound
from gateway.serving.error_response import CLOSE_AT_ONCE, render_error, render_raw


def test_twilio_shape_with_status_code_and_more_info() -> None:
    response = render_error(RouteNotFound("No such thing"), "http://gw.test")
    assert response.status == 404
    assert response.content_type == "application/json"
    assert response.body is not None
    assert orjson.loads(bytes(response.body)) == {  # type: ignore[arg-type]
        "code": 20404,
        "message": "No such thing",
        "more_info": "https://www.twilio.com/docs/errors/20404",
        "status": 404,
    }


def test_gateway_codes_point_at_the_gateways_own_page_and_status_set_when_raised() -> None:
    response = render_error(BadRequest("Too big", status=431), "https://gw.example/base")
    body = orjson.loads(bytes(response.body))  # type: ignore[arg-type]
    assert (response.status, body["status"], body["code"]) == (431, 431, 88007)
    assert body["more_info"] == "https://gw.example/base/errors/88007"


def test_the_errors_own_headers_then_the_extra_ones() -> None:
    error = Brownout("Off for now", headers={"Retry-After": "30"})
    extra = [("Deprecation", "@1718668800"), ("Link", "<a>"), ("Link", "<b>")]
    response = render_error(error, "http://gw.test", extra)
    assert response.headers["Retry-After"] == "30"
    assert response.headers["Deprecation"] == "@1718668800"
    assert response.headers.getall("Link") == ["<a>", "<b>"]
    assert error.headers == {"Retry-After": "30"}  # the error itself is left as raised


def test_an_error_that_closes_the_connection_does_so_without_reading_on() -> None:
    timed_out = render_error(RequestTimeout("Too slow"), "http://gw.test")
    assert timed_out.keep_alive is False and timed_out.get(CLOSE_AT_ONCE) is True
    refused = render_error(BadRequest("No", status=501, closes_connection=True), "http://gw.test")
    assert refused.keep_alive is False and refused.get(CLOSE_AT_ONCE) is True
    kept = render_error(BadRequest("No"), "http://gw.test")
    assert kept.keep_alive is None and kept.get(CLOSE_AT_ONCE) is None


def test_a_raw_response_for_a_connection_without_a_request() -> None:
    error = GatewayBusy("Full", headers={"Retry-After": "1"})
    raw = render_raw(error, "http://gw.test", "marketplace-gateway")
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "HTTP/1.1 503 Service Unavailable"
    assert set(lines[1:]) == {
        "Server: marketplace-gateway",
        "Content-Type: application/json",
        f"Content-Length: {len(body)}",
        "Retry-After: 1",
        "Connection: close",
    }
    assert orjson.loads(body) == {
        "code": 88006,
        "message": "Full",
        "more_info": "http://gw.test/errors/88006",
        "status": 503,
    }
