"""An export onto a full disk: one line naming the export, what was kept and what to do; the
earlier export and the model folder stay as they were (the failure is injected at a write)."""
from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

import pytest

pytest.importorskip("onnxruntime")

from polyhead import load  # noqa: E402
from polyhead.errors import PolyheadError  # noqa: E402
from polyhead.onnx import export as export_module  # noqa: E402
from polyhead.onnx import export_onnx  # noqa: E402


def test_an_export_onto_a_full_disk_keeps_the_earlier_export(tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "model"
    shutil.copytree(tiny_model_dir, folder)
    model = load(folder, device="cpu")
    out = export_onnx(model, folder / "onnx")
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    model_files = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file() and out not in p.parents}

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(export_module, "write_json_atomic", disk_full)  # the manifest, the last file written
    with pytest.raises(PolyheadError, match=rf"^could not write the export {out}: No space left on device; {out} is as it was, "
                                            r"and the model folder is untouched; free space and export again$"):
        export_onnx(model, out, force=True)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file() and out not in p.parents} == model_files
    assert not [p for p in folder.iterdir() if p.name.startswith(".onnx.tmp-")]  # no temporary folder left
