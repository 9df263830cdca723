"""add_heads_to_folder: only the new head files, polyhead.json and the model card (README.md) are written;
every refusal changes nothing."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from polyhead import PolyheadError, TaskSpec, load
from polyhead.modeling import model as model_module
from polyhead.modeling.model import add_heads_to_folder, check_heads_addable, encoder_difference

from conftest import make_tiny_encoder

TEXTS = ["John Smith flew to Paris on Monday.", "The match was great", "hello", ""]
NEW = TaskSpec("mood", "classification", ["happy", "sad"])


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under folder (relative path -> bytes)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def head_outputs(model, tasks) -> list[dict]:
    """Each text's predictions for `tasks`, with probabilities as exact numpy arrays."""
    return [item["tasks"] for item in model.predict(TEXTS, tasks=tasks, embeddings=False)]


def assert_same_outputs(a: list[dict], b: list[dict]) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert set(x) == set(y)
        for task in x:
            for key, value in x[task].items():
                if isinstance(value, np.ndarray):
                    assert np.array_equal(value, y[task][key]), (task, key)
                else:
                    assert value == y[task][key], (task, key)


@pytest.fixture
def folder(tiny_model_dir, tmp_path) -> Path:
    """A private copy of the tiny saved model (topic, ner, sts)."""
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))


def one_line_error(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message
    return message


def test_adds_only_the_new_head_and_old_predictions_do_not_change(folder):
    before = snapshot(folder)
    model = load(folder, device="cpu")
    old = head_outputs(model, ["topic", "ner"])
    model.add_task(NEW)
    written = add_heads_to_folder(folder, model, ["mood"])

    assert written == [folder / "heads" / "mood.safetensors"]
    after = snapshot(folder)
    assert set(after) == set(before) | {"heads/mood.safetensors"}
    for name, data in before.items():
        if name not in ("polyhead.json", "README.md"):  # the card is rendered again (tests/modeling/test_card.py)
            assert after[name] == data, f"{name} was rewritten"
    old_cfg, new_cfg = json.loads(before["polyhead.json"]), json.loads(after["polyhead.json"])
    assert new_cfg["tasks"] == old_cfg["tasks"] + [NEW.to_dict()]
    assert {k: v for k, v in new_cfg.items() if k != "tasks"} == {k: v for k, v in old_cfg.items() if k != "tasks"}
    assert not [p for p in folder.rglob("*") if ".tmp" in p.name]

    again = load(folder, device="cpu")
    assert list(again.tasks) == ["topic", "ner", "sts", "mood"]
    assert_same_outputs(head_outputs(again, ["topic", "ner"]), old)
    mood = head_outputs(again, ["mood"])
    assert all(item["mood"]["label"] in ("happy", "sad") for item in mood)
    for name, tensor in model.heads["mood"].state_dict().items():
        assert torch.equal(again.heads["mood"].state_dict()[name], tensor)


def test_a_loaded_model_has_the_folders_encoder(folder):
    assert encoder_difference(load(folder, device="cpu").encoder, folder) is None


@pytest.mark.parametrize("change", ["weights", "pooling", "max_length", "normalize"])
def test_another_encoder_is_refused_and_nothing_changes(folder, change):
    before = snapshot(folder)
    model = load(folder, device="cpu")
    if change == "weights":  # the same architecture and choices, other weights
        other = make_tiny_encoder(seed=1)
        model.encoder.backbone.load_state_dict(other.backbone.state_dict())
    elif change == "pooling":
        model.encoder.pooling.mode = "cls"
    elif change == "max_length":
        model.encoder.max_length = 16
    else:
        model.encoder.normalize = not model.encoder.normalize
    model.add_task(NEW)
    with pytest.raises(PolyheadError) as exc:
        add_heads_to_folder(folder, model, ["mood"])
    assert "encoder is not this folder's" in one_line_error(exc)
    assert snapshot(folder) == before


def test_one_changed_encoder_weight_is_refused(folder):
    before = snapshot(folder)
    model = load(folder, device="cpu")
    with torch.no_grad():
        next(model.encoder.backbone.parameters()).view(-1)[0] += 1e-6
    model.add_task(NEW)
    with pytest.raises(PolyheadError, match="other values") as exc:
        add_heads_to_folder(folder, model, ["mood"])
    one_line_error(exc)
    assert snapshot(folder) == before


def test_an_existing_task_name_is_refused(folder):
    before = snapshot(folder)
    model = load(folder, device="cpu")
    with pytest.raises(PolyheadError, match="already has task") as exc:
        add_heads_to_folder(folder, model, ["topic"])
    one_line_error(exc)
    with pytest.raises(PolyheadError, match="more than once"):
        check_heads_addable(folder, ["mood", "mood"])
    with pytest.raises(PolyheadError, match="no heads to add"):
        check_heads_addable(folder, [])
    model.add_task(NEW)
    with pytest.raises(PolyheadError, match="has no task"):
        add_heads_to_folder(folder, model, ["nope"])
    assert snapshot(folder) == before


@pytest.mark.parametrize("what", ["empty", "other files", "foreign json", "missing"])
def test_a_folder_that_is_not_a_model_is_refused(folder, tmp_path, what):
    target = tmp_path / "target"
    if what != "missing":
        target.mkdir()
    if what == "other files":
        (target / "notes.txt").write_text("mine", encoding="utf-8")
    if what == "foreign json":
        (target / "polyhead.json").write_text(json.dumps({"format": "something-else"}), encoding="utf-8")
    before = snapshot(target) if target.exists() else None
    model = load(folder, device="cpu")
    model.add_task(NEW)
    with pytest.raises(PolyheadError, match="not a polyhead model|not a folder") as exc:
        add_heads_to_folder(target, model, ["mood"])
    one_line_error(exc)
    assert (snapshot(target) if target.exists() else None) == before


@pytest.mark.parametrize("locked", [".", "heads"])
def test_a_read_only_folder_is_refused(folder, locked):
    model = load(folder, device="cpu")
    model.add_task(NEW)
    before = snapshot(folder)
    where = folder / locked
    mode = where.stat().st_mode
    where.chmod(0o555)
    try:
        if os.access(where, os.W_OK):
            pytest.skip("running as root: chmod does not stop writing")
        with pytest.raises(PolyheadError, match="not writable") as exc:
            add_heads_to_folder(folder, model, ["mood"])
        one_line_error(exc)
    finally:
        where.chmod(mode)
    assert snapshot(folder) == before


def test_a_permission_error_while_writing_removes_the_new_heads(folder, monkeypatch):
    """Writes that fail half way (here polyhead.json) leave the folder as it was."""
    model = load(folder, device="cpu")
    model.add_task(NEW)
    model.add_task(TaskSpec("tags", "token", ["O", "B-X", "I-X"]))
    before = snapshot(folder)

    def refuse(path, data):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(model_module, "write_json_atomic", refuse)
    with pytest.raises(PolyheadError, match="not writable") as exc:
        add_heads_to_folder(folder, model, ["mood", "tags"])
    one_line_error(exc)
    assert snapshot(folder) == before


def test_no_write_permission_is_checked_before_any_work(folder, monkeypatch):
    """The os.access check itself (the chmod test above is skipped when running as root)."""
    model = load(folder, device="cpu")
    model.add_task(NEW)
    before = snapshot(folder)
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **kw: False if Path(p) == folder else real(p, mode, **kw))
    with pytest.raises(PolyheadError, match="not writable") as exc:
        add_heads_to_folder(folder, model, ["mood"])
    one_line_error(exc)
    assert snapshot(folder) == before
