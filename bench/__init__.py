"""Benchmarks: each prints JSON figures, side by side with its baseline."""
