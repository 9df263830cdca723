"""`polyhead export` never loses work (issue 11): the output folder is replaced only when it is
missing, empty or a previous export, or with --force; the model folder itself never."""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

from conftest import make_tiny_encoder  # noqa: E402

from polyhead import PolyheadError, load  # noqa: E402
from polyhead.cli.commands import cmd_export as export_cli
from polyhead.onnx import MANIFEST, OnnxModel, export_onnx  # noqa: E402

TEXTS = ["Anna Schmidt flew from Berlin to Paris.", "ok", "Bob lives in London."]


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file under folder with its bytes, to show that nothing changed."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _args(model_dir: Path, output: Path | None, force: bool) -> argparse.Namespace:
    return argparse.Namespace(
        model_dir=str(model_dir), format="onnx", quantize=None, output=str(output) if output else None, force=force
    )


def _no_leftovers(parent: Path) -> None:
    assert [p.name for p in parent.iterdir() if p.name.startswith(".")] == []


def test_export_onto_the_model_folder_is_refused_even_with_force(tmp_path: Path, tiny_model_dir: Path) -> None:
    folder = tmp_path / "m"
    shutil.copytree(tiny_model_dir, folder)
    before_files = _tree(folder)
    before = load(folder, device="cpu").predict(TEXTS)
    for force in (False, True):
        with pytest.raises(PolyheadError, match=r"is the model being exported: exporting there would delete it, even with --force") as err:
            export_cli(_args(folder, folder, force))
        assert "\n" not in str(err.value) and str(folder / "onnx") in str(err.value)
    # A folder above the model would delete it too; the library refuses a model folder by its polyhead.json.
    with pytest.raises(PolyheadError, match="holds the model being exported"):
        export_cli(_args(folder, tmp_path, True))
    with pytest.raises(PolyheadError, match="is a polyhead model folder"):
        export_onnx(load(folder, device="cpu"), folder, force=True)
    assert _tree(folder) == before_files
    _no_leftovers(tmp_path)
    after = load(folder, device="cpu").predict(TEXTS)
    for a, b in zip(before, after):
        np.testing.assert_array_equal(a["embedding"], b["embedding"])
        assert a["tasks"] == b["tasks"]


def test_export_onto_an_unrelated_folder_is_refused_and_leaves_it_alone(tmp_path: Path) -> None:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "thesis.txt").write_text("three years of work", encoding="utf-8")
    (notes / "data").mkdir()
    (notes / "data" / "table.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    before = _tree(notes)
    with pytest.raises(PolyheadError, match=r"is not empty and is not an ONNX export \(no polyhead-onnx.json\); .*--force"):
        export_onnx(make_tiny_encoder(), notes)
    assert _tree(notes) == before
    _no_leftovers(tmp_path)
    # A file where the folder should go is refused even with force (only folders are replaced).
    paper = tmp_path / "paper.txt"
    paper.write_text("draft", encoding="utf-8")
    with pytest.raises(PolyheadError, match="exists and is not a folder"):
        export_onnx(make_tiny_encoder(), paper, force=True)
    assert paper.read_text(encoding="utf-8") == "draft"


def test_export_onto_a_previous_export_replaces_it(tmp_path: Path, tiny_model_dir: Path) -> None:
    out = tmp_path / "onnx"
    assert export_cli(_args(tiny_model_dir, out, False)) == 0
    first = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    (out / "stale.txt").write_text("from the previous export", encoding="utf-8")
    enc = make_tiny_encoder(pooling="cls")
    export_onnx(enc, out)  # no force needed: the folder is a previous export
    assert not (out / "stale.txt").exists()
    second = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    assert first["tasks"] and second["tasks"] == {}
    np.testing.assert_allclose(OnnxModel.load(out).encode(TEXTS), enc.encode(TEXTS), atol=1e-4)
    _no_leftovers(tmp_path)


def test_export_onto_an_unrelated_folder_with_force_replaces_it(tmp_path: Path, tiny_model_dir: Path) -> None:
    out = tmp_path / "scratch"
    out.mkdir()
    (out / "old.txt").write_text("disposable", encoding="utf-8")
    assert export_cli(_args(tiny_model_dir, out, True)) == 0
    assert not (out / "old.txt").exists() and (out / MANIFEST).is_file()
    assert set(OnnxModel.load(out).tasks) == {"topic", "ner", "sts"}
    # The library takes force too: an unrelated folder is replaced by an encoder-only export.
    other = tmp_path / "other"
    other.mkdir()
    (other / "old.txt").write_text("disposable", encoding="utf-8")
    export_onnx(make_tiny_encoder(), other, force=True)
    assert {p.name for p in other.iterdir()} == {MANIFEST, "model.onnx", "tokenizer"}
    _no_leftovers(tmp_path)
