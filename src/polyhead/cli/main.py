"""The `polyhead` entry point: parse, run one command, and turn expected failures into one line.

The parser lives in options.py and the commands in commands.py; heavy imports happen inside
each command, so `polyhead --help` is instant.
"""
from __future__ import annotations

import os
import sys
import warnings
from typing import Any, Iterable

from ..console import PROG
from ..errors import PolyheadError, RunStopped, StopNow
from .options import build_parser


def _format_warning(message: Any, category: Any, filename: str, lineno: int, line: str | None = None) -> str:
    return f"{PROG}: warning: {message}\n"


def main(argv: Iterable[str] | None = None) -> int:
    """Entry point: parse, run, and turn expected failures into one-line errors."""
    os.environ.setdefault("HF_HUB_OFFLINE", "0")
    warnings.formatwarning = _format_warning
    parser = build_parser()
    args, extra = parser.parse_known_args(list(argv) if argv is not None else None)
    if extra:
        # argparse stops collecting TEXT... at the first option; texts after options are still texts.
        if hasattr(args, "texts") and not any(e.startswith("-") and e != "-" for e in extra):
            args.texts = list(args.texts or []) + extra
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except PolyheadError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    except (RunStopped, StopNow) as exc:  # a stop signal: the run saved what it could and says so
        print(f"{PROG}: {exc}", file=sys.stderr)
        return exc.status
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `polyhead predict ... | head` closes the pipe early: not an error.
        try:
            sys.stdout = open(os.devnull, "w")
        except OSError:
            pass
        return 0
    except (OSError, ValueError) as exc:
        if os.environ.get("POLYHEAD_DEBUG"):
            raise
        print(f"{PROG}: error: {exc} (set POLYHEAD_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1
    except Exception as exc:
        # safetensors reports a full disk or an unreadable file as its own error type: one line too.
        if type(exc).__name__ != "SafetensorError" or os.environ.get("POLYHEAD_DEBUG"):
            raise
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        print(f"{PROG}: error: {first} (set POLYHEAD_DEBUG=1 for the traceback)", file=sys.stderr)
        return 1
