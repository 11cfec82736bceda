"""Reloading the config file and the rules without a restart (``SIGHUP``, ``--watch-config``).

A reload reads the config the way start-up did (the same flags and environment, which still win
over the file), loads the rules it names and compiles them, which runs
:func:`gateway.config.validation.validate`, the check of ``gateway rules check``. Only when all
of that succeeds is the new :class:`~gateway.proxy.Pipeline` swapped into the app's
:class:`~gateway.proxy.Live` holder, in one assignment: a request reads the holder once, so one
in flight finishes on the old rules and config, and every request after the swap gets the new
ones. What outlives a reload: the upstream transport, the consumer-label cap state and the metric
declarations.

Settings outside :data:`LIVE_OPTIONS` are built into the listeners, the connection pool or the
process layout. A reload that changes one of them still applies everything else, keeps the
running value of those settings, names them in one log line and counts ``restart_required``;
the line repeats at each reload until a restart picks them up. A config or rule file that does
not validate changes nothing: one log line, a count of ``invalid``, and the previous
configuration keeps serving.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import replace
from pathlib import Path

from gateway.config.rules import RuleError, RuleSet, load_rules, rule_files
from gateway.config.settings import (
    FIELD_NAMES,
    ConfigError,
    ConfigSource,
    GatewayConfig,
    check_budgets,
)
from gateway.config.upstreams import NAMES as UPSTREAM_NAMES
from gateway.proxy import Live
from gateway.routes import routes_of
from gateway.telemetry import metrics

log = logging.getLogger("gateway")

WATCH_SECONDS = 1.0  # --watch-config polls this often; a change is applied once two polls agree

# The options a reload applies. Every other one (listen, workers, metrics_listen,
# public_base_url, max_body_size, the pool and upstream TLS settings, watch_config, and any
# option added later until it is listed here) needs a restart.
LIVE_OPTIONS: frozenset[str] = frozenset(
    {
        *(f"{name}_upstream" for name in UPSTREAM_NAMES),
        *(f"{name}_public_origins" for name in UPSTREAM_NAMES),
        "trust_forwarded_headers",
        "forwarded_header",
        "forwarded_hops",
        "rules",
        "log_level",
        "connect_timeout",
        "read_timeout",
        "total_timeout",
        "max_response_size",
        "consumer_labels",
        "consumer_cap",
        "consumer_names",
        "deprecation_date",
        "sunset_date",
        "deprecation_link",
        "sunset_link",
        "brownouts",
        "brownout",
        "consumers",
        "unknown_consumers_cutoff",
        "migration_prometheus_url",
        "access_log",
        "access_log_level",
    }
)

Fingerprint = tuple[tuple[str, bytes | None], ...]


def restart_only_changes(running: GatewayConfig, new: GatewayConfig) -> tuple[str, ...]:
    """The settings outside :data:`LIVE_OPTIONS` whose value ``new`` changes."""
    return tuple(
        name
        for name in FIELD_NAMES
        if name not in LIVE_OPTIONS and getattr(running, name) != getattr(new, name)
    )


def fingerprint(config_path: Path | None, rules: Path | None) -> Fingerprint:
    """A digest of every file a reload would read, through symlinks (a ConfigMap mount swaps
    its ``..data`` link, so names stay and contents change); a missing file digests to None."""
    files = [config_path] if config_path is not None else []
    if rules is not None:
        files.extend(rule_files(rules))  # what load_rules reads
    found: list[tuple[str, bytes | None]] = []
    for path in files:
        try:
            digest: bytes | None = hashlib.blake2b(path.read_bytes(), digest_size=16).digest()
        except OSError:
            digest = None
        found.append((str(path), digest))
    return tuple(found)


class Reloader:
    """Reloads into ``live`` on request; one reload at a time, requests coalesced."""

    def __init__(self, live: Live, source: ConfigSource) -> None:
        self._live = live
        self._source = source
        self._lock = asyncio.Lock()
        self._queued = False  # a reload is waiting for the lock; it reads the files afresh
        self._tasks: set[asyncio.Task[None]] = set()
        self.seen: Fingerprint = fingerprint(source.path, live.pipeline.config.rules)
        metrics.declare_reloads()

    def request(self, trigger: str) -> None:
        """Reload soon (safe to call from a signal handler callback of the event loop)."""
        if self._queued:
            return
        self._queued = True
        task = asyncio.get_running_loop().create_task(self._queued_reload(trigger))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _queued_reload(self, trigger: str) -> None:
        async with self._lock:
            self._queued = False
            await self._reload(trigger)

    async def reload(self, trigger: str) -> str:
        """Reload now (after any reload under way); the result counted and logged."""
        async with self._lock:
            return await self._reload(trigger)

    async def watch(self, interval: float = WATCH_SECONDS) -> None:
        """Reload whenever the files change; runs until cancelled."""
        if self._source.path is None and self._live.pipeline.config.rules is None:
            log.warning("--watch-config: no config file and the built-in rules, nothing to watch")
        previous: Fingerprint | None = None
        while True:
            await asyncio.sleep(interval)
            rules = self._live.pipeline.config.rules
            try:
                current = await asyncio.to_thread(fingerprint, self._source.path, rules)
            except Exception as exc:  # keep watching: the next poll may see the files again
                log.error("could not check the config files: %s", exc)
                continue
            # Wait for two polls that agree, so a half-written change is not read.
            if current != self.seen and current == previous:
                await self.reload("file change")
            previous = current

    async def close(self) -> None:
        """Cancel reloads that have not finished (at shutdown)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _reload(self, trigger: str) -> str:
        old = self._live.pipeline
        running = old.config
        self.seen = await asyncio.to_thread(fingerprint, self._source.path, running.rules)
        try:
            config, ruleset, kept = await asyncio.to_thread(self._read, running)
            pipeline = old.rebuilt(config, ruleset)  # validates, as `gateway rules check`
        except (ConfigError, RuleError, OSError, UnicodeError) as exc:
            return self._refuse(trigger, str(exc))
        except Exception as exc:  # never let a reload take the serving process down
            return self._refuse(trigger, f"unexpected {type(exc).__name__}: {exc}")
        self._live.pipeline = pipeline  # the swap: new requests read this from now on
        if config.log_level != running.log_level:
            logging.getLogger().setLevel(config.log_level.upper())
        old_names = {route.name for route in routes_of(old.router)}
        routes = routes_of(pipeline.router)
        metrics.publish_sunsets(
            {route.name: route.sunset for route in routes if route.sunset is not None},
            retired=old_names - {route.name for route in routes},
        )
        changed = [name for name in FIELD_NAMES if getattr(running, name) != getattr(config, name)]
        summary = (
            f"config reloaded on {trigger}: {len(ruleset.rules)} rule(s) ({ruleset.origin}); "
            f"settings changed: {', '.join(changed) or 'none'}"
        )
        if kept:
            log.warning("%s; not applied until a restart: %s", summary, ", ".join(kept))
            metrics.count_reload("restart_required")
            return "restart_required"
        log.info("%s", summary)
        metrics.count_reload("success")
        return "success"

    def _read(self, running: GatewayConfig) -> tuple[GatewayConfig, RuleSet, tuple[str, ...]]:
        """The new config (restart-only settings kept as running), its rules, and the names of
        the restart-only settings the files changed. Runs in a thread: it reads files."""
        new = self._source.load()
        kept = restart_only_changes(running, new)
        config = replace(new, **{name: getattr(running, name) for name in kept})
        check_budgets(config)  # a new max_response_size against the running budget
        return config, load_rules(config.rules), kept

    def _refuse(self, trigger: str, reason: str) -> str:
        log.error(
            "config reload on %s refused, the previous configuration keeps serving: %s",
            trigger,
            reason,
        )
        metrics.count_reload("invalid")
        return "invalid"
