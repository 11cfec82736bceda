"""Value parsers of the option table: text in, typed value out (pure; no I/O).

Each raises ``ValueError`` with a message saying what was expected; :mod:`gateway.config.settings`
prefixes it with where the value came from (flag, environment variable, file key).
"""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from yarl import URL

from gateway.config.instants import parse_instant

# An Account SID or API key SID, as Twilio writes them.
SID = re.compile(r"(?:AC|SK)[0-9a-fA-F]{32}")
# A consumer's name: a metric label value, a log field, a word on the reports.
CONSUMER_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


def parse_bool(text: str) -> bool:
    """``true/false``, ``1/0``, ``yes/no``, ``on/off`` (any case)."""
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:8080`` for IPv6) to a host and a port."""
    host, sep, port_text = text.strip().rpartition(":")
    if not sep or not host or not port_text.isascii() or not port_text.isdigit():
        raise ValueError(f"expected HOST:PORT, got {text!r}")
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ValueError(f"port out of range in {text!r} (0 to 65535)")
    return host.strip("[]"), port


def parse_http_url(text: str) -> str:
    """An absolute http(s) URL without query or fragment, returned without a trailing slash."""
    url = URL(text.strip())
    if url.scheme not in ("http", "https") or not url.host:
        raise ValueError(f"expected an absolute http(s) URL, got {text!r}")
    if url.query_string or url.fragment:
        raise ValueError(f"URL must not carry a query or fragment: {text!r}")
    return str(url).rstrip("/")


def parse_url_list(text: str) -> tuple[str, ...]:
    """Comma-separated absolute URLs."""
    return tuple(parse_http_url(part) for part in text.split(",") if part.strip())


def _integer(text: str, what: str) -> int:
    """A whole number in ASCII digits; ``ValueError`` saying what was expected otherwise."""
    cleaned = text.strip()
    digits = cleaned.removeprefix("-")
    if not digits or not digits.isascii() or not digits.isdigit():
        raise ValueError(f"expected {what}, got {text!r}")
    return int(cleaned)


def parse_positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected a positive number, got {text!r}") from None
    if not 0 < value < float("inf"):  # also refuses "nan"
        raise ValueError(f"expected a positive number, got {text!r}")
    return value


def parse_size(text: str) -> int:
    """A byte count, optionally with a K, M or G suffix (powers of 1024)."""
    cleaned = text.strip().upper().removesuffix("B")
    scale = {"K": 1024, "M": 1024**2, "G": 1024**3}.get(cleaned[-1:], 1)
    number = cleaned[:-1] if scale > 1 else cleaned
    if not number.isascii() or not number.isdigit() or int(number) == 0:
        raise ValueError(f"expected a size like 512K or 1M, got {text!r}")
    return int(number) * scale


def parse_count(text: str) -> int:
    value = _integer(text, "a count >= 0")
    if value < 0:
        raise ValueError(f"expected a count >= 0, got {text!r}")
    return value


def parse_positive_int(text: str) -> int:
    value = _integer(text, "a count >= 1")
    if value < 1:
        raise ValueError(f"expected a count >= 1, got {text!r}")
    return value


def parse_log_level(text: str) -> str:
    level = text.strip().lower()
    if level not in ("debug", "info", "warning", "error"):
        raise ValueError(f"expected debug, info, warning or error, got {text!r}")
    return level


UPSTREAM_TRANSPORTS = ("lean", "aiohttp")


def parse_upstream_transport(text: str) -> str:
    name = text.strip().lower()
    if name not in UPSTREAM_TRANSPORTS:
        raise ValueError(f"expected lean or aiohttp, got {text!r}")
    return name


def parse_path(text: str) -> Path:
    return Path(text).expanduser()


def parse_workers(text: str) -> int:
    value = _integer(text, "1 to 64 workers")
    if not 1 <= value <= 64:
        raise ValueError(f"expected 1 to 64 workers, got {text!r}")
    return value


def parse_optional_path(text: str) -> Path | None:
    return parse_path(text) if text.strip() else None


def parse_hops(text: str) -> int:
    value = _integer(text, "a number of proxies from 1 to 16")
    if not 1 <= value <= 16:
        raise ValueError(f"expected a number of proxies from 1 to 16, got {text!r}")
    return value


# The two families of forwarded headers a trusted proxy may write (option ``forwarded_header``).
X_FORWARDED = "x-forwarded"  # X-Forwarded-Proto / X-Forwarded-Host
FORWARDED = "forwarded"  # RFC 7239
HEADER_FAMILIES = (X_FORWARDED, FORWARDED)


def parse_forwarded_header(text: str) -> str:
    family = text.strip().lower()
    if family not in HEADER_FAMILIES:
        raise ValueError(f"expected x-forwarded or forwarded, got {text!r}")
    return family


def parse_instant_text(text: str) -> str:
    parse_instant(text)  # validate now, keep the text for the policy built later
    return text.strip()


def parse_optional_instant(text: str) -> datetime | None:
    """An ISO 8601 date or date-time (UTC when no zone is given), or nothing when empty."""
    return parse_instant(text) if text.strip() else None


def parse_optional_url(text: str) -> str | None:
    return parse_http_url(text) if text.strip() else None


def parse_optional_listen(text: str) -> tuple[str, int] | None:
    return parse_listen(text) if text.strip() else None


def parse_names(text: str) -> dict[str, str]:
    """``SID=name`` pairs separated by commas."""
    names: dict[str, str] = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        sid, sep, name = item.partition("=")
        sid, name = sid.strip(), name.strip()
        if not sep or not SID.fullmatch(sid) or not CONSUMER_NAME.fullmatch(name):
            raise ValueError(
                f"expected SID=name (an AC/SK SID, a name of [A-Za-z0-9_.-]), got {item!r}"
            )
        names[sid] = name
    return names
