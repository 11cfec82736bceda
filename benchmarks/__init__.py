"""Benchmarks of the gateway (see benchmarks/README.md); not part of the test suite."""
