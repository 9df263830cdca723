"""Running polyhead inside engines users already run: streaming corpus encoding into .npy shards
under `accelerate launch` (streaming.py), and Ray Data batch inference with actors that hold the
model (ray.py; the optional `[ray]` extra, imported only when used)."""
