"""Benchmarks: `make bench` prints figures beside floors measured in the same run."""
