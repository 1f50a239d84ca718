"""Benchmarks: Tenure measured against hand-written floors in the same run (`python -m bench`)."""
