"""Upstream transports: what sends one request upstream and reads its answer, behind the seam
:mod:`gateway.upstream` calls through (``upstream.forward(transport, request, limits)``).

Two implementations, chosen by ``upstream_transport`` (:mod:`gateway.transport.factory`):

- ``lean`` (:mod:`gateway.transport.lean`): a pooled HTTP/1.1 client on asyncio protocols,
  parsed by ``httptools`` (llhttp);
- ``aiohttp`` (:mod:`gateway.transport.aiohttp_client`): aiohttp's ``ClientSession``, as the
  gateway used it before, kept as the reference.

Both answer in the terms of :mod:`gateway.transport.seam` (the same failure kinds and error
codes); what is decided above a transport (the retry of a GET, the size cap and byte budget,
the total deadline) lives in :mod:`gateway.upstream`, never here.

It may import config, serving (the deadline timer, and aiohttp's private API, which only
``serving.server`` touches; through it telemetry and migration are reached), and the shared
:mod:`gateway.errors` and :mod:`gateway.models`; never the request pipeline (``upstream``,
``proxy``, ``app``, ...), the front doors, the tools or the simulator.
"""
