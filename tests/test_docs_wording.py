"""The user docs (README.md, docs/**/*.md) state facts for a user, not the history of the work, and
their relative links resolve.

docs/research/ is the dated research record: work-history wording ("part 12", "this session") is
its content there, and it is left out of both checks.
"""
from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "docs" / "research"


def user_docs() -> list[Path]:
    docs = sorted(p for p in (ROOT / "docs").rglob("*.md") if RECORD not in p.parents)
    return [ROOT / "README.md", *docs]


# Work-history wording: a work item's number ("issue 14", "issue-14", "issue #14"), a numbered part
# of a lab notebook ("part 12", "parts 9 to 11"), the session a measurement ran in, a machine that
# was or was not "lent". Tuned against legitimate text: "pair classification", "part files",
# "is part of" and "session affinity" do not match, nor a heading or label such as "Part 1:".
PROCESS = re.compile(
    r"\b[Ii]ssues?[ -]#?\d+"
    r"|\b[Pp]arts? \d+(?!\d|:)"
    r"|\b[Tt]his session\b|\b(?:next|earlier|previous|last) session\b"
    r"|\blent\b"
)
FENCE = re.compile(r"^\s*(```|~~~)")


def prose_lines(path: Path):
    """(line number, line) outside fenced code blocks and Markdown headings."""
    fenced = False
    for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if FENCE.match(line):
            fenced = not fenced
            continue
        if not fenced:
            yield no, line


def process_wording(path: Path) -> list[str]:
    hits = []
    for no, line in prose_lines(path):
        if line.lstrip().startswith("#"):
            continue  # a heading may be "Part 1: ..." in a tutorial
        for m in PROCESS.finditer(line):
            if m.group().lower().startswith("issue") and re.search(r"https?://", line):
                continue  # an upstream project's issue, linked
            hits.append(f"{path.relative_to(ROOT)}:{no}: {m.group()!r} in {line.strip()[:120]!r}")
    return hits


@pytest.mark.parametrize("path", user_docs(), ids=lambda p: str(p.relative_to(ROOT)))
def test_user_docs_have_no_work_history_wording(path: Path) -> None:
    assert process_wording(path) == []


def test_the_wording_check_catches_history_and_spares_legitimate_text(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text(
        "Closing the gap (issue 14), see part 12 and parts 9 to 11.\n"
        "It ran in this session; no GPU was lent.\n"
        "The issue-14 recipe.\n"
        "pair classification, a folder of part files, the teacher is not part of the model,\n"
        "no session affinity is needed; `part1-wordy-machines`.\n"
        "## Part 1: install\n"
        "```\npolyhead benchmark  # part 5\n```\n",
        encoding="utf-8",
    )
    found = [h.split(": ", 1)[1].split(" in ")[0] for h in _hits_in(doc)]
    assert found == ["'issue 14'", "'part 12'", "'parts 9'", "'this session'", "'lent'", "'issue-14'"]


def _hits_in(doc: Path) -> list[str]:
    hits = []
    for no, line in prose_lines(doc):
        if line.lstrip().startswith("#"):
            continue
        hits += [f"{doc.name}:{no}: {m.group()!r} in {line!r}" for m in PROCESS.finditer(line)]
    return hits


# [text](target) and ![alt](target), target without spaces, an optional "title" after it.
INLINE_LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
REFERENCE_LINK = re.compile(r"^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$")
INLINE_CODE = re.compile(r"`[^`]*`")


def relative_links(path: Path, same_file: bool = False) -> list[tuple[int, str]]:
    """(line number, target) of every relative link; with same_file, "#anchor" links too."""
    out = []
    for no, line in prose_lines(path):
        text = INLINE_CODE.sub("", line)
        targets = [m.group(1) for m in INLINE_LINK.finditer(text)]
        ref = REFERENCE_LINK.match(text)
        if ref:
            targets.append(ref.group(1))
        for target in targets:
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or (target.startswith("#") and not same_file):
                continue  # http(s), mailto, ...; an anchor in the same file
            out.append((no, target))
    return out


def broken_links(path: Path) -> list[str]:
    bad = []
    for no, target in relative_links(path):
        file_part = target.split("#", 1)[0]
        if not (path.parent / file_part).exists():
            bad.append(f"{path.relative_to(ROOT)}:{no}: {target}")
    return bad


@pytest.mark.parametrize("path", user_docs(), ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_point_to_existing_files(path: Path) -> None:
    assert broken_links(path) == []


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`|\*\*|__", "", heading.strip()).lower()
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link in a heading: its text
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: dict[str, int] = {}
    out = set()
    for _, line in prose_lines(path):
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            base = slug(m.group(1))
            n = seen.get(base, 0)
            seen[base] = n + 1
            out.add(base if n == 0 else f"{base}-{n}")
        out.update(re.findall(r"<a\s+(?:name|id)=\"([^\"]+)\"", line))
    return out


@pytest.mark.parametrize("path", user_docs(), ids=lambda p: str(p.relative_to(ROOT)))
def test_anchors_into_markdown_files_exist(path: Path) -> None:
    bad = []
    for no, target in relative_links(path, same_file=True):
        file_part, _, fragment = target.partition("#")
        dest = (path.parent / file_part) if file_part else path
        if fragment and dest.suffix == ".md" and dest.is_file() and fragment not in anchors(dest):
            bad.append(f"{path.relative_to(ROOT)}:{no}: {target}")
    assert bad == []
