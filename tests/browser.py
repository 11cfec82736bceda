"""A real headless browser for tests: Debian's chromium driven through Debian's chromedriver with
selenium. Nothing downloads a browser or a driver: the driver's path is given, so selenium never
runs selenium-manager (the fixture makes sure by failing the test if it were asked)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
HINT = (
    "run scripts/install-system-deps.sh (as root; installs Debian's chromium and chromium-driver)"
)


def _require(path: str) -> None:
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(
            f"no {path}: {HINT}"
            + (" [CI=true: this test is never skipped in CI]" if os.environ.get("CI") else "")
        )


@contextmanager
def headless_chromium(width: int, height: int) -> Iterator[Any]:
    """A selenium WebDriver on headless chromium with a ``width`` x ``height`` viewport and
    the browser console's log readable (``driver.get_log("browser")``)."""
    _require(CHROMIUM)
    _require(CHROMEDRIVER)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.selenium_manager import SeleniumManager

    def _forbidden(*args: object, **kwargs: object) -> dict[str, str]:
        raise AssertionError("selenium-manager must not run: it would download a driver")

    original = SeleniumManager.binary_paths
    SeleniumManager.binary_paths = _forbidden  # type: ignore[method-assign]
    profile = Path(tempfile.mkdtemp(prefix="gateway-chromium-"))
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new",
        "--no-sandbox",  # as root, chromium's sandbox cannot start
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-extensions",
        "--disable-background-networking",
        "--disable-component-update",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(service=service, options=options)
    try:
        # --window-size sets the window; the viewport is what the page gets: set it exactly.
        driver.execute_cdp_cmd(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
        )
        yield driver
    finally:
        driver.quit()
        SeleniumManager.binary_paths = original  # type: ignore[method-assign]
        shutil.rmtree(profile, ignore_errors=True)
