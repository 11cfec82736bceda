"""Consumer labels come from the username of Basic auth and never from the secret."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from gateway.config.parsers import parse_names
from gateway.migration.consumers import LEDGER_NAME, ConsumerLabels, consumer_sid

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
        (basic(f"{ACCOUNT}:token") + "\u00e9", "unrecognized"),  # non-ASCII after the base64
    ],
)
def test_consumer_sid(header: str | None, expected: str) -> None:
    assert consumer_sid(header) == expected


def test_cap_counts_distinct_labels_per_instance() -> None:
    labels = ConsumerLabels({ACCOUNT: "crm"}, cap=1, enabled=True)
    assert labels.label(basic(f"{ACCOUNT}:t"), 200) == ("crm", False)
    assert labels.label(basic(f"{KEY}:t"), 200) == ("other", True)
    assert labels.label(basic(f"{ACCOUNT}:t"), 404) == ("crm", False)
    disabled = ConsumerLabels({}, cap=1, enabled=False)
    assert disabled.label(basic(f"{KEY}:t"), 200) == ("disabled", False)


def test_only_credentials_an_upstream_accepted_become_labels() -> None:
    labels = ConsumerLabels({}, cap=2, enabled=True)
    for number in range(150):  # made-up SIDs with wrong tokens: the upstream says 401
        fake = "AC" + f"{number:032x}"
        assert labels.label(basic(f"{fake}:wrong"), 401) == ("unauthenticated", False)
    assert labels.label(basic(f"{ACCOUNT}:t"), 403) == ("unauthenticated", False)
    # Not checked by an upstream at all (a brownout, a 404 before forwarding): not admitted...
    assert labels.label(basic(f"{ACCOUNT}:t"), None) == ("unauthenticated", False)
    assert labels.label(basic(f"{ACCOUNT}:t"), 200) == (ACCOUNT, False)
    # ...but named once admitted.
    assert labels.label(basic(f"{ACCOUNT}:t"), None) == (ACCOUNT, False)
    assert labels.label(basic(f"{KEY}:t"), 201) == (KEY, False)
    assert labels.label(None, None) == ("anonymous", False)
    assert labels.label("Bearer x", 200) == ("bearer", False)
    assert labels.log_label(basic(f"{KEY}:t"), 401) == "unauthenticated"
    assert labels.log_label(basic(f"{KEY}:t"), None) == KEY


def test_workers_share_one_cap_through_the_ledger_and_it_outlives_a_restart(
    tmp_path: Path,
) -> None:
    ledger = tmp_path / LEDGER_NAME
    first, second = (ConsumerLabels({}, 2, True, ledger) for _ in range(2))
    sids = ["AC" + f"{n:032x}" for n in range(4)]
    assert first.label(basic(f"{sids[0]}:t"), 200) == (sids[0], False)
    assert second.label(basic(f"{sids[1]}:t"), 200) == (sids[1], False)
    assert first.label(basic(f"{sids[2]}:t"), 200) == ("other", True)
    assert second.label(basic(f"{sids[0]}:t"), 200) == (sids[0], False)  # admitted elsewhere
    assert second.label(basic(f"{sids[3]}:t"), 200) == ("other", True)
    restarted = ConsumerLabels({}, 2, True, ledger)
    assert restarted.label(basic(f"{sids[2]}:t"), 200) == ("other", True)
    assert restarted.label(basic(f"{sids[1]}:t"), 200) == (sids[1], False)
    assert ledger.read_text().split() == sids[:2]


def test_reconfigured_labels_share_the_cap_state() -> None:
    before = ConsumerLabels({}, cap=1, enabled=True)
    assert before.label(basic(f"{ACCOUNT}:t"), 200) == (ACCOUNT, False)
    assert before.label(basic(f"{KEY}:t"), 200) == ("other", True)
    after = before.reconfigured({KEY: "batch"}, cap=1, enabled=True)
    assert after.label(basic(f"{KEY}:t"), 200) == ("other", True)  # the cap was used up before
    assert after.label(basic(f"{ACCOUNT}:t"), 200) == (ACCOUNT, False)
    raised = after.reconfigured({}, cap=2, enabled=True)  # a refusal is weighed again
    assert raised.label(basic(f"{KEY}:t"), 200) == (KEY, False)
    assert before.label(basic(f"{KEY}:t"), 200) == (KEY, False)  # one set of admitted labels


def test_reconfigured_labels_keep_the_workers_ledger(tmp_path: Path) -> None:
    ledger = tmp_path / "consumer-labels.txt"
    before = ConsumerLabels({}, cap=1, enabled=True, ledger=ledger)
    assert before.label(basic(f"{ACCOUNT}:t"), 200) == (ACCOUNT, False)
    after = before.reconfigured({}, cap=1, enabled=True)
    assert after.label(basic(f"{KEY}:t"), 200) == ("other", True)
    assert ledger.read_text().split() == [ACCOUNT]


def test_parse_names() -> None:
    assert parse_names(f"{ACCOUNT}=crm, {KEY}=batch.jobs") == {ACCOUNT: "crm", KEY: "batch.jobs"}
    for bad in ("AC1=crm", f"{ACCOUNT}", f"{ACCOUNT}=has space"):
        with pytest.raises(ValueError):
            parse_names(bad)


def test_listed_consumers_are_always_labelled_past_the_cap() -> None:
    """A SID on the [[consumers]] list is labelled with its name before any upstream saw it
    (a call the policy refused) and past the cap; an unlisted one still waits for an upstream's
    acceptance and counts against the cap."""
    listed, stranger, other = "AC" + "1" * 32, "AC" + "2" * 32, "AC" + "3" * 32
    labels = ConsumerLabels({listed: "billing-api"}, 1, True, listed=frozenset({listed}))
    assert labels.label(basic(f"{stranger}:pw"), None) == ("unauthenticated", False)
    assert labels.label(basic(f"{stranger}:pw"), 200) == (stranger, False)  # fills the cap
    assert labels.label(basic(f"{other}:pw"), 200) == ("other", True)
    assert labels.label(basic(f"{listed}:pw"), None) == ("billing-api", False)
    assert labels.label(basic(f"{listed}:pw"), 200) == ("billing-api", False)
    assert labels.label(basic(f"{listed}:wrong"), 401) == ("unauthenticated", False)
    again = labels.reconfigured({listed: "billing-api"}, 1, True, frozenset({listed}))
    assert again.label(basic(f"{listed}:pw"), None) == ("billing-api", False)
