"""What the gateway records: Prometheus metrics, the per-request recorder and the access log.

It may import config and migration (consumer labels); never serving, ``app``, the request
pipeline, the front doors, the tools or the simulator.
"""
