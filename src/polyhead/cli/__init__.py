"""The `polyhead` command line. Heavy imports happen inside each command, so --help is instant."""
from .main import build_parser, main  # noqa: F401
