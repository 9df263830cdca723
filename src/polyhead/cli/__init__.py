"""The `polyhead` command line: main.py (entry point), options.py (parser), commands.py (one cmd_* each).
Heavy imports happen inside each command, so --help is instant."""
from .main import main  # noqa: F401
from .options import build_parser  # noqa: F401
