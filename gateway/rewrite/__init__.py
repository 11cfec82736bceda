"""The byte-preserving response rewrite: pure functions over bytes that map upstream URLs in a
JSON body back to the gateway (with the optional C accelerator, ``_rewrite_accel``), and the
content codings around them.

It imports nothing of the gateway but :mod:`gateway.errors`, :mod:`gateway.models` and
:mod:`gateway.config` (the rule templates that ``link_map`` compiles). No network, no server.
"""
