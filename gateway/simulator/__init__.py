"""Embedded Marketplace v1 simulator (plus the 2010 IncomingPhoneNumber AssignedAddOns API).

A standalone aiohttp app with in-memory state; the gateway core never imports it.
"""

from __future__ import annotations

from .app import create_simulator_app
from .seed import Seed, load_seed

__all__ = ["Seed", "create_simulator_app", "load_seed"]
