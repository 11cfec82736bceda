"""Serving clients: the aiohttp server and its listeners, client bounds and deadlines, HTTP
checks, forwarded-header handling, error rendering, request and response bodies and the
process's budgets for them, and the process's memory hand-back.

It may import config, rewrite and telemetry, and the shared :mod:`gateway.errors` and
:mod:`gateway.models`; never the request pipeline (``proxy``, ``app``), migration, the front
doors, the tools or the simulator.
"""
