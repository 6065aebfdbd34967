"""
Benchmarks: run by a command, never by the test suite.  See docs/benchmarks.md.
"""
