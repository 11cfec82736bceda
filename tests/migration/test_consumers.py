"""Consumer labels come from the username of Basic auth and never from the secret."""

from __future__ import annotations

import base64
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client.parser import text_string_to_metric_families

from gateway.config.parsers import parse_names
from gateway.migration import consumers as consumers_module
from gateway.migration.consumers import (
    FIXED_WORDS,
    LEDGER_NAME,
    ConsumerLabels,
    SidCache,
    consumer_sid,
    proves_credentials,
)
from tests.processes import free_port, start_gateway, wait_ready

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


def test_the_sid_cache_decodes_each_header_once_and_stays_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The labels and the migration policy each look the SID up through one (per request)."""
    decoded: list[str] = []

    def counting(authorization: str | None) -> str:
        decoded.append(str(authorization))
        return consumer_sid(authorization)

    monkeypatch.setattr(consumers_module, "consumer_sid", counting)
    cache = SidCache()
    header = basic(f"{ACCOUNT}:token")
    assert [cache.sid(header) for _ in range(3)] == [ACCOUNT] * 3
    assert cache.sid(None) == "anonymous" and cache.sid("Bearer x") == "bearer"
    assert decoded == [header, "Bearer x"]
    for number in range(2000):  # distinct headers: the cache is emptied when full, not grown
        assert cache.sid(basic(f"AC{number:032x}:t")) == f"AC{number:032x}"
    assert len(cache._sids) <= 1024
    assert {consumer_sid(h) for h in (None, "Bearer x", "Digest y")} == FIXED_WORDS


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


@pytest.mark.parametrize(
    ("status", "proves"),
    [
        (200, True),
        (201, True),
        (204, True),
        (302, True),
        (304, True),
        (400, True),
        (404, True),
        (409, True),
        (422, True),
        (401, False),
        (403, False),
        (407, False),
        (429, False),
        (500, False),
        (502, False),
        (503, False),
        (504, False),
        (100, False),
        (None, False),
    ],
)
def test_which_answers_prove_the_credentials_were_accepted(
    status: int | None, proves: bool
) -> None:
    assert proves_credentials(status) is proves
    labels = ConsumerLabels({}, cap=5, enabled=True)
    expected = ACCOUNT if proves else "unauthenticated"
    assert labels.label(basic(f"{ACCOUNT}:t"), status) == (expected, False)
    assert labels.label(basic(f"{ACCOUNT}:t"), 200) == (ACCOUNT, False)  # admitted now
    # Once admitted, a SID keeps its label on answers that prove nothing; not on a refusal.
    refused = status in (401, 403)
    assert labels.label(basic(f"{ACCOUNT}:t"), status) == (
        "unauthenticated" if refused else ACCOUNT,
        False,
    )


def test_an_outage_admits_no_made_up_sid_even_with_room_under_the_cap(tmp_path: Path) -> None:
    ledger = tmp_path / LEDGER_NAME
    labels = ConsumerLabels({}, cap=1000, enabled=True, ledger=ledger)
    for number, status in enumerate([503, 429, 500, 502, 407] * 40):
        made_up = "AC" + f"{number:032x}"
        assert labels.label(basic(f"{made_up}:wrong"), status) == ("unauthenticated", False)
    assert not ledger.exists()
    other_worker = ConsumerLabels({}, cap=1000, enabled=True, ledger=ledger)
    assert other_worker.label(basic(f"{ACCOUNT}:t"), 200) == (ACCOUNT, False)
    # this worker did not admit it, but labels it on an unproven answer once listed
    assert labels.label(basic(f"{ACCOUNT}:t"), 503) == (ACCOUNT, False)
    assert ledger.read_text().split() == [ACCOUNT]


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


FAILURES = [503, 429, 500, 502, 504, 407]


@pytest.mark.upstream
async def test_a_real_gateway_with_workers_labels_no_sid_its_upstream_failed_for(
    aiohttp_server: Callable[..., Awaitable[TestServer]], tmp_path: Path
) -> None:
    """``gateway serve --workers 2`` before an upstream that answers 503, 429, 500, 502, 504
    and 407 to made-up SIDs with wrong passwords, and 200 to one real consumer: on /metrics
    only the real consumer becomes a label (the others count as unauthenticated), and the
    workers' ledger file lists only it."""
    failing = {f"AC{number:032x}": status for number, status in enumerate(FAILURES * 6)}

    async def catalogue(request: web.Request) -> web.Response:
        username = consumer_sid(request.headers.get("Authorization"))
        if username in failing:
            error = {"code": 20500, "message": "Down", "status": failing[username]}
            return web.json_response(error, status=failing[username])
        return web.json_response({"available_add_ons": [], "meta": {"key": "available_add_ons"}})

    upstream = web.Application()
    upstream.router.add_get("/v1/AvailableAddOns", catalogue)
    origin = str((await aiohttp_server(upstream)).make_url("")).rstrip("/")
    port, metrics = free_port(), tmp_path / "prom"
    process = start_gateway(
        origin, port, "--workers", "2", env={"PROMETHEUS_MULTIPROC_DIR": str(metrics)}
    )
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(url, process)
        connector = aiohttp.TCPConnector(force_close=True)  # both workers meet every SID
        async with aiohttp.ClientSession(connector=connector) as session:
            for account, status in [*failing.items(), (ACCOUNT, 200)] * 2:
                headers = {"Authorization": basic(f"{account}:wrong")}
                async with session.get(f"{url}/marketplace/AvailableAddOns", headers=headers) as r:
                    assert r.status == status
            async with session.get(f"{url}/metrics") as response:
                exposition = await response.text()
        counted = {
            sample.labels["consumer"]: sample.value
            for family in text_string_to_metric_families(exposition)
            for sample in family.samples
            if sample.name == "gateway_deprecated_requests_total"
        }
        assert counted == {"unauthenticated": 2 * len(failing), ACCOUNT: 2}
        assert (metrics / LEDGER_NAME).read_text().split() == [ACCOUNT]
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
