"""Embedding retention: the measure itself, and where a training run reports it (metrics.json,
curves.csv, the log, the model card, `polyhead info`, `polyhead evaluate`), plus the default anchor."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from polyhead import load
from polyhead.modeling.card import front_matter, read_folder
from polyhead.training import retention
from polyhead.training.config import DEFAULT_ANCHOR_WEIGHT, load_config
from polyhead.training.loop import train

from train_helpers import write_config


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


# -- the measure ----------------------------------------------------------------------------------
def test_an_unmoved_embedding_scores_one_on_every_measure():
    vecs = _unit(np.random.default_rng(0).normal(size=(40, 16)))
    assert retention.compare(vecs, vecs.copy()) == {"cosine": 1.0, "rank_agreement": 1.0, "neighbours": 1.0}


def test_a_rotation_moves_every_vector_but_keeps_every_ranking():
    rng = np.random.default_rng(1)
    vecs = _unit(rng.normal(size=(60, 16)))
    rotation, _ = np.linalg.qr(rng.normal(size=(16, 16)))
    moved = retention.compare(vecs, (vecs @ rotation).astype(np.float32))
    assert moved["cosine"] < 0.5  # every vector points elsewhere...
    assert moved["rank_agreement"] == pytest.approx(1.0, abs=1e-5) and moved["neighbours"] == 1.0  # ...search ranks the same


def test_noise_lowers_rank_agreement_and_neighbour_overlap_in_order():
    rng = np.random.default_rng(2)
    vecs = _unit(rng.normal(size=(80, 16)))
    small = retention.compare(vecs, _unit(vecs + 0.1 * rng.normal(size=vecs.shape)))
    large = retention.compare(vecs, _unit(vecs + 1.0 * rng.normal(size=vecs.shape)))
    assert 1.0 > small["rank_agreement"] > large["rank_agreement"]
    assert 1.0 >= small["neighbours"] > large["neighbours"]
    assert 1.0 > small["cosine"] > large["cosine"]


def test_the_warning_names_the_setting_only_below_the_threshold():
    moved = {"cosine": 0.7, "rank_agreement": 0.62, "neighbours": 0.3, "texts": 100}
    assert retention.retention_warning({**moved, "rank_agreement": 0.95}, 0.0) is None
    off = retention.retention_warning(moved, 0.0)
    assert off.startswith("warning: the sentence embedding moved") and "training.anchor_weight (now 0)" in off
    assert "\n" not in off
    assert "raise training.anchor_weight (now 1)" in retention.retention_warning(moved, 1.0)
    assert retention.retention_warning({"encoder_frozen": True}, 0.0) is None
    # A run with similarity tasks that all scored at least as well as before does not warn: it moved
    # the embedding, but where the user measures similarity it got no worse.
    assert retention.retention_warning({**moved, "similarity": {"sts": {"before": 0.8, "after": 0.85}}}, 1.0) is None
    assert retention.retention_warning({**moved, "similarity": {"sts": {"before": 0.8, "after": 0.75}}}, 1.0) is not None


# -- the default anchor ---------------------------------------------------------------------------
def test_the_anchor_is_on_by_default_whenever_the_encoder_trains(tmp_path):
    path = write_config(tmp_path, anchor_weight=None)
    assert load_config(path).training.anchor_weight is None
    assert load_config(path).anchor_weight == DEFAULT_ANCHOR_WEIGHT > 0
    assert load_config(path, ["freeze.encoder=true"]).anchor_weight == 0.0
    assert load_config(path, ["freeze.all=true"]).anchor_weight == 0.0
    assert load_config(path, ["freeze.layers=1"]).anchor_weight == DEFAULT_ANCHOR_WEIGHT  # the top layer still trains
    assert load_config(path, ["training.anchor_weight=0"]).anchor_weight == 0.0  # opting out is one setting
    assert load_config(path, ["training.anchor_weight=2.5"]).anchor_weight == 2.5


# -- a run reports it -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def unanchored(tmp_path_factory) -> tuple[Path, list[str], Path]:
    """The three-task tiny config trained with the anchor off and a high learning rate (the embedding moves)."""
    root = tmp_path_factory.mktemp("retention")
    config = write_config(root, epochs=2, anchor_weight=0.0, lr=3e-3)
    said: list[str] = []
    train(load_config(config), root / "model", progress=False, log=said.append)
    return root / "model", said, config


def test_metrics_json_curves_and_log_carry_the_kept_models_retention(unanchored):
    folder, said, _ = unanchored
    metrics = json.loads((folder / "training" / "metrics.json").read_text())
    moved = metrics["retention"]
    assert moved["split"] == "dev" and moved["texts"] > 10 and moved["anchor_weight"] == 0.0
    assert 0 < moved["cosine"] < 0.999 and moved["rank_agreement"] < 0.999
    # The similarity task's dev Spearman before training, and at the kept step (= its dev metric).
    sts = moved["similarity"]["sts"]
    assert sts["after"] == pytest.approx(metrics["dev"]["sts"]["spearman"], abs=1e-6)
    # (`before` is the untrained model's score: the next test checks it. On a dev set this small the
    # Spearman takes few values, so before and after can coincide although the embedding moved.)
    assert -1.0 <= sts["before"] <= 1.0
    # One curves.csv row per evaluation; the kept step's row holds the same numbers as metrics.json.
    lines = (folder / "training" / "curves.csv").read_text().splitlines()
    header = lines[0].split(",")
    rows = [dict(zip(header, line.split(","))) for line in lines[1:] if line.startswith("retention,")]
    assert [int(r["step"]) for r in rows] == [int(line.split(",")[1]) for line in lines[1:] if line.startswith("eval,") and ",topic," in line]
    kept = next(r for r in rows if int(r["step"]) == metrics["best_step"])
    assert float(kept["rank_agreement"]) == pytest.approx(moved["rank_agreement"])
    summary = next(m for m in said if m.startswith("embedding retention: "))
    assert f"rank agreement {moved['rank_agreement']:.3f}" in summary and "sts Spearman" in summary


def test_the_starting_encoder_scores_the_before_similarity(unanchored, tmp_path):
    """`before` is the untrained model's dev Spearman: a run with everything frozen scores exactly that."""
    folder, _, config = unanchored
    frozen = train(load_config(config, ["freeze.all=true"]), tmp_path / "frozen", progress=False)
    before = json.loads((folder / "training" / "metrics.json").read_text())["retention"]["similarity"]["sts"]["before"]
    assert frozen.dev["sts"]["spearman"] == pytest.approx(before, abs=1e-6)
    assert frozen.retention == {"encoder_frozen": True}
    assert json.loads((tmp_path / "frozen" / "training" / "metrics.json").read_text())["retention"] == {"encoder_frozen": True}


def test_training_warns_in_one_line_when_the_embedding_moved_past_the_threshold(tmp_path, monkeypatch):
    monkeypatch.setattr(retention, "WARN_BELOW", 1.01)  # any move at all counts
    path = write_config(tmp_path, epochs=1, anchor_weight=0.0)
    doc = yaml.safe_load(path.read_text())
    doc["tasks"] = [t for t in doc["tasks"] if t["kind"] != "similarity"]  # no similarity task vouches for it
    path.write_text(yaml.safe_dump(doc))
    said: list[str] = []
    train(load_config(path), tmp_path / "m", progress=False, log=said.append)
    warnings = [m for m in said if m.startswith("warning: the sentence embedding moved")]
    assert len(warnings) == 1 and "training.anchor_weight (now 0)" in warnings[0]


@pytest.mark.slow  # `make test-slow` (and CI) runs it
def test_card_info_and_evaluate_show_the_retention(unanchored, tmp_path):
    folder, _, config = unanchored
    moved = json.loads((folder / "training" / "metrics.json").read_text())["retention"]
    header = front_matter(read_folder(folder))
    assert header["embedding_retention"]["rank_agreement"] == moved["rank_agreement"]
    card = (folder / "README.md").read_text()
    assert card.startswith("---\n") and "embedding_retention:" in card.split("---")[1]
    assert f"rank agreement {moved['rank_agreement']:.3f}" in card and "anchor weight 0" in card
    cli = [sys.executable, "-m", "polyhead"]
    info = subprocess.run([*cli, "info", str(folder)], capture_output=True, text=True, check=True).stdout
    assert f"retention    : cosine {moved['cosine']:.3f}, rank agreement {moved['rank_agreement']:.3f}" in info
    as_json = json.loads(subprocess.run([*cli, "info", str(folder), "--json"], capture_output=True, text=True, check=True).stdout)
    assert as_json["embedding_retention"] == moved
    # evaluate: against where the config's training started (the tiny encoder folder), on dev texts.
    out = tmp_path / "eval.json"
    run = subprocess.run([*cli, "evaluate", str(folder), str(config), "-o", str(out)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    base = yaml.safe_load(Path(config).read_text())["encoder"]["model"]
    assert f"embedding retention against {base}: cosine {moved['cosine']:.3f}, rank agreement {moved['rank_agreement']:.3f}" in run.stdout
    doc = json.loads(out.read_text())
    assert doc["embedding_retention"]["rank_agreement"] == pytest.approx(moved["rank_agreement"], abs=1e-6)
    assert doc["embedding_retention"]["similarity"]["sts"] == pytest.approx(moved["similarity"]["sts"], abs=1e-6)
    # Against itself nothing moved; `none` skips the measurement.
    itself = subprocess.run([*cli, "evaluate", str(folder), str(config), "--against", str(folder)], capture_output=True, text=True)
    assert "cosine 1.000, rank agreement 1.000, 10-NN overlap 1.00" in itself.stdout, itself.stderr
    skipped = subprocess.run([*cli, "evaluate", str(folder), str(config), "--against", "none"], capture_output=True, text=True)
    assert skipped.returncode == 0 and "retention" not in skipped.stdout


def test_frozen_models_say_their_embedding_is_unchanged(tmp_path):
    config = write_config(tmp_path, epochs=1)
    train(load_config(config, ["freeze.encoder=true"]), tmp_path / "m", progress=False)
    info = subprocess.run([sys.executable, "-m", "polyhead", "info", str(tmp_path / "m")], capture_output=True, text=True, check=True).stdout
    assert "retention    : unchanged (the encoder was frozen)" in info
    assert "the sentence embedding against the base encoder's: unchanged" in (tmp_path / "m" / "README.md").read_text()


def test_the_default_anchor_holds_the_embedding_closer_than_none(unanchored, tmp_path):
    folder, _, config = unanchored
    held = train(load_config(config, ["training.anchor_weight=null"]), tmp_path / "held", progress=False)
    free = json.loads((folder / "training" / "metrics.json").read_text())["retention"]
    assert held.retention["anchor_weight"] == DEFAULT_ANCHOR_WEIGHT
    assert held.retention["cosine"] > free["cosine"] and held.retention["rank_agreement"] > free["rank_agreement"]
    assert load(tmp_path / "held").tasks.keys() == {"topic", "ner", "sts"}
