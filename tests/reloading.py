"""Helpers for the reload tests: rule and config files, ConfigMap-style mounts, reload counts."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Mapping
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

SUNSET_OLD = "2030-01-01T00:00:00Z"
SUNSET_NEW = "2031-01-01T00:00:00Z"
SUNSET_HEADER = {  # the Sunset header each of the two dates above gives
    SUNSET_OLD: "Tue, 01 Jan 2030 00:00:00 GMT",
    SUNSET_NEW: "Wed, 01 Jan 2031 00:00:00 GMT",
}


def rules_text(target: str, sunset: str, name: str = "legacy_list") -> str:
    """One deprecated rule: GET /marketplace/AvailableAddOns -> ``target`` until ``sunset``."""
    return (
        f'[[rule]]\nname = "{name}"\nmethods = ["GET"]\nfrom = "/marketplace/AvailableAddOns"\n'
        f'to = "{target}"\nupstream = "marketplace"\ndeprecated = true\nsunset = {sunset}\n'
    )


def config_text(upstream: str, rules: Path, **extra: object) -> str:
    """A ``[gateway]`` TOML table with both upstreams at ``upstream`` and the rules at
    ``rules``; ``extra`` keys are written as TOML literals (strings quoted)."""
    lines = [
        "[gateway]",
        f'marketplace_upstream = "{upstream}"',
        f'api_upstream = "{upstream}"',
        f'rules = "{rules}"',
        "access_log = false",
    ]
    for key, value in extra.items():
        literal = f'"{value}"' if isinstance(value, str) else str(value).lower()
        lines.append(f"{key} = {literal}")
    return "\n".join(lines) + "\n"


def configmap_write(mount: Path, files: Mapping[str, str]) -> None:
    """Publish ``files`` in ``mount`` the way the kubelet updates a ConfigMap volume: the data
    goes into a new timestamped directory, the ``..data`` symlink is swapped to it with one
    rename, every visible name is a symlink through ``..data``, and the old directory goes."""
    mount.mkdir(parents=True, exist_ok=True)
    data = mount / "..data"
    previous = os.readlink(data) if data.is_symlink() else None
    stamp = f"..{time.strftime('%Y_%m_%d_%H_%M_%S')}.{time.monotonic_ns()}"
    (mount / stamp).mkdir()
    for name, text in files.items():
        (mount / stamp / name).write_text(text)
    staging = mount / "..data_tmp"
    staging.symlink_to(stamp)
    os.rename(staging, data)
    for name in files:
        if not (mount / name).is_symlink():
            (mount / name).symlink_to(f"..data/{name}")
    for entry in mount.iterdir():
        if not entry.name.startswith("..") and entry.name not in files:
            entry.unlink()
    if previous is not None:
        shutil.rmtree(mount / previous)


def reload_counts(exposition: str) -> dict[str, float]:
    """``gateway_config_reloads_total`` by result, from a /metrics text."""
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name == "gateway_config_reloads_total":
                counts[sample.labels["result"]] = sample.value
    return counts
