"""Old flat module names (polyhead.serve, polyhead.export, polyhead.config, ...) still import, for
one release, with a DeprecationWarning that names the new place.

One is gone early: `polyhead.train` is now the training function (`polyhead.train(config,
output_dir, data=...)`). Importing a module under that name would replace the function on the
package (the import system sets the attribute), so `import polyhead.train` fails with a message
that names the 0.1 module's new place, polyhead.training.loop.

0.1 had one flat module per concept; 0.2 groups them into packages by concern (modeling,
training, serving, onnx, cli, bench, integrations). A meta-path finder answers the old names
with the new modules themselves (same objects, so monkeypatching either name patches both),
instead of leaving a shim file per old name at the top of the package.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.util
import sys
import warnings
from typing import Any

REMOVED_IN = "0.3"
# Old module names that are public functions now: importing them says where the module went.
NOW_FUNCTIONS = {"polyhead.train": ("polyhead.training.loop", "polyhead.train(config, output_dir, data=...)")}
MOVED = {
    "polyhead.serve": "polyhead.serving",
    "polyhead.export": "polyhead.onnx",
    "polyhead.config": "polyhead.training.config",
    "polyhead.data": "polyhead.training.data",
    "polyhead.sampling": "polyhead.training.sampling",
    "polyhead.weighting": "polyhead.training.weighting",
    "polyhead.freezing": "polyhead.training.freezing",
    "polyhead.metrics": "polyhead.training.metrics",
    "polyhead.checkpoint": "polyhead.training.checkpoint",
    "polyhead.encoder": "polyhead.modeling.encoder",
    "polyhead.model": "polyhead.modeling.model",
    "polyhead.heads": "polyhead.modeling.heads",
    "polyhead.tasks": "polyhead.modeling.tasks",
    "polyhead.tagging": "polyhead.modeling.tagging",
    "polyhead.streaming": "polyhead.integrations.streaming",
    "polyhead.datasets": "polyhead.bench.datasets",
    "polyhead.benchmark": "polyhead.bench.benchmark",
    "polyhead.demo": "polyhead.cli.demo",
}


class _MovedModuleFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves an old module name to the module at its new place."""

    def __init__(self) -> None:
        self._specs: dict[str, Any] = {}  # old name -> the new module's own spec, restored below

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        if fullname in NOW_FUNCTIONS:
            module, call = NOW_FUNCTIONS[fullname]
            raise ImportError(f"{fullname} is a function now ({call}); the 0.1 module {fullname} is {module}", name=fullname)
        if fullname not in MOVED:
            return None
        return importlib.util.spec_from_loader(fullname, self)

    def create_module(self, spec: Any) -> Any:
        new = MOVED[spec.name]
        warnings.warn(
            f"{spec.name} moved to {new}; the old name stops working in polyhead {REMOVED_IN}",
            DeprecationWarning,
            stacklevel=2,
        )
        module = importlib.import_module(new)
        self._specs[spec.name] = module.__spec__
        return module

    def exec_module(self, module: Any) -> None:
        """Nothing to run; only give the module back its own spec.

        The import system sets `__spec__` to the alias' spec after create_module; left so, the
        module's relative imports would resolve against the old parent (an ImportWarning, and
        the wrong package)."""
        module.__spec__ = self._specs.pop(module.__spec__.name)


def install() -> None:
    """Put the finder on sys.meta_path once."""
    if not any(isinstance(f, _MovedModuleFinder) for f in sys.meta_path):
        sys.meta_path.append(_MovedModuleFinder())
