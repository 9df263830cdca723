"""polyhead: one shared transformer encoder, many task heads, one forward pass."""
from __future__ import annotations

from typing import Any

__version__ = "0.2.0"

from .errors import PolyheadError  # noqa: E402  (light: no torch)
from . import _compat  # noqa: E402

_compat.install()  # the 0.1 module names (polyhead.serve, ...) keep importing, with a warning

# Heavy names load on first use, so `polyhead --help` and `import polyhead.bench.datasets` stay fast.
_LAZY = {
    "DEFAULT_MODEL": "modeling.encoder",
    "Encoder": "modeling.encoder",
    "MultiTaskModel": "modeling.model",
    "load": "modeling.model",
    "TaskSpec": "modeling.tasks",
    "train": "training.api",
    "tune": "training.tune",
    "fit_heads": "training.frozen",
    "load_config": "training.config",
    "RunConfig": "training.config",
    "Callback": "training.callbacks",
    "Progress": "training.callbacks",
}

__all__ = ["DEFAULT_MODEL", "Callback", "Encoder", "MultiTaskModel", "PolyheadError", "Progress", "RunConfig", "TaskSpec",
           "fit_heads", "load", "load_config", "train", "tune", "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'polyhead' has no attribute {name!r}")
