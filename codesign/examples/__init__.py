"""Example models built in code (no downloads) for the tests, the demo and the benchmarks.

See :mod:`codesign.examples.models`.
"""
