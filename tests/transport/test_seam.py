"""gateway.transport.seam: every failure keeps the kind, status and error code it had before the
transports (the failure metric's labels and the documented 88xxx codes)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gateway.errors import GatewayError
from gateway.transport import seam
from gateway.transport.seam import NoAnswer


@pytest.mark.parametrize(
    ("make", "kind", "status", "code", "message"),
    [
        (seam.refused, "refused", 502, 88001, "The upstream refused the connection"),
        (
            seam.dns_failed,
            "dns",
            502,
            88001,
            "The upstream host name could not be resolved (DNS lookup failed)",
        ),
        (seam.tls_failed, "tls", 502, 88001, "TLS verification of the upstream failed"),
        (seam.reset, "reset", 502, 88001, "The upstream closed the connection"),
        (seam.timed_out, "timeout", 504, 88002, "The upstream did not answer in time"),
        (seam.truncated, "truncated", 502, 88003, "The upstream response body was cut short"),
        (seam.malformed, "bad_response", 502, 88003, "The upstream sent a malformed response"),
        (seam.failed, "bad_response", 502, 88003, "The upstream call failed"),
        (
            lambda: seam.too_large(1000),
            "too_large",
            502,
            88005,
            "The upstream response is larger than 1000 bytes",
        ),
    ],
)
def test_each_failure_has_its_kind_status_and_code(
    make: Callable[[], GatewayError], kind: str, status: int, code: int, message: str
) -> None:
    error = make()
    assert (error.kind, error.status, error.code, error.message) == (kind, status, code, message)


def test_no_answer_carries_the_failure_and_a_line_to_log_once() -> None:
    wrapped = NoAnswer(seam.dns_failed(), seam.dns_log_line("up.invalid", "Name unknown"))
    assert wrapped.error.kind == "dns"
    assert wrapped.log_line == "upstream host up.invalid does not resolve: Name unknown"
    assert NoAnswer(seam.reset()).log_line is None
