"""The house stays in order: packages import only downward with no cycles (import-linter,
configured in pyproject.toml), no private name crosses a package boundary, and no module grows
past ~500 lines without saying why at its top."""
from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "polyhead"
ROOT = SRC.parents[1]
MAX_LINES = 500


def _modules() -> list[Path]:
    return sorted(p for p in SRC.rglob("*.py") if "__pycache__" not in p.parts)


def _package_of(path: Path) -> str:
    rel = path.relative_to(SRC)
    return rel.parts[0] if len(rel.parts) > 1 else ""  # "" = the top level (console, io, errors)


def test_import_layers_and_no_cycles():
    exe = Path(sys.executable).with_name("lint-imports")
    cmd = [str(exe)] if exe.exists() else [shutil.which("lint-imports") or "lint-imports"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout


def _resolve(path: Path, node: ast.ImportFrom) -> str:
    """The absolute dotted module an ImportFrom names."""
    if node.level == 0:
        return node.module or ""
    parts = ["polyhead", *path.relative_to(SRC).with_suffix("").parts]
    if path.name != "__init__.py":
        parts = parts[:-1]
    else:
        parts = parts[:-1]  # the package itself
    base = parts[: len(parts) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def test_no_private_name_is_imported_across_packages():
    offenders = []
    for path in _modules():
        own = _package_of(path)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom):
                continue
            target = _resolve(path, node)
            if not target.startswith("polyhead"):
                continue
            tparts = target.split(".")
            target_pkg = tparts[1] if len(tparts) > 2 else ""
            if target_pkg == own:
                continue
            for alias in node.names:
                if alias.name.startswith("_") and not alias.name.startswith("__"):
                    offenders.append(f"{path.relative_to(ROOT)}: from {target} import {alias.name}")
    assert not offenders, "private names imported across packages:\n" + "\n".join(offenders)


def test_private_import_check_sees_an_offender(tmp_path):
    """The check above is not vacuous: it resolves relative imports to the right package."""
    fake = SRC / "serving" / "x.py"
    node = ast.parse("from ..modeling.encoder import _progress").body[0]
    assert _resolve(fake, node) == "polyhead.modeling.encoder"
    node = ast.parse("from .batcher import MicroBatcher").body[0]
    assert _resolve(fake, node) == "polyhead.serving.batcher"


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SRC)))
def test_long_modules_say_why(path):
    lines = path.read_text(encoding="utf-8").splitlines()
    if len(lines) <= MAX_LINES:
        return
    doc = ast.get_docstring(ast.parse("\n".join(lines))) or ""
    assert "why this module is long" in doc.lower(), (
        f"{path.relative_to(ROOT)} has {len(lines)} lines (> {MAX_LINES}): split it by concern, "
        "or say at its top, in a paragraph starting 'Why this module is long:', why it is one file"
    )


# -- task kinds own their behaviour ---------------------------------------------------------------
def _kind_names() -> set[str]:
    from polyhead.kinds import ALIASES, KINDS

    return set(KINDS) | set(ALIASES)


def kind_name_comparisons(source: str, names: set[str]) -> list[int]:
    """Lines of `source` that branch on a kind name: a comparison (==, !=, in, not in) of something
    named like a kind (`spec.kind`, `t["kind"]`, `kind`) with a kind-name string, or a dict literal
    keyed by two or more kind names (a per-kind lookup table)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            strings = []
            for op in operands:
                if isinstance(op, ast.Constant):
                    strings.append(op.value)
                elif isinstance(op, (ast.Tuple, ast.List, ast.Set)):
                    strings += [e.value for e in op.elts if isinstance(e, ast.Constant)]
            kindish = any("kind" in ast.unparse(op) for op in operands if not isinstance(op, ast.Constant))
            if kindish and any(isinstance(s, str) and s in names for s in strings):
                lines.append(node.lineno)
        elif isinstance(node, ast.Dict):
            keyed = [k for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str) and k.value in names]
            if len(keyed) >= 2:
                lines.append(node.lineno)
    return lines


def test_no_module_outside_the_kinds_package_compares_a_kind_name():
    names = _kind_names()
    offenders = []
    for path in _modules():
        if _package_of(path) == "kinds":
            continue
        for line in kind_name_comparisons(path.read_text(encoding="utf-8"), names):
            offenders.append(f"{path.relative_to(ROOT)}:{line}")
    assert not offenders, ("kind-specific branches outside polyhead/kinds (ask the kind: kind_of(spec.kind)):\n"
                           + "\n".join(offenders))


def test_kind_name_check_sees_an_offender():
    """The check above is not vacuous: it finds ==, in-tuple and dict-keyed kind branches."""
    names = {"classification", "token", "pair"}
    src = ("if spec.kind == 'token':\n    pass\n"
           "x = kind in ('classification', 'other')\n"
           "M = {'classification': 'accuracy', 'token': 'entity_f1'}\n"
           "y = spec.kind == other\n"
           "z = batch['kind'] != 'pair'\n"
           "header = ['id', 'token'] == row\n"
           "record = {'token': 1}\n")
    assert kind_name_comparisons(src, names) == [1, 3, 4, 6]
