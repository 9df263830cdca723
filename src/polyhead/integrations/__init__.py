"""Running polyhead inside engines users already run: streaming corpus encoding into .npy shards
under `accelerate launch` (streaming.py)."""
