"""One JSON line per request. Fields are chosen, never copied from headers, so no
``Authorization`` value, token or secret can reach the log."""

from __future__ import annotations

import asyncio
import logging
import sys
from dataclasses import dataclass
from typing import Any

import orjson

ACCESS_LOGGER = "gateway.access"


def configure_logging(level: str) -> None:
    """Log to stderr at ``level``; access lines are bare JSON documents, one per line."""
    # The logging module's documented switches: no thread or process details, which no line
    # here prints. (Access lines under `gateway serve` skip LogRecords altogether.)
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging.basicConfig(level=getattr(logging, level.upper()))
    for root_handler in logging.getLogger().handlers:
        root_handler.setFormatter(OneLineFormatter("%(asctime)s %(levelname)s %(message)s"))
    access = logging.getLogger(ACCESS_LOGGER)
    handler = LineHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    access.addHandler(handler)
    access.propagate = False
    access.setLevel(logging.DEBUG)


# Every C0 control, DEL and C1 control to a visible escape: whatever a client managed to get
# into a message or an exception text cannot start a new log line or drive a terminal.
_CONTROLS = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))}
_CONTROLS |= {ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"}


class OneLineFormatter(logging.Formatter):
    """Formats each record, traceback included, as exactly one line with no raw control
    characters (CR, LF and ESC included)."""

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record).translate(_CONTROLS)


class LineHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The access logger's handler when ``gateway serve`` owns the process: :class:`AccessLog`
    hands its lines straight to this handler, skipping the LogRecord machinery that cost about
    a tenth of a request's CPU. Anywhere else (tests, embedding) access lines go through
    ordinary logging.

    Lines written while the event loop runs are gathered and written together at the end of
    the loop's current pass (one ``write`` and one flush for every request the pass finished,
    instead of one each); without a running loop, at once. ``flush`` (called by ``logging``
    at exit, too) writes whatever is gathered.
    """

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._pending: list[str] = []

    def write_line(self, line: str) -> None:
        pending = self._pending
        pending.append(line)
        if len(pending) == 1:
            try:
                asyncio.get_running_loop().call_soon(self.flush_lines)
            except RuntimeError:  # no loop running: nothing to gather with
                self.flush_lines()

    def flush_lines(self) -> None:
        if self._pending:
            text = "".join(self._pending)
            self._pending.clear()
            self.stream.write(text)
            self.stream.flush()

    def flush(self) -> None:
        self.flush_lines()
        super().flush()


@dataclass(frozen=True, slots=True)
class AccessLog:
    """Writes access lines at a fixed level, or nothing when switched off."""

    enabled: bool
    level: int
    logger: logging.Logger

    @classmethod
    def create(cls, enabled: bool, level_name: str) -> AccessLog:
        return cls(enabled, getattr(logging, level_name.upper()), logging.getLogger(ACCESS_LOGGER))

    def write(
        self,
        *,
        route: str,
        method: str,
        path: str,
        status: int,
        seconds: float,
        consumer: str,
        deprecated: bool,
        upstream_status: int | None,
        front_door: str = "direct",
        policy: str = "",
    ) -> None:
        logger = self.logger
        if not self.enabled or not logger.isEnabledFor(self.level):
            return
        fields = {
            "route": route,
            "method": method,
            "path": path[:300],
            "status": status,
            "latency_ms": round(seconds * 1000, 3),
            "consumer": consumer,
            "deprecated": deprecated,
            "upstream_status": upstream_status,
            "front_door": front_door,
        }
        if policy:  # refused by the migration policy: cutoff, unknown_consumer, brownout, ...
            fields["policy"] = policy
        line = orjson.dumps(fields)
        handlers = logger.handlers
        if len(handlers) == 1 and not logger.propagate:
            handler = handlers[0]
            if isinstance(handler, LineHandler):
                handler.write_line(line.decode() + "\n")
                return
        logger.log(self.level, line.decode())
