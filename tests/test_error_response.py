"""gateway.error_response: every GatewayError leaves as Twilio's error JSON, one way."""

from __future__ import annotations

import orjson

from gateway.error_response import render_error
from gateway.errors import BadRequest, Brownout, RouteNotFound


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
