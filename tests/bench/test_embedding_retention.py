"""benchmarks/embedding_retention.py: the kinds task set's config and its comparison with a baseline."""
from __future__ import annotations

import pytest
from script_loader import load_script


def _module():
    return load_script("benchmarks/embedding_retention.py")


def _row(seed: int, trec: float, sentiment: float) -> dict:
    return {"arm": "anchor-1-refit", "seed": seed, "test": {"trec": trec, "sentiment": sentiment}, "dev": {"trec": trec}}


def test_versus_pairs_seeds_and_calls_noise_from_both_sets():
    er = _module()
    base = [_row(42, 0.93, 0.80), _row(1, 0.94, 0.79), _row(2, 0.92, 0.78), _row(7, 0.10, 0.10)]
    # trec: level on average; sentiment: 5 points down on every seed, far past the seeds' spread.
    mine = [_row(42, 0.94, 0.75), _row(1, 0.92, 0.74), _row(2, 0.93, 0.73)]
    out = er.versus(mine, base)["anchor-1-refit"]
    assert out["seeds"] == [42, 1, 2]  # seed 7 has no partner and is left out
    trec, sentiment = out["test.trec"], out["test.sentiment"]
    assert trec["baseline_mean"] == pytest.approx(0.93) and trec["difference"] == pytest.approx(0.0, abs=1e-9)
    assert trec["per_seed"] == [pytest.approx(0.01), pytest.approx(-0.02), pytest.approx(0.01)]
    assert trec["within_noise"] is True
    assert sentiment["difference"] == pytest.approx(-0.05) and sentiment["within_noise"] is False
    assert out["dev.trec"]["within_noise"] is True
    assert "test.sentiment" in out and "dev.sentiment" not in out  # only what the baseline has


def test_kinds_config_adds_one_task_of_each_newer_kind(tmp_path, monkeypatch):
    """The kinds set is the benchmark set (without its similarity task) plus the three newer kinds,
    each reading its fetched dataset, on the same subset."""
    er = _module()
    seen = {}

    def fake_load(path, overrides, subset, work):
        import yaml

        seen.update(doc=yaml.safe_load(path.read_text()), overrides=overrides, subset=subset)
        raise RuntimeError("stop here")

    import polyhead.bench.harness as harness

    monkeypatch.setattr(harness, "load_run_config", fake_load)
    with pytest.raises(RuntimeError, match="stop here"):
        er.run_config("kinds", "anchor-1-refit", 1, tmp_path)
    tasks = {t["name"]: t for t in seen["doc"]["tasks"]}
    assert {"trec", "sentiment", "conll2003"} <= set(tasks)
    assert {tasks[n]["kind"] for n in ("sentiment_score", "conll2003_types", "stsb_equivalence")} == {
        "regression", "multilabel", "pair_classification"}
    assert tasks["conll2003_types"]["train"] == "{cache}/datasets/conll2003_types/train.jsonl"
    assert "training.seed=1" in seen["overrides"] and "training.anchor_weight=1.0" in seen["overrides"]
    assert seen["subset"].train_fraction == er.BENCHMARK_SUBSET["train_fraction"]
