"""Configuration and rules as data: the option table, its value parsers, the one immutable
:class:`~gateway.config.settings.GatewayConfig`, the rule files, and their validation.

Everything here is pure parsing into plain values (addresses, dates, windows, names, host
patterns). It imports nothing of the gateway but :mod:`gateway.errors`; the parts that act on
these values (migration, serving, front doors) import config, never the reverse.
"""
