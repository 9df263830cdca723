"""Joint training: config, data readers, task sampling, loss weighting, freezing, metrics,
checkpoints, and the loop itself (loop.py)."""
