"""Benchmarks: each bench_*.py writes bench/results/<name>.json; `python -m bench` runs them and prints a table."""
