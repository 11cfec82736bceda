"""Consumer labels come from the username of Basic auth and never from the secret."""

from __future__ import annotations

import base64

import pytest

from gateway.consumers import ConsumerLabels, consumer_sid, parse_names

ACCOUNT = "AC" + "ab" * 16
KEY = "SK" + "cd" * 16


def basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (basic(f"{ACCOUNT}:token"), ACCOUNT),
        (basic(f"{KEY}:secret"), KEY),
        (basic("my-real-auth-token:x"), "unrecognized"),  # a secret in the username stays out
        (basic("AC123:token"), "unrecognized"),
        ("Basic !!!notbase64", "unrecognized"),
        ("Bearer eyJhbGciOi...", "bearer"),
        ("Digest abc", "unrecognized"),
        (None, "anonymous"),
        ("", "anonymous"),
    ],
)
def test_consumer_sid(header: str | None, expected: str) -> None:
    assert consumer_sid(header) == expected


def test_cap_counts_distinct_labels_per_instance() -> None:
    labels = ConsumerLabels({ACCOUNT: "crm"}, cap=1, enabled=True)
    assert labels.label(basic(f"{ACCOUNT}:t")) == ("crm", False)
    assert labels.label(basic(f"{KEY}:t")) == ("other", True)
    assert labels.label(basic(f"{ACCOUNT}:t")) == ("crm", False)
    assert ConsumerLabels({}, cap=1, enabled=False).label(basic(f"{KEY}:t")) == ("disabled", False)


def test_parse_names() -> None:
    assert parse_names(f"{ACCOUNT}=crm, {KEY}=batch.jobs") == {ACCOUNT: "crm", KEY: "batch.jobs"}
    for bad in ("AC1=crm", f"{ACCOUNT}", f"{ACCOUNT}=has space"):
        with pytest.raises(ValueError):
            parse_names(bad)
