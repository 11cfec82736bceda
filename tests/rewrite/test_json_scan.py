"""gateway.rewrite.json_scan: the URL fields of a JSON text by byte span, for any valid JSON."""

from __future__ import annotations

import json

import pytest

from gateway.rewrite.json_scan import ARRAY, OBJECT, SCALAR, STRING, InvalidJson, scan


def fields(body: bytes) -> list[str]:
    found = scan(body)
    assert found is not None
    return [body[start:end].decode() for start, end in found.fields]


def test_the_places_that_are_url_fields() -> None:
    body = (
        b'{"url":"1","uri":"2","first_page_uri":"3","previous_page_uri":"4","next_page_uri":"5",'
        b'"links":{"a":"6","b":{"url":"no"},"c":0},"subresource_uris":{"d":"7"},'
        b'"meta":{"url":"8","first_page_url":"9","previous_page_url":"10","next_page_url":"11",'
        b'"key":"records","uri":"no","links":{"x":"no"}},'
        b'"records":[{"url":"12","uri":"13","links":{"e":"14"},"subresource_uris":{"f":"15"},'
        b'"first_page_uri":"no","configuration":{"url":"no","links":{"x":"no"}},'
        b'"nested":[{"url":"no"}]},"no",["no"],{"url":"16"}],'
        b'"configuration":{"url":"no","records":[{"url":"no"}]},'
        b'"first_page_url":"no","key":"no"}'
    )
    assert fields(body) == [f'"{n}"' for n in range(1, 17)]


def test_every_occurrence_of_a_duplicate_key_counts() -> None:
    body = b'{"url":"a","url":"b","links":{"x":"c"},"links":5,"meta":{"url":"d"},"meta":[]}'
    found = scan(body)
    assert found is not None
    assert [body[s:e] for s, e in found.fields] == [b'"a"', b'"b"', b'"c"', b'"d"']
    assert found.meta is None  # the last "meta" is not an object


def test_escaped_keys_are_decoded() -> None:
    assert fields(b'{"\\u0075rl":"a","li\\u006eks":{"x":"b"},"caf\\u00e9":"no"}') == ['"a"', '"b"']


def test_top_level_members_and_meta() -> None:
    body = b'{"a": [1], "meta" : {"key": "a", "page": 0 } , "b":"s","c":null}'
    found = scan(body)
    assert found is not None
    assert [(m.key, m.kind) for m in found.members] == [
        ("a", ARRAY),
        ("meta", OBJECT),
        ("b", STRING),
        ("c", SCALAR),
    ]
    assert found.meta is not None
    assert [(m.key, m.kind) for m in found.meta.members] == [("key", STRING), ("page", SCALAR)]
    assert body[found.meta.close : found.meta.close + 1] == b"}"
    assert body[found.members[0].start : found.members[0].end] == b"[1]"


@pytest.mark.parametrize(
    "body",
    [
        b"[]",
        b'"s"',
        b"1",
        b"null",
        b' [ {"url": "x"} ] ',
        b"\xef\xbb\xbf[]",
        b"[" * 3000 + b"]" * 3000,
    ],  # noqa: E501
    ids=["array", "string", "number", "null", "records", "bom", "deep"],
)
def test_valid_json_that_is_not_an_object(body: bytes) -> None:
    assert scan(body) is None


@pytest.mark.parametrize(
    "body",
    [
        b"{}",
        b" \t\r\n{ } \r\n",
        b"\xef\xbb\xbf{}",
        b'{"n":1e400,"m":-0,"o":0.0e-0,"p":12345678901234567890.5,"q":-1E+5}',
        b'{"big":' + b"7" * 6000 + b"}",  # past the interpreter's int() digit limit
        b'{"s":"\\ud800 \\udfff \\u0000 \\" \\\\ \\/ \\b \\f \\n \\r \\t"}',
        '{"s":"é\u2028😀"}'.encode(),
        b'{"deep":' + b'{"a":[' * 4000 + b"1" + b"]}" * 4000 + b"}",
        b'{"a":1,"a":2}',
    ],
    ids=["empty", "whitespace", "bom", "numbers", "huge-int", "escapes", "utf8", "deep", "dups"],
)
def test_valid_objects(body: bytes) -> None:
    found = scan(body)
    assert found is not None and found.fields == []


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"{",
        b'{"a":1,}',
        b'{"a" 1}',
        b"{'a':1}",
        b'{"a":NaN}',
        b'{"a":Infinity}',
        b'{"a":-Infinity}',
        b'{"a":01}',
        b'{"a":1.}',
        b'{"a":-}',
        b'{"a":"\\x"}',
        b'{"a":"\\u00g0"}',
        b'{"a":"\t"}',
        b'{"a":"\xff"}',
        b'{"a":"\xed\xa0\x80"}',
        b'{"a":"\xc0\xaf"}',
        b'{"a":"\xf4\x90\x80\x80"}',
        b"\xef\xbb{}",
        b"{} {}",
        b"{}\x00",
        b'{"a":[1 2]}',
        b'{"a":[1,]}',
        b'{"a":tru}',
        b'{"deep":' + b"[" * 5000 + b"1" + b"]" * 4999 + b"}",
        b"\x0c{}",
    ],
)
def test_invalid(body: bytes) -> None:
    with pytest.raises(InvalidJson):
        scan(body)


@pytest.mark.parametrize(
    "text",
    ['{"a":[1,{"b":null}],"c":"d"}', "[1, 2.5e3]", '"x"', "{}", '{"a":{"b":{"c":[]}}}'],
)
def test_agrees_with_the_standard_library_on_what_is_json(text: str) -> None:
    json.loads(text)
    scan(text.encode())  # no exception
