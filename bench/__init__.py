"""Benchmarks (``python -m bench``) and data set generators."""
