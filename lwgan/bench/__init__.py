"""Benchmarks behind `lwgan bench <name>`: each prints a table with ratios, or JSON."""
