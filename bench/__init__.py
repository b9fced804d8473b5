"""Benchmarks: each module starts its own stack, prints a markdown table and stops it."""
