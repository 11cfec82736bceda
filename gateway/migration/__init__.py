"""What decides and shows a deprecated call's fate: who the consumer is, scheduled brownouts,
and the Deprecation/Sunset/Link headers.

It may import config and the shared :mod:`gateway.errors` and :mod:`gateway.models`; never
serving, ``app``, the front doors, the tools or the simulator.
"""
