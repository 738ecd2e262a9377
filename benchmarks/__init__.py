"""``make bench``: ``python -m benchmarks.run_all`` from the repository root."""
