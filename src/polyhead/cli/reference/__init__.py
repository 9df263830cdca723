"""The reference pages that cannot drift: docs/reference/config.md from the config declarations
(training/config.py) and docs/reference/cli.md from the `polyhead` argument parser.

    python -m polyhead.cli.reference          # (re)write both pages; run in the repository root
    python -m polyhead.cli.reference --check  # exit 1, naming the stale page, when one differs

`make docs-reference` runs the first; tests/test_docs_reference.py does what the second does.
This is a module, not a `polyhead` subcommand: it writes the project's documentation.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from .markdown import PAGE_DIR, REGENERATE

__all__ = ["PAGES", "REGENERATE", "main", "render", "stale_pages"]


def _config() -> str:
    from .config_page import config_page

    return config_page()


def _cli() -> str:
    from .cli_page import cli_page

    return cli_page()


# Each page, relative to the repository root, and what writes it.
PAGES: dict[str, Callable[[], str]] = {
    f"{PAGE_DIR}/config.md": _config,
    f"{PAGE_DIR}/cli.md": _cli,
}


def render() -> dict[str, str]:
    """Every page's text as the code generates it now."""
    return {path: make() for path, make in PAGES.items()}


def stale_pages(root: Path, pages: dict[str, str] | None = None) -> list[str]:
    """The pages under `root` that are missing or differ from what the code generates."""
    pages = render() if pages is None else pages
    stale = []
    for path, text in pages.items():
        file = root / path
        if not file.is_file() or file.read_text(encoding="utf-8") != text:
            stale.append(path)
    return stale


def main(argv: Sequence[str] | None = None) -> int:
    """Write the reference pages, or with --check say which one is stale."""
    parser = argparse.ArgumentParser(
        prog="python -m polyhead.cli.reference",
        description=f"Generate {', '.join(PAGES)} from the code.",
    )
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if a page is missing or stale")
    parser.add_argument("--root", default=".", help="the repository root (default: the current folder)")
    args = parser.parse_args(argv)
    root = Path(args.root)
    if not (root / "docs").is_dir():
        print(f"{parser.prog}: error: {root.resolve()} has no docs/ folder; run it in the repository root "
              "or give --root", file=sys.stderr)
        return 2
    pages = render()
    if args.check:
        stale = stale_pages(root, pages)
        if stale:
            print(f"{', '.join(stale)} {'is' if len(stale) == 1 else 'are'} stale: regenerate with `{REGENERATE}` "
                  f"(or `python -m polyhead.cli.reference`)", file=sys.stderr)
            return 1
        return 0
    for path, text in pages.items():
        file = root / path
        if file.is_file() and file.read_text(encoding="utf-8") == text:
            print(f"{path}: up to date")
            continue
        file.parent.mkdir(parents=True, exist_ok=True)
        with open(file, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
        print(f"{path}: written")
    return 0
