"""Disk full, read-only and other write failures while saving a checkpoint or a model: one line
naming the file, what was kept and what to do; nothing half-written left where a load would read
it; after the failure, --resume continues from the last complete checkpoint. The failures are
injected at the write calls (safetensors reports a full disk as SafetensorError with the OS text)."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from polyhead import load
from polyhead.errors import PolyheadError
from polyhead.modeling import model as model_module
from polyhead.training.config import load_config
from polyhead.training.loop import train

from train_helpers import write_config

OVERRIDES = ["training.epochs=1", "training.checkpoint_every=2", "tasks.topic.dev=null", "tasks.ner.dev=null", "tasks.sts.dev=null"]
DISK_FULL = 'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })'


def weights(folder: Path) -> dict[str, torch.Tensor]:
    out = {f"encoder.{k}": v for k, v in load_file(str(folder / "encoder" / "model.safetensors")).items()}
    for f in (folder / "heads").glob("*.safetensors"):
        out.update({f"{f.stem}.{k}": v for k, v in load_file(str(f)).items()})
    return out


def fail_writes_after(monkeypatch: pytest.MonkeyPatch, calls: int, error: BaseException) -> dict:
    """Let `calls` safetensors writes of model folders succeed, then fail every later one."""
    real = model_module.save_file
    seen = {"n": 0, "on": True}

    def save_file(*args, **kwargs):
        seen["n"] += 1
        if seen["on"] and seen["n"] > calls:
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(model_module, "save_file", save_file)
    return seen


def test_a_full_disk_at_a_checkpoint_keeps_the_last_one_and_resume_finishes_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = write_config(tmp_path)
    full = tmp_path / "full"
    train(load_config(config, OVERRIDES), full, progress=False)
    out = tmp_path / "run"
    heads = 3  # topic, ner, sts: one safetensors write each per model save (the encoder goes through save_pretrained)
    switch = fail_writes_after(monkeypatch, heads, SafetensorError(DISK_FULL))  # the step-2 checkpoint succeeds
    with pytest.raises(PolyheadError) as err:
        train(load_config(config, OVERRIDES), out, progress=False)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(f"could not write checkpoint {out / 'checkpoints' / 'step-0000004'}: No space left on device; ")
    assert "the last complete checkpoint (step-0000002) is kept; free space (or fix the folder), then continue with --resume" in message
    left = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert left == ["latest", "step-0000002"]  # no half-written folder, no temp folder
    switch["on"] = False  # space freed
    train(load_config(config, OVERRIDES), out, resume=True, progress=False)
    a, b = weights(full), weights(out)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("error, reason", [
    (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), "No space left on device"),
    (OSError(errno.EROFS, os.strerror(errno.EROFS)), "Read-only file system"),
    (SafetensorError(DISK_FULL), "No space left on device"),
])
def test_saving_a_model_onto_a_full_disk_leaves_the_old_folder_as_it_was(tmp_path: Path, tiny_model_dir: Path,
                                                                        monkeypatch: pytest.MonkeyPatch, error: BaseException, reason: str) -> None:
    model = load(tiny_model_dir, device="cpu")
    folder = model.save(tmp_path / "model")
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    fail_writes_after(monkeypatch, 0, error)
    with pytest.raises(PolyheadError, match=rf"^could not write the model folder {folder}: {reason}; {folder} is as it was; free space"):
        model.save(folder)
    after = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    assert after == before
    assert [p.name for p in tmp_path.iterdir()] == ["model"]  # the temporary folder is gone
