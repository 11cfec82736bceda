#!/usr/bin/env python3
"""The check before every measurement: a target only gets a figure when its answer is right.

  check_response.py URL [--expect-base http://127.0.0.1:8080]

Right means: HTTP 200, a JSON Content-Type, a body that parses as a JSON object; a list page's
meta.key names its list. On a gateway path (under /marketplace/) also: no marketplace.twilio.com
left anywhere in the body, and every resource URL (meta.*_url, and each resource's url and
links.*) starts with EXPECT_BASE/marketplace/ (EXPECT_BASE: the URL's own scheme and host by
default). Customer data such as configuration.callback_url is not looked at.

Prints "ok" and exits 0, or "FAIL: why" and exits 1. Standard library only.
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

UPSTREAM_HOST = b"marketplace.twilio.com"
META_URLS = ("first_page_url", "previous_page_url", "url", "next_page_url")
CREDENTIALS = base64.b64encode(b"AC" + b"a" * 32 + b":token").decode()


def url_fields(document: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """``(where, value)`` of every resource URL field of a page or of one resource."""
    meta = document.get("meta")
    if isinstance(meta, dict):
        for name in META_URLS:
            if isinstance(meta.get(name), str):
                yield f"meta.{name}", meta[name]
        key = meta.get("key")
        resources = [(f"{key}[{i}].", r) for i, r in enumerate(document.get(key) or [])]
    else:
        resources = [("", document)]
    for prefix, resource in resources:
        if not isinstance(resource, dict):
            continue
        if isinstance(resource.get("url"), str):
            yield f"{prefix}url", resource["url"]
        for name, value in (resource.get("links") or {}).items():
            if isinstance(value, str):
                yield f"{prefix}links.{name}", value


def problem(url: str, expect_base: str | None) -> str | None:
    """What is wrong with ``url``'s answer, or None."""
    request = urllib.request.Request(
        url, headers={"Accept": "application/json", "Authorization": f"Basic {CREDENTIALS}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status = response.status
            content_type = response.headers.get("Content-Type", "")
            body = response.read()
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code}"
    except Exception as exc:  # refused, timed out, reset: say which
        return f"{type(exc).__name__}: {exc}"
    if status != 200:
        return f"HTTP {status}"
    if "json" not in content_type:
        return f"Content-Type {content_type!r}"
    try:
        document = json.loads(body)
    except ValueError as exc:
        return f"invalid JSON ({exc})"
    if not isinstance(document, dict):
        return "JSON is not an object"
    if "meta" in document:
        key = document["meta"].get("key")
        if not key or not isinstance(document.get(key), list):
            return f"list page: meta.key {key!r} does not name a list"
    parts = urllib.parse.urlsplit(url)
    if not parts.path.startswith("/marketplace/"):
        return None
    if UPSTREAM_HOST in body:
        return f"{body.count(UPSTREAM_HOST)} unrewritten marketplace.twilio.com URL(s) left in body"
    base = (expect_base or f"{parts.scheme}://{parts.netloc}").rstrip("/") + "/marketplace/"
    seen = 0
    for where, value in url_fields(document):
        seen += 1
        if not value.startswith(base):
            return f"{where} = {value!r} does not start with {base!r}"
    return None if seen else "no url fields found"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("url")
    parser.add_argument("--expect-base", default=None)
    args = parser.parse_args()
    found = problem(args.url, args.expect_base)
    print("ok" if found is None else f"FAIL: {found}")
    sys.exit(0 if found is None else 1)


if __name__ == "__main__":
    main()
