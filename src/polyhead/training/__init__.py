"""Joint training: config, data readers, task sampling, loss weighting, freezing, metrics,
checkpoints, the loop itself (loop.py), and heads on a frozen encoder (frozen.py: `fit_heads`)."""
from typing import Any

__all__ = ["fit_heads", "train", "load_config"]


def __getattr__(name: str) -> Any:
    # Lazy, so that `import polyhead.training.config` does not load torch through frozen.py.
    if name == "fit_heads":
        from .frozen import fit_heads

        return fit_heads
    if name == "train":
        from .api import train

        return train
    if name == "load_config":
        from .config import load_config

        return load_config
    raise AttributeError(f"module 'polyhead.training' has no attribute {name!r}")
