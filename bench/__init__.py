"""Benchmarks (SPEC §9): ``python -m bench`` measures B1–B5 and writes bench/results/."""
