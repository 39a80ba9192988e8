"""`scripts/bench`: Hearth's benchmark. Run `python -m benchmarks.bench --help` from the repository root."""
