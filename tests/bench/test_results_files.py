"""benchmarks/results/ holds the current results and archive/ the rest (benchmarks/results/README.md).

A results file at the top level is current when a current source names it by path: README.md,
the Markdown under docs/ except the research record (docs/research/),
benchmarks/README.md, configs/, src/polyhead/, benchmarks/*.py, or a test. A .json and the .md of
the same stem count as one. Every file in archive/ has its line in archive/INDEX.md.
"""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"
ARCHIVE = RESULTS / "archive"
NOT_RESULTS = {"README.md"}  # the folder's own description
TEXT = {".md", ".py", ".yaml", ".yml", ".json", ".txt", ".toml", ".cfg", ".js", ".html"}
# benchmarks/results/NAME (also ../benchmarks/results/NAME), results/NAME at the start of a path (as
# benchmarks/README.md writes it; not runs/results/NAME, which is elsewhere), or a Path joined as
# "benchmarks" / "results" / "NAME"; NAME may be a pattern: retention-*.json, soak-<backend>.json.
REFERENCE = re.compile(r"""(?:benchmarks/results/|(?<![\w./-])results/|["']benchmarks["']\s*/\s*["']results["']\s*/\s*["'])"""
                       r"""([\w.*<>-]+\.(?:json|md|csv))""")


def current_sources() -> list[Path]:
    """The files whose references make a results file current."""
    docs = [p for p in sorted((ROOT / "docs").rglob("*.md"))
            if "research" not in p.relative_to(ROOT / "docs").parts]
    trees = [ROOT / "configs", ROOT / "src" / "polyhead", ROOT / "tests"]
    files = [p for tree in trees for p in sorted(tree.rglob("*")) if p.is_file() and p.suffix in TEXT]
    return [ROOT / "README.md", ROOT / "benchmarks" / "README.md", *docs, *sorted((ROOT / "benchmarks").glob("*.py")), *files]


def named_patterns() -> dict[str, re.Pattern[str]]:
    """Every results file name or pattern the current sources give, as a regex over file names."""
    found: dict[str, re.Pattern[str]] = {}
    for source in current_sources():
        if source == Path(__file__).resolve():
            continue
        text = source.read_text(encoding="utf-8", errors="replace")
        for name in REFERENCE.findall(text):
            rx = re.sub(r"<[\w-]+>|\\\*", r"[\\w.-]+", re.escape(name).replace(r"\<", "<").replace(r"\>", ">"))
            found[name] = re.compile(rx + r"\Z")
    return found


def top_level_files() -> list[str]:
    return sorted(p.name for p in RESULTS.iterdir()
                  if p.is_file() and p.name not in NOT_RESULTS and not p.name.endswith(".lock"))


def test_every_top_level_results_file_is_named_by_a_current_source():
    patterns = named_patterns().values()
    names = top_level_files()
    named = {n for n in names if any(rx.match(n) for rx in patterns)}
    stems = {n.rsplit(".", 1)[0] for n in named}
    unnamed = [n for n in names if n not in named and not (n.endswith((".json", ".md")) and n.rsplit(".", 1)[0] in stems)]
    assert not unnamed, (
        f"{len(unnamed)} file(s) in benchmarks/results/ that no current source names: {unnamed}; cite each where its "
        "figures are discussed, or move it to benchmarks/results/archive/ and add it to INDEX.md "
        "(the rule: benchmarks/results/README.md)")


def test_every_archived_file_is_in_the_index():
    index = (ARCHIVE / "INDEX.md").read_text(encoding="utf-8")
    first_cells = [line.split("|")[1] for line in index.splitlines() if line.startswith("| `")]
    listed = {name for cell in first_cells for name in re.findall(r"`([^`]+)`", cell)}
    archived = sorted(p.name for p in ARCHIVE.iterdir() if p.is_file() and p.name != "INDEX.md")
    missing = [n for n in archived if n not in listed]
    assert not missing, f"files in benchmarks/results/archive/ without a line in its INDEX.md: {missing}"
    gone = sorted(listed - set(archived))
    assert not gone, f"benchmarks/results/archive/INDEX.md lists files that are not there: {gone}"
