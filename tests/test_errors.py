"""gateway.errors: the error tree and Twilio's error JSON (pure)."""

from __future__ import annotations

import orjson
import pytest

from gateway import errors
from gateway.errors import GATEWAY_CODES, GatewayError, error_body, more_info_url

TREE = [
    (errors.RouteNotFound, 404, 20404),
    (errors.MethodNotAllowed, 405, 20004),
    (errors.BadRequest, 400, 88007),
    (errors.RequestTooLarge, 413, 88004),
    (errors.RequestTimeout, 408, 88008),
    (errors.GatewayBusy, 503, 88006),
    (errors.UpstreamUnavailable, 502, 88001),
    (errors.UpstreamBadResponse, 502, 88003),
    (errors.UpstreamResponseTooLarge, 502, 88005),
    (errors.UpstreamTimeout, 504, 88002),
    (errors.Brownout, 410, 88010),
    (errors.ProxyRefused, 403, 88011),
    (errors.ProxyBusy, 503, 88012),
    (errors.CutOff, 410, 88013),
    (errors.InternalError, 500, 88099),
]


@pytest.mark.parametrize(("cls", "status", "code"), TREE, ids=[row[0].__name__ for row in TREE])
def test_each_error_has_its_status_and_code(
    cls: type[GatewayError], status: int, code: int
) -> None:
    error = cls("it broke", headers={"Retry-After": "60"}, kind="timeout")
    assert isinstance(error, GatewayError)
    assert (error.status, error.code, error.message, error.kind) == (
        status,
        code,
        "it broke",
        "timeout",
    )
    assert dict(error.headers) == {"Retry-After": "60"}
    assert str(error) == "it broke"
    if code >= 60000:
        assert code in GATEWAY_CODES


def test_every_gateway_error_class_is_in_the_tree() -> None:
    classes = {
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, GatewayError) and value is not GatewayError
    }
    assert classes == {row[0] for row in TREE}


def test_every_documented_gateway_code_is_raised_by_some_class() -> None:
    assert set(GATEWAY_CODES) == {code for _, _, code in TREE if code >= 60000}


def test_defaults() -> None:
    error = GatewayError("x")
    assert (error.status, error.code, dict(error.headers), error.kind) == (500, 88099, {}, "")


def test_more_info_points_at_twilio_or_the_gateway() -> None:
    assert more_info_url(20404, "https://gw.example") == "https://www.twilio.com/docs/errors/20404"
    assert more_info_url(88002, "https://gw.example/") == "https://gw.example/errors/88002"
    assert more_info_url(88002, "https://gw.example/prefix") == (
        "https://gw.example/prefix/errors/88002"
    )


def test_error_body_is_twilio_shaped_and_nothing_more() -> None:
    body = error_body(404, 20404, 'The requested resource "/x" was not found', "http://gw.test")
    assert orjson.loads(body) == {
        "code": 20404,
        "message": 'The requested resource "/x" was not found',
        "more_info": "https://www.twilio.com/docs/errors/20404",
        "status": 404,
    }
    # twilio-python 9.10+ switches parsers when "type" and "title" appear (api-mapping G4).
    assert b'"type"' not in body and b'"title"' not in body


def test_error_body_escapes_hostile_messages() -> None:
    body = error_body(400, 88007, 'bad "\r\n</script>', "http://gw.test")
    assert orjson.loads(body)["message"] == 'bad "\r\n</script>'
    assert b"\r" not in body and b"\n" not in body
