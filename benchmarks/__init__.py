"""Canopy's benchmarks (``make bench``, or ``python -m benchmarks [dispatch|http|loading|oauth]``).

Each benchmark prints its figures as ratios against a baseline measured in the same run;
none of them is a pass/fail test. See docs/performance.md for what each one measures.
"""
