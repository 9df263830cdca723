"""The benchmark suite (benchmark.py) and the fetcher of its public datasets (datasets.py)."""
