"""`polyhead add-head` as a user runs it: new heads in, the encoder and old heads byte-identical,
and every refusal (existing name, other encoder, read-only or foreign folder) one line that changes nothing."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from polyhead import load

from train_helpers import tiny_encoder_dir, write_data

TEXTS = ["Anna lives in Paris .", "the team won the match", "software update fixes bugs", ""]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "polyhead.cli", "add-head", *map(str, args), "--no-progress"],
        capture_output=True, text=True, timeout=300,
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def outputs(folder: Path, tasks: list[str]) -> list[dict]:
    return [item["tasks"] for item in load(folder, device="cpu").predict(TEXTS, tasks=tasks, embeddings=False)]


def assert_same(a: list[dict], b: list[dict]) -> None:
    for x, y in zip(a, b, strict=True):
        assert set(x) == set(y)
        for task in x:
            for key, value in x[task].items():
                same = np.array_equal(value, y[task][key]) if isinstance(value, np.ndarray) else value == y[task][key]
                assert same, (task, key)


def assert_one_line_error(out: subprocess.CompletedProcess, message: str) -> None:
    assert out.returncode == 1, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("polyhead: error:"), out.stderr
    assert message in lines[0], lines[0]


@pytest.fixture
def model_dir(tiny_model_dir, tmp_path) -> Path:
    """A private copy of the tiny saved model (topic, ner, sts)."""
    return Path(shutil.copytree(tiny_model_dir, tmp_path / "model"))


def write_config(tmp_path: Path, tasks=("topic2", "ner2"), encoder: dict | None = None) -> Path:
    """A config whose tasks are new: a classification task and a token task on the helpers' data."""
    paths = write_data(tmp_path / "data")
    entries = {
        "topic2": {"kind": "classification", "train": str(paths["topic_train"]), "dev": str(paths["topic_dev"])},
        "ner2": {"kind": "token", "train": str(paths["ner_train"]), "dev": str(paths["ner_dev"])},
    }
    cfg = {"tasks": [{"name": name, **entries[name if name in entries else "topic2"]} for name in tasks]}
    if encoder is not None:
        cfg["encoder"] = encoder
    path = tmp_path / "new-tasks.yaml"
    path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    return path


def check_added(before: dict[str, bytes], folder: Path, old_outputs: list[dict]) -> None:
    """Only heads/topic2 and heads/ner2 are new, only polyhead.json and the card changed, old heads predict the same."""
    after = snapshot(folder)
    assert set(after) == set(before) | {"heads/topic2.safetensors", "heads/ner2.safetensors"}
    changed = [name for name, data in before.items() if after[name] != data]
    assert changed == ["README.md", "polyhead.json"]
    assert "| topic2 | classification | sports, tech |" in after["README.md"].decode()
    assert [t["name"] for t in json.loads(after["polyhead.json"])["tasks"]] == ["topic", "ner", "sts", "topic2", "ner2"]
    assert_same(outputs(folder, ["topic", "ner"]), old_outputs)
    new = outputs(folder, ["topic2", "ner2"])
    assert all(item["topic2"]["label"] in ("sports", "tech") for item in new)
    assert all(isinstance(item["ner2"]["entities"], list) for item in new)


def test_add_head_in_place_keeps_the_encoder_and_old_heads_bit_identical(model_dir, tmp_path):
    before = snapshot(model_dir)
    old = outputs(model_dir, ["topic", "ner"])
    out = run(model_dir, write_config(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "topic2: dev accuracy" in out.stderr and "ner2: dev" in out.stderr
    assert f"added topic2, ner2 to {model_dir}" in out.stderr
    check_added(before, model_dir, old)
    assert not [p for p in model_dir.parent.rglob("*") if ".tmp" in p.name]


def test_output_adds_the_heads_to_a_copy_and_leaves_the_model_untouched(model_dir, tmp_path):
    before = snapshot(model_dir)
    old = outputs(model_dir, ["topic", "ner"])
    copy = tmp_path / "runs" / "with-new-heads"
    out = run(model_dir, write_config(tmp_path), "--output", copy)
    assert out.returncode == 0, out.stderr
    assert snapshot(model_dir) == before
    check_added(before, copy, old)
    assert not [p for p in copy.parent.iterdir() if p.name != copy.name]  # no temp folder left beside it


def _not_a_model(tmp_path: Path) -> Path:
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "notes.txt").write_text("not a model", encoding="utf-8")
    return folder


@pytest.mark.parametrize(
    "case,message",
    [
        ("existing task", "already has task(s) topic"),
        ("other encoder model", "encoder.model is"),
        ("other pooling", "encoder.pooling is 'cls'"),
        ("other encoder via --set", "encoder.max_length is 16"),
        ("not a model", "is not a polyhead model"),
        ("output not empty", "is not empty"),
        ("output inside the model", "is inside"),
        ("read-only folder", "is not writable"),
    ],
)
def test_refusals_are_one_line_and_change_nothing(model_dir, tmp_path, case, message):
    folder, extra = model_dir, []
    config = write_config(tmp_path)
    if case == "existing task":
        config = write_config(tmp_path, tasks=("topic2", "topic"))
    elif case == "other encoder model":
        config = write_config(tmp_path, encoder={"model": str(tiny_encoder_dir(tmp_path))})
    elif case == "other pooling":
        config = write_config(tmp_path, encoder={"pooling": "cls"})
    elif case == "other encoder via --set":
        extra = ["--set", "encoder.max_length=16"]
    elif case == "not a model":
        folder = _not_a_model(tmp_path)
    elif case == "output not empty":
        busy = tmp_path / "busy"
        busy.mkdir()
        (busy / "keep.txt").write_text("mine", encoding="utf-8")
        extra = ["--output", str(busy)]
    elif case == "output inside the model":
        extra = ["--output", str(model_dir / "copy")]
    before = snapshot(tmp_path)
    if case == "read-only folder":
        model_dir.chmod(0o555)
        if os.access(model_dir, os.W_OK):
            model_dir.chmod(0o755)
            pytest.skip("running as root: chmod does not stop writing (tests/modeling covers the check)")
    try:
        out = run(folder, config, *extra)
    finally:
        model_dir.chmod(0o755)
    assert_one_line_error(out, message)
    assert "fitting" not in out.stderr  # refused before any training
    assert snapshot(tmp_path) == before
