"""gateway.rewrite.response_rewrite: upstream URLs in JSON bodies mapped back to the gateway
(pure)."""

from __future__ import annotations

import json
from typing import Any

import orjson
import pytest

from gateway.config.rules import load_rules
from gateway.errors import UpstreamBadResponse
from gateway.rewrite.response_rewrite import LinkRewriter, is_json, rewrite_body

RULES = load_rules()
PREVIEW_RULES = [r for r in RULES.rules if r.deprecated and r.upstream == "marketplace"]
V1_ORIGIN = "https://marketplace.twilio.com"
PUBLIC = "https://gw.example.com"

pytestmark = pytest.mark.usefixtures("rewrite_path")  # every test on each way to the answer


def preview() -> LinkRewriter:
    """Deprecated (preview) routes: v1 paths map back to /marketplace paths."""
    return LinkRewriter.build((V1_ORIGIN,), PREVIEW_RULES)


def pass_v1() -> LinkRewriter:
    """Pass-through v1 routes: the path is kept, only the origin changes."""
    return LinkRewriter.build((V1_ORIGIN,), [])


def pass_api() -> LinkRewriter:
    """The 2010 API, passed through."""
    return LinkRewriter.build(("https://api.twilio.com",), [])


XE = "XE" + "0123456789abcdef" * 2
XB = "XB" + "00112233445566778899aabbccddeeff"
XF = "XF" + "fedcba9876543210" * 2
V1 = f"{V1_ORIGIN}/v1"
GW = f"{PUBLIC}/marketplace"

CONFIGURATION = {
    "callback_url": f"{V1}/InstalledAddOns/{XE}",
    "url": f"{V1}/InstalledAddOns/{XE}",
    "buttons": [{"url": f"{V1}/AvailableAddOns/{XB}", "label": "Open"}],
    "nested": {"links": {"self": f"{V1}/InstalledAddOns"}, "uri": f"{V1}/x"},
}
SCHEMA = {
    "type": "object",
    "properties": {"url": {"type": "string", "default": f"{V1}/AvailableAddOns"}},
}


def rewrite(document: Any, rewriter: LinkRewriter | None = None, public: str = PUBLIC) -> Any:
    """The rewritten document, decoded (the original when the body was left unchanged)."""
    body = orjson.dumps(document)
    out = rewrite_body(body, "application/json", rewriter or preview(), public)
    return json.loads(body if out is None else out)


def installed_add_on(base: str = V1) -> dict[str, Any]:
    return {
        "sid": XE,
        "account_sid": "AC" + "0" * 32,
        "friendly_name": "VoiceBase High Accuracy Transcription",
        "description": "Automatic Transcription and Keyword Extract...",
        "configuration": CONFIGURATION,
        "unique_name": "voicebase_high_accuracy_transcription",
        "date_created": "2016-04-07T23:52:28Z",
        "date_updated": "2016-04-07T23:52:28Z",
        "url": f"{base}/InstalledAddOns/{XE}",
        "links": {
            "extensions": f"{base}/InstalledAddOns/{XE}/Extensions",
            "available_add_on": f"{base}/AvailableAddOns/{XB}",
            "usage": f"{base}/InstalledAddOns/{XE}/Usage",
        },
    }


def test_record_urls_map_to_legacy_paths_and_customer_data_stays() -> None:
    out = rewrite(installed_add_on())
    assert out == {
        **installed_add_on(),
        "url": f"{GW}/InstalledAddOns/{XE}",
        "links": {
            "extensions": f"{GW}/InstalledAddOns/{XE}/Extensions",
            "available_add_on": f"{GW}/AvailableAddOns/{XB}",
            # no preview route exists for Usage: it leads back through the gateway's v1 route
            "usage": f"{PUBLIC}/v1/InstalledAddOns/{XE}/Usage",
        },
    }
    assert out["configuration"] == CONFIGURATION


def test_available_add_on_schema_and_extension_url() -> None:
    document = {
        "sid": XB,
        "configuration_schema": SCHEMA,
        "url": f"{V1}/AvailableAddOns/{XB}/Extensions/{XF}",
        "links": {"extensions": f"{V1}/AvailableAddOns/{XB}/Extensions"},
    }
    assert rewrite(document) == {
        "sid": XB,
        "configuration_schema": SCHEMA,
        "url": f"{GW}/AvailableAddOns/{XB}/Extensions/{XF}",
        "links": {"extensions": f"{GW}/AvailableAddOns/{XB}/Extensions"},
    }


def test_list_page_meta_urls_keep_their_query_byte_for_byte() -> None:
    token = "PT%25ab%2Bc%2F%3D%3D=="  # "%" escapes and "=" padding
    page = {
        "installed_add_ons": [installed_add_on(), installed_add_on()],
        "meta": {
            "page": 1,
            "page_size": 2,
            "first_page_url": f"{V1}/InstalledAddOns?PageSize=2&Page=0",
            "previous_page_url": f"{V1}/InstalledAddOns?Page=0&PageSize=2&PageToken=PBab==",
            "url": f"{V1}/InstalledAddOns?PageSize=2&Page=1",
            "next_page_url": f"{V1}/InstalledAddOns?PageSize=2&PageToken={token}&Page=2",
            "key": "installed_add_ons",
        },
    }
    out = rewrite(page)
    assert out["meta"] == {
        "page": 1,
        "page_size": 2,
        "first_page_url": f"{GW}/InstalledAddOns?PageSize=2&Page=0",
        "previous_page_url": f"{GW}/InstalledAddOns?Page=0&PageSize=2&PageToken=PBab==",
        "url": f"{GW}/InstalledAddOns?PageSize=2&Page=1",
        "next_page_url": f"{GW}/InstalledAddOns?PageSize=2&PageToken={token}&Page=2",
        "key": "installed_add_ons",
    }
    assert [record["url"] for record in out["installed_add_ons"]] == [
        f"{GW}/InstalledAddOns/{XE}",
        f"{GW}/InstalledAddOns/{XE}",
    ]
    assert [record["configuration"] for record in out["installed_add_ons"]] == [CONFIGURATION] * 2


def test_the_byte_for_byte_query_survives_in_the_encoded_body() -> None:
    body = (
        b'{"extensions":[],"meta":{"next_page_url":'
        b'"https://marketplace.twilio.com/v1/AvailableAddOns/XB1/Extensions'
        b'?PageToken=PT%3D%25==&PageSize=50&Page=1","key":"extensions"}}'
    )
    assert rewrite_body(body, "application/json", preview(), PUBLIC) == (
        b'{"extensions":[],"meta":{"next_page_url":'
        b'"https://gw.example.com/marketplace/AvailableAddOns/XB1/Extensions'
        b'?PageToken=PT%3D%25==&PageSize=50&Page=1","key":"extensions"}}'
    )


def test_a_query_holding_an_upstream_url_is_not_touched() -> None:
    value = f"{V1}/AvailableAddOns?Return={V1_ORIGIN}/v1/AvailableAddOns&Page=1"
    out = rewrite({"available_add_ons": [], "meta": {"url": value, "key": "available_add_ons"}})
    assert out["meta"]["url"] == (
        f"{GW}/AvailableAddOns?Return={V1_ORIGIN}/v1/AvailableAddOns&Page=1"
    )


def test_last_and_empty_page_null_links() -> None:
    page = {
        "extensions": [],
        "meta": {
            "page": 0,
            "page_size": 50,
            "first_page_url": f"{V1}/InstalledAddOns/{XE}/Extensions?PageSize=50&Page=0",
            "previous_page_url": None,
            "url": f"{V1}/InstalledAddOns/{XE}/Extensions?PageSize=50&Page=0",
            "next_page_url": None,
            "key": "extensions",
        },
    }
    assert rewrite(page) == {
        "extensions": [],
        "meta": {
            "page": 0,
            "page_size": 50,
            "first_page_url": f"{GW}/InstalledAddOns/{XE}/Extensions?PageSize=50&Page=0",
            "previous_page_url": None,
            "url": f"{GW}/InstalledAddOns/{XE}/Extensions?PageSize=50&Page=0",
            "next_page_url": None,
            "key": "extensions",
        },
    }


@pytest.mark.parametrize("key", [None, "records"])
def test_meta_key_is_filled_when_missing_or_wrong(key: str | None) -> None:
    meta: dict[str, Any] = {"url": f"{V1}/AvailableAddOns?PageSize=50&Page=0"}
    if key is not None:
        meta["key"] = key
    out = rewrite({"available_add_ons": [], "meta": meta})
    assert out["meta"] == {
        "url": f"{GW}/AvailableAddOns?PageSize=50&Page=0",
        "key": "available_add_ons",
    }


def test_meta_key_is_left_alone_when_the_list_is_ambiguous() -> None:
    out = rewrite({"a": [], "b": [], "meta": {"url": f"{V1}/AvailableAddOns"}})
    assert out["meta"] == {"url": f"{GW}/AvailableAddOns"}


@pytest.mark.parametrize(
    "value",
    [
        "https://marketplace.twilio.com.evil.example/v1/InstalledAddOns",
        "https://marketplace.twilio.com@evil.example/v1/InstalledAddOns",
        "https://marketplace.twilio.comx/v1/InstalledAddOns",
        "http://marketplace.twilio.com/v1/InstalledAddOns",
        "https://evil.example/https://marketplace.twilio.com/v1/InstalledAddOns",
        "/v1/InstalledAddOns",
        "https://preview.twilio.com/marketplace/InstalledAddOns",
        "https://www.twilio.com/docs/errors/20404",
    ],
)
def test_lookalike_and_foreign_urls_are_untouched(value: str) -> None:
    document = {"url": value, "links": {"x": value}, "marker": f"{V1}/InstalledAddOns"}
    assert rewrite(document) == document


def test_non_string_url_values_are_untouched() -> None:
    document = {"url": None, "uri": 5, "links": None, "meta": {"url": f"{V1}/AvailableAddOns"}}
    assert rewrite(document) == {
        "url": None,
        "uri": 5,
        "links": None,
        "meta": {"url": f"{GW}/AvailableAddOns"},
    }


def test_error_bodies_keep_more_info() -> None:
    body = orjson.dumps(
        {
            "code": 20404,
            "message": f"The requested resource /v1/InstalledAddOns/{XE} was not found",
            "more_info": "https://www.twilio.com/docs/errors/20404",
            "status": 404,
        }
    )
    assert rewrite_body(body, "application/json", preview(), PUBLIC) is None


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (f"see {V1}/InstalledAddOns".encode(), "text/plain"),
        (f"<a href='{V1}/InstalledAddOns'>".encode(), "text/html; charset=utf-8"),
        (orjson.dumps({"url": f"{V1}/InstalledAddOns"}), "application/octet-stream"),
        (orjson.dumps({"url": f"{V1}/InstalledAddOns"}), ""),
        (b"", "application/json"),
        (orjson.dumps({"url": "https://example.com/a"}), "application/json"),
        (orjson.dumps([{"url": f"{V1}/InstalledAddOns"}]), "application/json"),
        (orjson.dumps(f"{V1}/InstalledAddOns"), "application/json"),
        (b"{not json", "application/json"),
    ],
    ids=[
        "text",
        "html",
        "octet-stream",
        "no-content-type",
        "empty",
        "json-without-upstream-urls",
        "json-array",
        "json-string",
        "invalid-json-without-upstream-url",
    ],
)
def test_bodies_left_unchanged_return_none(body: bytes, content_type: str) -> None:
    assert rewrite_body(body, content_type, preview(), PUBLIC) is None


URL = b'"https://marketplace.twilio.com/v1/InstalledAddOns"'


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (b'{"url": ' + URL + b", ", "truncated"),
        (b'{"url": ' + URL + b', "n": NaN}', "NaN is not JSON"),
        (b'{"url": ' + URL + b', "n": -Infinity}', "nor is Infinity"),
        (b'{"url": ' + URL + b', "n": 01}', "leading zero"),
        (b'{"url": ' + URL + b', "n": 1.}', "no digit after the point"),
        (b'{"url": ' + URL + b', "n": .5}', "no digit before the point"),
        (b'{"url": ' + URL + b', "n": 1e}', "no exponent digits"),
        (b'{"url": ' + URL + b', "s": "a\\x"}', "unknown escape"),
        (b'{"url": ' + URL + b', "s": "\\u12"}', "short unicode escape"),
        (b'{"url": ' + URL + b', "s": "a\\tb\tc"}', "raw tab in a string"),
        (b'{"url": ' + URL + b', "s": "\xff"}', "not UTF-8"),
        (b'{"url": ' + URL + b', "s": "\xed\xa0\x80"}', "an encoded surrogate"),
        (b'{"url": ' + URL + b', "s": "\xc0\xaf"}', "an overlong encoding"),
        (b'{"url": ' + URL + b",}", "trailing comma"),
        (b'{"url": ' + URL + b"} {}", "two documents"),
        (b'{"url": ' + URL + b', "n": tru}', "broken literal"),
        (b"{'url': 1, " + URL + b": 2}", "single quotes"),
        (b'{"url": ' + URL + b"]", "wrong closing bracket"),
        (b'\xef\xbb{"url": ' + URL + b"}", "half a byte order mark"),
        (b'{"url":"https:\\/\\/marketplace.twilio.com\\/v1\\/X" trailing', "escaped, then junk"),
        (b"[" * 5000 + URL + b"]" * 4999, "deep and unclosed"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_invalid_json_carrying_an_upstream_url_is_a_bad_response(body: bytes, why: str) -> None:
    with pytest.raises(UpstreamBadResponse) as caught:
        rewrite_body(body, "application/json; charset=utf-8", preview(), PUBLIC)
    assert (caught.value.status, caught.value.code, caught.value.kind) == (
        502,
        88003,
        "invalid_json",
    )


def test_valid_json_a_parser_cannot_hold_is_still_rewritten() -> None:
    deep = b'{"a":' * 5000 + b"1" + b"}" * 5000
    big = b"9" * 5000
    body = b'{"n":1e400,"m":-1e-400,"big":' + big + b',"deep":' + deep + b',"url":' + URL + b"}"
    out = rewrite_body(body, "application/json", preview(), PUBLIC)
    assert out == body.replace(URL, f'"{GW}/InstalledAddOns"'.encode())


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + URL + b"]" * 100_000,
        b"[" + URL + b"]",
        URL,
        b'\xef\xbb\xbf  "' + URL[1:] + b" \r\n",
    ],
    ids=["array-100000-deep", "array", "string", "string-with-bom"],
)
def test_valid_json_that_is_not_an_object_passes_unchanged(body: bytes) -> None:
    assert rewrite_body(body, "application/json", preview(), PUBLIC) is None


def test_integers_wider_than_64_bits_survive_exactly() -> None:
    body = (
        b'{"sid":"XE1","configuration":{"big":123456789012345678901234567890,'
        b'"neg":-9223372036854775809,"max":18446744073709551615,"f":0.5,"s":"\xc3\xa9"},'
        b'"url":"https://marketplace.twilio.com/v1/InstalledAddOns/XE1"}'
    )
    out = rewrite_body(body, "application/json", preview(), PUBLIC)
    assert out is not None
    assert json.loads(out) == {
        "sid": "XE1",
        "configuration": {
            "big": 123456789012345678901234567890,
            "neg": -9223372036854775809,
            "max": 18446744073709551615,
            "f": 0.5,
            "s": "\u00e9",
        },
        "url": f"{GW}/InstalledAddOns/XE1",
    }
    assert b"123456789012345678901234567890" in out
    assert b"-9223372036854775809" in out


def test_a_lone_surrogate_escape_is_valid_json_and_survives() -> None:
    body = b'{"friendly_name":"\\ud800x","url":"https://marketplace.twilio.com/v1/AvailableAddOns"}'
    out = rewrite_body(body, "application/json", preview(), PUBLIC)
    assert out is not None
    assert json.loads(out) == {"friendly_name": "\ud800x", "url": f"{GW}/AvailableAddOns"}


def test_json_escaped_slashes_are_recognised_and_rewritten() -> None:
    """The rewritten URL is written plainly; customer data keeps its escapes."""
    body = (
        b'{"url":"https:\\/\\/marketplace.twilio.com\\/v1\\/InstalledAddOns\\/XE1",'
        b'"configuration":{"callback_url":"https:\\/\\/marketplace.twilio.com\\/v1\\/x"}}'
    )
    out = rewrite_body(body, "application/json", preview(), PUBLIC)
    assert out == (
        b'{"url":"https://gw.example.com/marketplace/InstalledAddOns/XE1",'
        b'"configuration":{"callback_url":"https:\\/\\/marketplace.twilio.com\\/v1\\/x"}}'
    )


def test_a_unicode_escaped_url_is_recognised_too() -> None:
    body = b'{"url":"\\u0068ttps://marketplace.twilio.com/v1/InstalledAddOns","x":"\\u00e9"}'
    out = rewrite_body(body, "application/json", preview(), PUBLIC)
    assert out == b'{"url":"https://gw.example.com/marketplace/InstalledAddOns","x":"\\u00e9"}'


@pytest.mark.parametrize(
    "mirror",
    ["http://127.0.0.1:9999", "http://mirror.internal:8081/twilio/marketplace"],
    ids=["simulator", "path-prefix"],
)
def test_a_mirror_upstream_base_is_rewritten_like_the_public_origin(mirror: str) -> None:
    rewriter = LinkRewriter.build((mirror, V1_ORIGIN), PREVIEW_RULES)
    document = {
        "url": f"{mirror}/v1/InstalledAddOns/{XE}",
        "links": {
            "extensions": f"{V1}/InstalledAddOns/{XE}/Extensions",
            "available_add_on": f"{mirror}/v1/AvailableAddOns/{XB}",
            "lookalike": f"{mirror}x/v1/AvailableAddOns/{XB}",
        },
        "meta": {"next_page_url": f"{mirror}/v1/InstalledAddOns?PageToken=a%2B==&Page=1"},
    }
    assert rewrite(document, rewriter) == {
        "url": f"{GW}/InstalledAddOns/{XE}",
        "links": {
            "extensions": f"{GW}/InstalledAddOns/{XE}/Extensions",
            "available_add_on": f"{GW}/AvailableAddOns/{XB}",
            "lookalike": f"{mirror}x/v1/AvailableAddOns/{XB}",
        },
        "meta": {"next_page_url": f"{GW}/InstalledAddOns?PageToken=a%2B==&Page=1"},
    }


def test_a_public_base_with_a_path_prefix() -> None:
    out = rewrite(installed_add_on(), public="https://gw.example.com/legacy")
    assert out["url"] == f"https://gw.example.com/legacy/marketplace/InstalledAddOns/{XE}"
    assert out["links"]["usage"] == f"https://gw.example.com/legacy/v1/InstalledAddOns/{XE}/Usage"


def test_pass_through_v1_keeps_the_v1_path() -> None:
    document = {
        "listings": [{"url": f"{V1}/Listing/{XB}", "module_info": {"logo_url": f"{V1}/logo"}}],
        "url": f"{V1}/Listings",
    }
    assert rewrite(document, pass_v1()) == {
        "listings": [
            {"url": f"{PUBLIC}/v1/Listing/{XB}", "module_info": {"logo_url": f"{V1}/logo"}}
        ],
        "url": f"{PUBLIC}/v1/Listings",
    }
    # Under a preview route a v1 URL without a preview twin keeps its v1 path.
    assert rewrite({"url": f"{V1}/Listing/{XB}"})["url"] == f"{PUBLIC}/v1/Listing/{XB}"


ACCOUNT_PATH = "/2010-04-01/Accounts/AC1/IncomingPhoneNumbers/PN1"


def test_relative_2010_uris_are_unchanged() -> None:
    page = {
        "assigned_add_ons": [
            {
                "sid": XE,
                "uri": f"{ACCOUNT_PATH}/AssignedAddOns/{XE}.json",
                "subresource_uris": {
                    "extensions": f"{ACCOUNT_PATH}/AssignedAddOns/{XE}/Extensions.json"
                },
            }
        ],
        "uri": f"{ACCOUNT_PATH}/AssignedAddOns.json?PageSize=50&Page=0",
        "first_page_uri": f"{ACCOUNT_PATH}/AssignedAddOns.json?PageSize=50&Page=0",
        "next_page_uri": None,
        "previous_page_uri": None,
        "page": 0,
    }
    assert rewrite_body(orjson.dumps(page), "application/json", pass_api(), PUBLIC) is None


def test_absolute_2010_uris_are_mapped_to_the_gateway() -> None:
    api = "https://api.twilio.com"
    page = {
        "assigned_add_ons": [
            {
                "uri": f"{api}{ACCOUNT_PATH}/AssignedAddOns/{XE}.json",
                "subresource_uris": {"extensions": f"{ACCOUNT_PATH}/AssignedAddOns/{XE}/E.json"},
            }
        ],
        "uri": f"{ACCOUNT_PATH}/AssignedAddOns.json",
        "first_page_uri": f"{api}{ACCOUNT_PATH}/AssignedAddOns.json?PageSize=1&Page=0",
        "next_page_uri": f"{api}{ACCOUNT_PATH}/AssignedAddOns.json?Page=1&PageToken=PA%3D=",
        "previous_page_uri": None,
    }
    assert rewrite(page, pass_api()) == {
        "assigned_add_ons": [
            {
                "uri": f"{PUBLIC}{ACCOUNT_PATH}/AssignedAddOns/{XE}.json",
                "subresource_uris": {"extensions": f"{ACCOUNT_PATH}/AssignedAddOns/{XE}/E.json"},
            }
        ],
        "uri": f"{ACCOUNT_PATH}/AssignedAddOns.json",
        "first_page_uri": f"{PUBLIC}{ACCOUNT_PATH}/AssignedAddOns.json?PageSize=1&Page=0",
        "next_page_uri": f"{PUBLIC}{ACCOUNT_PATH}/AssignedAddOns.json?Page=1&PageToken=PA%3D=",
        "previous_page_uri": None,
    }


def test_bare_origin_and_origin_with_query() -> None:
    out = rewrite({"url": V1_ORIGIN, "links": {"q": f"{V1_ORIGIN}?a=1"}})
    assert out == {"url": f"{PUBLIC}/", "links": {"q": f"{PUBLIC}/?a=1"}}


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/json", True),
        ("application/json; charset=utf-8", True),
        ("Application/JSON", True),
        ("application/problem+json", True),
        ("application/jsonp", False),
        ("text/json", False),
        ("text/plain", False),
        ("", False),
    ],
)
def test_is_json(content_type: str, expected: bool) -> None:
    assert is_json(content_type) is expected


def test_error_message_names_the_legacy_path_for_a_deprecated_route() -> None:
    from gateway.config.rules import load_rules
    from gateway.config.settings import load_config
    from gateway.proxy import Pipeline
    from gateway.rewrite.response_rewrite import rewrite_error_message
    from gateway.routes import routes_of

    pipeline = Pipeline.build(load_config({}, {}), load_rules())
    rewriters = {route.name: route.rewriter for route in routes_of(pipeline.router)}
    xe = "XE" + "ab" * 16
    body = (
        b'{"code":20404,"message":"The requested resource /v1/InstalledAddOns/'
        + xe.encode()
        + b' was not found","more_info":"https://www.twilio.com/docs/errors/20404","status":404}'
    )
    legacy = rewriters["preview_installed_add_on"]
    out = rewrite_error_message(body, "application/json", legacy)
    assert out is not None
    assert orjson.loads(out) == {
        "code": 20404,
        "message": f"The requested resource /marketplace/InstalledAddOns/{xe} was not found",
        "more_info": "https://www.twilio.com/docs/errors/20404",
        "status": 404,
    }
    # /v1 pass-through errors, unmapped paths and non-JSON bodies stay as they are
    assert rewrite_error_message(body, "application/json", rewriters["v1_installed_add_on"]) is None
    usage = body.replace(xe.encode(), xe.encode() + b"/Usage")
    assert rewrite_error_message(usage, "application/json", legacy) is None
    assert rewrite_error_message(body, "text/plain", legacy) is None
