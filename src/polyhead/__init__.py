"""polyhead: one shared transformer encoder, many task heads, one forward pass."""
from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

from .errors import PolyheadError  # noqa: E402  (light: no torch)

# Heavy names load on first use, so `polyhead --help` and `import polyhead.datasets` stay fast.
_LAZY = {
    "DEFAULT_MODEL": "encoder",
    "Encoder": "encoder",
    "MultiTaskModel": "model",
    "load": "model",
    "TaskSpec": "tasks",
}

__all__ = ["DEFAULT_MODEL", "Encoder", "MultiTaskModel", "PolyheadError", "TaskSpec", "load", "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'polyhead' has no attribute {name!r}")
