"""One JSON line per request. Fields are chosen, never copied from headers, so no
``Authorization`` value, token or secret can reach the log."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass

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
    writes its lines straight to this handler's stream, skipping the LogRecord machinery that
    cost about a tenth of a request's CPU. Anywhere else (tests, embedding) access lines go
    through ordinary logging."""


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
    ) -> None:
        logger = self.logger
        if not self.enabled or not logger.isEnabledFor(self.level):
            return
        line = orjson.dumps(
            {
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
        )
        handlers = logger.handlers
        if len(handlers) == 1 and handlers[0].__class__ is LineHandler and not logger.propagate:
            stream = handlers[0].stream
            stream.write(line.decode() + "\n")
            stream.flush()
            return
        logger.log(self.level, line.decode())
