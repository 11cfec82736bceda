"""marketplace-gateway: keeps Twilio Preview Marketplace clients working against Marketplace v1."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
