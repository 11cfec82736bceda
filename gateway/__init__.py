"""marketplace-gateway: keeps Twilio Preview Marketplace clients working against Marketplace v1.

The public surface is :data:`__all__`: build a :class:`GatewayConfig` with :func:`load_config`
and serve :func:`create_app`. Everything else is internal. The names are imported on first use,
so ``import gateway.config.rules`` does not pull in the server.
"""

import typing as _typing

from gateway.version import __version__

__all__ = ["GatewayConfig", "__version__", "create_app", "load_config"]

if _typing.TYPE_CHECKING:
    from gateway.app import create_app
    from gateway.config.settings import GatewayConfig, load_config


def __getattr__(name: str) -> _typing.Any:
    if name == "create_app":
        from gateway.app import create_app

        return create_app
    if name in ("GatewayConfig", "load_config"):
        from gateway.config import settings

        return getattr(settings, name)
    raise AttributeError(f"module 'gateway' has no attribute {name!r}")
