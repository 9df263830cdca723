"""Markdown pieces shared by the reference pages: escaped prose, tables, relative links."""
from __future__ import annotations

import posixpath
import re
from collections.abc import Sequence

# The command that writes the pages (the Makefile runs `python -m polyhead.cli.reference`).
REGENERATE = "make docs-reference"
# Where the generated pages live, relative to the repository root: links are made relative to it.
PAGE_DIR = "docs/reference"
_DOC_PATH = re.compile(r"\bdocs/[A-Za-z0-9_./-]+\.md\b")


def link(path: str) -> str:
    """A repository path (docs/training.md, src/...) as a link relative to the reference pages."""
    return f"[{path}]({posixpath.relpath(path, PAGE_DIR)})"


def prose(text: str) -> str:
    """One line of Markdown from plain text: `code` spans kept, other text escaped where Markdown
    would read it as markup (| < * and a "](" that would start a link), docs/*.md paths linked."""
    text = " ".join(text.split())
    parts = text.split("`")
    if len(parts) % 2 == 0:  # an unmatched backtick: no code spans at all
        parts = [text.replace("`", "\\`")]
    out = []
    for i, part in enumerate(parts):
        if i % 2:  # inside a code span only the table separator needs escaping
            out.append("`" + part.replace("|", "\\|") + "`")
            continue
        for char in ("|", "<", "*"):
            part = part.replace(char, "\\" + char)
        part = part.replace("](", "]\\(")
        out.append(_DOC_PATH.sub(lambda m: link(m.group(0)), part))
    return "".join(out)


def sentences(parts: Sequence[str]) -> str:
    """Texts joined into one, a full stop between two where the first does not end in punctuation."""
    out = ""
    for part in (p for p in parts if p):
        if out and out[-1] not in ".;:!?":
            out += "."
        out = f"{out} {part}" if out else part
    return out


def code(value: str) -> str:
    """A code span (safe in a table cell), with enough backticks for a value holding some."""
    value = str(value).replace("|", "\\|")
    fence = "``" if "`" in value else "`"
    pad = " " if value.startswith("`") or value.endswith("`") else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A Markdown table's lines; empty cells become a dash."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell or "—" for cell in row) + " |" for row in rows]
    return lines


def generated_line(source: str) -> str:
    """The first line of every page: it is generated, from what, and by which command."""
    return (f"*Generated from {source} by `{REGENERATE}` (`python -m polyhead.cli.reference`): "
            "edit the source, not this page.*")
