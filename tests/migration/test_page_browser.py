"""The migration page in a real browser: a real ``gateway serve`` in front of the simulator, known
traffic from three consumers, then Debian's headless chromium at a desktop's 1280x800 and a
phone's 390x844: the numbers and stages the DOM shows, no console error (a CSP violation would be
one), no horizontal scrolling, and a screenshot at each size (saved in the test's folder, and in
``$MIGRATION_SCREENSHOTS`` when set, which is how docs/migration-page.png was made)."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.browser import headless_chromium
from tests.fleet import deprecated_call, iso, one_gateway

pytestmark = [pytest.mark.slow, pytest.mark.upstream]

BILLING = "AC" + "b1" * 16
STOREFRONT = "AC" + "5f" * 16
REPORTS = "AC" + "da" * 16
HOSTILE = "<img src=x onerror=alert(1)>"
SIZES = ((1280, 800), (390, 844))


def write_config(directory: Path, now: float) -> Path:
    path = directory / "gateway.toml"
    path.write_text(
        f"""
sunset_date = "{iso(now + 90 * 86400)}"

[[consumers]]
sid = "{BILLING}"
name = "billing-api"
group = "payments"
owner = "payments-team@example.com"
cutoff = {iso(now - 7 * 86400)}

[[consumers]]
sid = "{STOREFRONT}"
name = "storefront"
group = "web"
owner = "{HOSTILE}"
cutoff = {iso(now + 60 * 86400)}

[[consumers]]
sid = "{REPORTS}"
name = "reporting-job"
group = "data"
owner = "data-team@example.com"
exempt_until = {iso(now + 30 * 86400)}
cutoff = {iso(now + 90 * 86400)}

[[brownout]]
start = {iso(now + 86400)}
end = {iso(now + 86400 + 7200)}
groups = ["web"]
""",
        "utf-8",
    )
    return path


async def drive(gateway: str) -> dict[str, list[int]]:
    statuses: dict[str, list[int]] = {}
    async with aiohttp.ClientSession() as session:
        for sid, count in ((STOREFRONT, 4), (BILLING, 2), (REPORTS, 3)):
            for _ in range(count):
                statuses.setdefault(sid, []).append(await deprecated_call(session, gateway, sid))
    return statuses


def look(url: str, width: int, height: int, shots: Path) -> dict[str, Any]:
    """Load the page at one size; what the DOM and the console say."""
    with headless_chromium(width, height) as driver:
        driver.get(url)
        seen: dict[str, Any] = driver.execute_script(
            """
            const rows = {};
            const trs = [...document.querySelectorAll('#consumers tbody tr')];
            for (const tr of trs) {
              rows[tr.dataset.name] = {
                stage: tr.dataset.stage,
                badge: tr.querySelector('.badge').textContent,
                calls: tr.querySelector('td.calls').textContent,
                owner: tr.querySelector('td.owner').textContent,
              };
            }
            return {
              rows,
              order: trs.map(tr => tr.dataset.name),
              days: document.getElementById('days-to-sunset').textContent,
              events: [...document.querySelectorAll('#events li')].map(li => li.textContent),
              legend: [...document.querySelectorAll('.legend li')].map(li => li.textContent),
              images: document.images.length,
              scripts: document.scripts.length,
              scrollWidth: document.documentElement.scrollWidth,
              bodyWidth: document.body.scrollWidth,
              svg: document.querySelectorAll('svg.chart polyline').length,
            };
            """
        )
        seen["console"] = driver.get_log("browser")
        shot = shots / f"migration-{width}x{height}.png"
        driver.save_screenshot(str(shot))
        full = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(width, max(height, int(full)))
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": int(full), "deviceScaleFactor": 1, "mobile": width < 600},
        )
        driver.save_screenshot(str(shots / f"migration-{width}-full.png"))
    return seen


async def test_the_page_in_headless_chromium_at_desktop_and_phone_sizes(tmp_path: Path) -> None:
    now = time.time()
    config = write_config(tmp_path, now)
    async with one_gateway(config, tmp_path) as gateway:
        statuses = await drive(gateway)
        assert statuses == {STOREFRONT: [200] * 4, BILLING: [410] * 2, REPORTS: [200] * 3}
        url = f"{gateway}/migration"
        views = {size: await asyncio.to_thread(look, url, *size, tmp_path) for size in SIZES}
    for (width, _), seen in views.items():
        rows = seen["rows"]
        assert seen["order"] == ["billing-api", "storefront", "reporting-job"]
        assert (rows["billing-api"]["stage"], rows["billing-api"]["calls"]) == ("cut_off", "2")
        assert rows["billing-api"]["badge"] == f"cut off since {iso(now - 7 * 86400)[:10]}"
        assert (rows["storefront"]["stage"], rows["storefront"]["calls"]) == ("calling", "4")
        assert rows["storefront"]["owner"] == HOSTILE  # shown as text, never as an element
        assert (rows["reporting-job"]["stage"], rows["reporting-job"]["calls"]) == ("exempt", "3")
        assert rows["reporting-job"]["badge"] == f"exempt until {iso(now + 30 * 86400)[:10]}"
        assert float(seen["days"]) == pytest.approx(90, abs=0.2)
        assert "affects storefront" in seen["events"][0] and "brownout" in seen["events"][0]
        assert seen["legend"] == ["payments: 2", "web: 4", "data: 3"]
        assert seen["svg"] == 3
        assert (seen["images"], seen["scripts"]) == (0, 0)
        assert seen["console"] == [], seen["console"]
        assert seen["scrollWidth"] <= width and seen["bodyWidth"] <= width, (width, seen)
    target = os.environ.get("MIGRATION_SCREENSHOTS")
    if target:
        for shot in tmp_path.glob("migration-*.png"):
            shutil.copy(shot, Path(target) / shot.name)
