"""Benchmarks that run a peer on the same workload in the same run (`make bench`)."""
