"""``gateway consumers`` against a real ``gateway serve`` and the simulator: rows, stages, text
and JSON, and the exit codes (the Prometheus source is tested with a backfilled Prometheus in
tests/migration/test_page_prometheus.py)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from datetime import datetime
from pathlib import Path

import aiohttp
import pytest

from tests.fleet import deprecated_call, iso, one_gateway
from tests.processes import free_port, run_gateway

CUT = "AC" + "c1" * 16
CALLING = "AC" + "ca" * 16
EXEMPT = "AC" + "e3" * 16
QUIET = "AC" + "9e" * 16
STRANGER = "AC" + "57" * 16


def write_config(directory: Path, now: float) -> Path:
    path = directory / "gateway.toml"
    path.write_text(
        f"""
[[consumers]]
sid = "{CUT}"
name = "billing-api"
group = "payments"
owner = "payments-team@example.com"
cutoff = {iso(now - 2 * 86400)}

[[consumers]]
sid = "{CALLING}"
name = "storefront"
group = "web"
cutoff = {iso(now + 10 * 86400)}

[[consumers]]
sid = "{EXEMPT}"
name = "reporting-job"
exempt_until = {iso(now + 20 * 86400)}

[[consumers]]
sid = "{QUIET}"
name = "old-cron"
""",
        "utf-8",
    )
    return path


def consumers(*args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    result = run_gateway("consumers", *args, env=env)
    return result.returncode, result.stdout, result.stderr


@pytest.mark.upstream
@pytest.mark.slow
async def test_rows_stages_and_exit_codes_from_a_running_gateway(tmp_path: Path) -> None:
    now = time.time()
    config = write_config(tmp_path, now)
    async with one_gateway(config, tmp_path) as gateway:
        metrics = f"{gateway}/metrics"
        async with aiohttp.ClientSession() as session:
            statuses = [await deprecated_call(session, gateway, CALLING) for _ in range(3)]
            statuses.append(await deprecated_call(session, gateway, EXEMPT))
            statuses.append(await deprecated_call(session, gateway, STRANGER))
            assert statuses == [200] * 5
            # Nothing refused yet: --fail-if-called passes
            status, _, _ = await asyncio.to_thread(
                consumers, "--metrics-url", metrics, "--config", str(config), "--fail-if-called"
            )
            assert status == 0
            # cut off: an app that is broken
            assert await deprecated_call(session, gateway, CUT) == 410
        status, out, err = await asyncio.to_thread(
            consumers, "--metrics-url", metrics, "--config", str(config), "--fail-if-called"
        )
        assert (status, err) == (1, "")
        lines = out.splitlines()
        assert lines[0].startswith(f"source: {metrics} (calls since gateway start), at ")
        assert lines[2].split() == [
            "NAME", "SID", "GROUP", "OWNER", "STAGE", "CALLS", "LAST", "CALL", "CUT-OFF", "DAYS"
        ]  # fmt: skip
        cells = {row[0]: row for row in (re.split(r"\s{2,}", line.strip()) for line in lines[3:8])}
        assert cells["billing-api"][:6] == [
            "billing-api",
            CUT,
            "payments",
            "payments-team@example.com",
            f"cut off since {iso(now - 2 * 86400)[:10]}",
            "1",
        ]
        assert cells["billing-api"][7:] == [iso(now - 2 * 86400)[:10], "-2"]
        assert cells["storefront"][4:6] == ["calling", "3"]
        assert cells["storefront"][8] == "10"
        assert cells["reporting-job"][4:6] == [f"exempt until {iso(now + 20 * 86400)[:10]}", "1"]
        assert cells["old-cron"][4:7] == ["quiet", "0", "-"]
        assert cells[STRANGER][1:7:] == [STRANGER, "-", "-", "unknown", "1", cells[STRANGER][6]]
        assert out.rstrip().endswith(
            "Still calling after their cut-off (refused with 410, code 88013): billing-api"
        )
        status, out, _ = await asyncio.to_thread(
            consumers, "--metrics-url", metrics, "--config", str(config), "--format", "json"
        )
        assert status == 0  # without --fail-if-called
        document = json.loads(out)
        by_name = {row["name"]: row for row in document["consumers"]}
        assert list(by_name) == ["billing-api", "storefront", "reporting-job", "old-cron", STRANGER]
        billing = by_name["billing-api"]
        assert set(billing) >= {
            "sid",
            "name",
            "group",
            "owner",
            "stage",
            "deprecated_calls",
            "last_deprecated_call",
            "cutoff",
            "exempt_until",
        }
        assert (billing["sid"], billing["stage"], billing["deprecated_calls"]) == (
            CUT,
            "cut_off",
            1,
        )
        assert billing["cutoff"] == iso(now - 2 * 86400)
        last = datetime.fromisoformat(billing["last_deprecated_call"]).timestamp()
        assert now - 5 <= last <= time.time() + 5
        assert by_name["old-cron"]["last_deprecated_call"] is None
        assert by_name["reporting-job"]["exempt_until"] == iso(now + 20 * 86400)
        assert (by_name[STRANGER]["stage"], by_name[STRANGER]["sid"]) == ("unknown", STRANGER)
        assert document["called_after_cutoff"] == ["billing-api"]


def test_an_unreachable_source_or_a_bad_config_exits_2(tmp_path: Path) -> None:
    dead = f"http://127.0.0.1:{free_port()}/metrics"
    status, out, err = consumers("--metrics-url", dead)
    assert (status, out) == (2, "")
    assert err.startswith(f"gateway consumers: cannot reach {dead}: ")
    assert err.count("\n") == 1
    bad = tmp_path / "bad.toml"
    bad.write_text('[[consumers]]\nsid = "AC1"\nname = "x"\n', "utf-8")
    status, _, err = consumers("--metrics-url", dead, "--config", str(bad))
    assert status == 2 and "[[consumers]] entry 1 (name 'x'), key 'sid'" in err
    status, _, err = consumers("--prometheus-url", "http://127.0.0.1:1", "--window", "forever")
    assert status == 2 and "--window 'forever'" in err


def test_the_source_flags_are_checked_as_report_checks_them() -> None:
    """--window counts only over Prometheus; a URL that is not http(s) is refused before any
    fetch (the same check as gateway report's)."""
    status, out, err = consumers("--metrics-url", "http://127.0.0.1:1/metrics", "--window", "7d")
    assert (status, out) == (2, "")
    assert err == (
        "gateway consumers: --window 7d: only with --prometheus-url (a gateway's /metrics "
        "counts since it started; it has no window)\n"
    )
    status, _, err = consumers("--metrics-url", "not-a-url")
    assert status == 2 and err.startswith("gateway consumers: --metrics-url 'not-a-url': ")
    assert err.count("\n") == 1
