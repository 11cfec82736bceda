"""gateway.rewrite.content_coding: which codings are decoded, decoding within a cap, and
refusals."""

from __future__ import annotations

import gzip
import zlib

import pytest

from gateway.errors import UpstreamBadResponse, UpstreamResponseTooLarge
from gateway.rewrite.content_coding import IDENTITY, coding, decode, expected_size

BODY = b'{"url":"https://marketplace.twilio.com/v1/InstalledAddOns"}' * 50


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([], IDENTITY),
        (["identity"], IDENTITY),
        (["gzip"], "gzip"),
        (["GZip "], "gzip"),
        (["x-gzip"], "gzip"),
        (["deflate"], "deflate"),
        (["br"], None),
        (["zstd"], None),
        (["xyz"], None),
        (["gzip, gzip"], None),
        (["gzip", "gzip"], None),
        (["gzip,identity"], None),
        ([""], None),
    ],
)
def test_only_one_known_coding_is_decoded(values: list[str], expected: str | None) -> None:
    assert coding(values) == expected


def _raw_deflate(data: bytes) -> bytes:
    compressor = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    return compressor.compress(data) + compressor.flush()


@pytest.mark.parametrize(
    ("encoded", "name"),
    [
        (gzip.compress(BODY), "gzip"),
        (gzip.compress(BODY[:100]) + gzip.compress(BODY[100:]), "gzip"),  # two members
        (zlib.compress(BODY), "deflate"),
        (_raw_deflate(BODY), "deflate"),  # what some servers send as "deflate"
        (BODY, IDENTITY),
    ],
    ids=["gzip", "gzip-two-members", "deflate-zlib", "deflate-raw", "identity"],
)
def test_decode(encoded: bytes, name: str) -> None:
    assert decode(encoded, name, len(BODY)) == BODY


def test_an_empty_body_has_nothing_to_decode() -> None:
    assert decode(b"", "gzip", 10) == b""


def test_a_body_decoding_past_the_cap_is_refused_before_it_is_all_inflated() -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024))  # 64 MiB of zeros in ~64 KB
    with pytest.raises(UpstreamResponseTooLarge) as caught:
        decode(bomb, "gzip", 16 * 1024 * 1024)
    assert (caught.value.status, caught.value.code, caught.value.kind) == (502, 88005, "too_large")
    assert decode(gzip.compress(BODY), "gzip", len(BODY)) == BODY  # exactly the cap is fine


@pytest.mark.parametrize(
    ("encoded", "name"),
    [
        (b"not gzip at all", "gzip"),
        (gzip.compress(BODY)[:-10], "gzip"),  # cut short
        (gzip.compress(BODY) + b"junk", "gzip"),
        (b"\x00\x01\x02", "deflate"),
    ],
    ids=["garbage", "truncated", "trailing-junk", "deflate-garbage"],
)
def test_a_body_that_does_not_decode_is_a_bad_response(encoded: bytes, name: str) -> None:
    with pytest.raises(UpstreamBadResponse) as caught:
        decode(encoded, name, 1 << 20)
    assert (caught.value.code, caught.value.kind) == (88003, "bad_response")


def test_expected_size() -> None:
    assert expected_size(gzip.compress(BODY), "gzip") == len(BODY)  # from the gzip trailer
    assert expected_size(b"x" * 10, "deflate") == 80  # unknown: a guess
    assert expected_size(b"x" * 10, IDENTITY) == 10
