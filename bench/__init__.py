"""Benchmarks with budgets: `.venv/bin/python bench/run.py` (see docs/benchmarks.md)."""
