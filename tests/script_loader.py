"""Load a script that is not part of the package (benchmarks/, tools/, examples/) as a module, by its path."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def load_script(relative: str) -> ModuleType:
    """The script at REPO/relative, executed as a module named after its file; its folder goes on
    sys.path first so that it can import its neighbours (benchmarks/soak.py imports load_test)."""
    path = REPO / relative
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module
