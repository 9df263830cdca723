"""polyhead: one shared transformer encoder, many task heads, one forward pass."""
__version__ = "0.1.0"

from .encoder import DEFAULT_MODEL, Encoder  # noqa: E402
from .errors import PolyheadError  # noqa: E402
from .model import MultiTaskModel, load  # noqa: E402
from .tasks import TaskSpec  # noqa: E402

__all__ = ["DEFAULT_MODEL", "Encoder", "MultiTaskModel", "PolyheadError", "TaskSpec", "load", "__version__"]
