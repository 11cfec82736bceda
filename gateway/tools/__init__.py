"""Offline command tools: ``report``, ``scan``, ``tls``, ``healthcheck`` and ``demo`` (with its
walkthrough).

Nothing on the request path imports this package (ruff's TID251 rule enforces it); only
:mod:`gateway.cli` wires these verbs in.
"""
