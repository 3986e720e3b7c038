"""Benchmarks: a synthetic fleet (fleet.py) and the measurements `make bench` runs (bench.py)."""
