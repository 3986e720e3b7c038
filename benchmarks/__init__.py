"""Benchmarks: a synthetic fleet (fleet.py) and the measurements `make bench` runs (bench.py, the
entry point: measure.py runs one process, floor.py is the floor's script, scenario.py the runs,
report.py the rows, targets and output)."""
