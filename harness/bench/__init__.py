"""Benchmarks that check the harness's speed targets and print a table (``harness bench ...``)."""
