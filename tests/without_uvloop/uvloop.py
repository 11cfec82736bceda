"""Stands in for uvloop on PYTHONPATH (tests.processes.loop_env("asyncio")): importing it fails,
as on an install without the ``fast`` extra, so ``gateway serve`` runs on asyncio's own loop."""

raise ImportError("uvloop is hidden from this process: it runs on asyncio's event loop")
