"""benchmarks/embedding_retention.py: the kinds task set's config and its comparison with a baseline."""
from __future__ import annotations

import pytest
from script_loader import load_script


def _module():
    return load_script("benchmarks/embedding_retention.py")


def _row(seed: int, trec: float, sentiment: float) -> dict:
    return {"arm": "anchor-1-refit", "seed": seed, "test": {"trec": trec, "sentiment": sentiment}, "dev": {"trec": trec}}


def _kinds_config(er, monkeypatch, *args, **kwargs) -> dict:
    """What run_config hands to load_run_config for the kinds set: the YAML, overrides and subset."""
    seen = {}

    def fake_load(path, overrides, subset, work):
        import yaml

        seen.update(doc=yaml.safe_load(path.read_text()), overrides=overrides, subset=subset)
        raise RuntimeError("stop here")

    import polyhead.bench.harness as harness

    monkeypatch.setattr(harness, "load_run_config", fake_load)
    with pytest.raises(RuntimeError, match="stop here"):
        er.run_config("kinds", *args, **kwargs)
    return seen


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
    seen = _kinds_config(er, monkeypatch, "anchor-1-refit", 1, tmp_path)
    tasks = {t["name"]: t for t in seen["doc"]["tasks"]}
    assert {"trec", "sentiment", "conll2003"} <= set(tasks)
    assert {tasks[n]["kind"] for n in ("sentiment_score", "conll2003_types", "stsb_equivalence")} == {
        "regression", "multilabel", "pair_classification"}
    assert tasks["conll2003_types"]["train"] == "{cache}/datasets/conll2003_types/train.jsonl"
    assert "training.seed=1" in seen["overrides"] and "training.anchor_weight=1.0" in seen["overrides"]
    assert seen["subset"].train_fraction == er.BENCHMARK_SUBSET["train_fraction"]


def _curves(tmp_path):
    """A run's curves.csv: loss rows, two evaluations of two tasks, the second with test scores."""
    path = tmp_path / "curves.csv"
    path.write_text(
        "type,step,epoch,task,loss,weight,lr,accuracy,entity_f1\n"
        "train,10,1,trec,0.9,1.0,0.0001,,\n"
        "eval,50,1,trec,,,,0.90,\n"
        "eval,50,1,conll2003,,,,,0.70\n"
        "eval-test,50,1,trec,,,,0.93,\n"
        "eval-test,50,1,conll2003,,,,,0.72\n"
        "eval,100,2,trec,,,,0.92,\n"
        "eval,100,2,conll2003,,,,,0.69\n"
        "eval-test,100,2,trec,,,,0.94,\n"
        "eval-test,100,2,conll2003,,,,,0.68\n"
        "eval,100,2,other,,,,0.10,\n")
    return path


def test_evals_reads_each_evaluation_from_curves(tmp_path):
    er = _module()
    out = er.evals(_curves(tmp_path), {"trec": "accuracy", "conll2003": "entity_f1"})
    assert [e["step"] for e in out] == [50, 100] and [e["epoch"] for e in out] == [1, 2]
    assert out[0]["dev"] == {"trec": 0.90, "conll2003": 0.70}
    assert out[1]["test"] == {"trec": 0.94, "conll2003": 0.68}
    assert "other" not in out[1]["dev"]  # a task without a headline metric here is not read


def test_reselect_keeps_the_evaluation_the_named_tasks_prefer(tmp_path):
    er = _module()
    row = {"evals": er.evals(_curves(tmp_path), {"trec": "accuracy", "conll2003": "entity_f1"}), "best_step": 100}
    assert er.reselect(row, ["conll2003"]) == {"step": 50, "test": {"trec": 0.93, "conll2003": 0.72}}
    assert er.reselect(row, ["trec"])["step"] == 100
    assert er.reselect(row, ["trec", "conll2003"])["step"] == 100  # means 0.805 vs 0.800
    assert er.reselect({"evals": []}, ["trec"]) is None
    md = er.selection_markdown([{**row, "arm": "a", "seed": 1}])
    assert any("| a | 1 | 50, 100 | 100 |" in line for line in md)


def test_kinds_config_leaves_out_named_tasks(tmp_path, monkeypatch):
    er = _module()
    seen = _kinds_config(er, monkeypatch, "anchor-1-refit", 1, tmp_path, ("conll2003_types",), eval_test=True)
    names = [t["name"] for t in seen["doc"]["tasks"]]
    assert "conll2003_types" not in names and "sentiment_score" in names
    assert "training.eval_test=true" in seen["overrides"]
    with pytest.raises(SystemExit, match="no task"):
        er.run_config("kinds", "anchor-1-refit", 1, tmp_path, ("nope",))


def test_an_arm_can_weight_one_task_of_the_kinds_set(tmp_path, monkeypatch):
    er = _module()
    seen = _kinds_config(er, monkeypatch, "types-0.25-refit", 1, tmp_path)
    weights = {t["name"]: t["weight"] for t in seen["doc"]["tasks"]}
    assert weights["conll2003_types"] == 0.25 and weights["conll2003"] == 1.0
    assert "training.weighting=static" in seen["overrides"]


def test_versus_can_compare_every_arm_with_one_baseline_arm():
    er = _module()
    base = [_row(42, 0.93, 0.80), _row(1, 0.94, 0.79)]
    mine = [{**_row(42, 0.95, 0.80), "arm": "once-1-refit"}, {**_row(1, 0.96, 0.79), "arm": "once-1-refit"}]
    assert er.versus(mine, base) == {}  # no baseline row of the same arm
    out = er.versus(mine, base, "anchor-1-refit")["once-1-refit"]
    assert out["seeds"] == [42, 1] and out["test.trec"]["difference"] == pytest.approx(0.02)


def test_same_texts_gives_a_derived_task_its_source_tasks_sampled_sentences(tmp_path, monkeypatch):
    """--same-texts: the derived task reads the rows of its full file whose texts the source task's
    subset has, each as often as the subset has it, in the full file's order; other tasks are untouched."""
    import json
    from types import SimpleNamespace

    import polyhead.io

    er = _module()
    cache = tmp_path / "cache"
    full = cache / "datasets" / "conll2003_types"
    full.mkdir(parents=True)
    texts = ["EU rejects German call", "Peter Blackburn", "EU rejects German call", "BRUSSELS 1996-08-22", "Not sampled"]
    for split in ("train", "dev", "test"):
        (full / f"{split}.jsonl").write_text("".join(json.dumps({"text": t, "labels": [str(i)]}) + "\n" for i, t in enumerate(texts)))
    monkeypatch.setattr(polyhead.io, "default_cache_dir", lambda: cache)
    # The source task's subset: CoNLL sentences (one word per line), the repeated one once only.
    sampled = tmp_path / "ner.conll"
    sampled.write_text("BRUSSELS B-LOC\n1996-08-22 O\n\nEU B-ORG\nrejects O\nGerman B-MISC\ncall O\n\nPeter B-PER\nBlackburn I-PER\n")
    trec = SimpleNamespace(name="trec", train="t.jsonl", dev="d.jsonl", test="e.jsonl")
    tasks = [SimpleNamespace(name="conll2003", train=str(sampled), dev=str(sampled), test=str(sampled)),
             SimpleNamespace(name="conll2003_types", train="x", dev="x", test="x"), trec]
    er.align_derived(SimpleNamespace(tasks=tasks), tmp_path / "work")
    for split in ("train", "dev", "test"):
        rows = [json.loads(line) for line in open(getattr(tasks[1], split))]
        assert [r["text"] for r in rows] == ["EU rejects German call", "Peter Blackburn", "BRUSSELS 1996-08-22"]
        assert [r["labels"] for r in rows] == [["0"], ["1"], ["3"]]  # the full file's own rows
    assert (trec.train, trec.dev) == ("t.jsonl", "d.jsonl")
    # Without its source task beside it, a derived task keeps its own sample.
    alone = [SimpleNamespace(name="conll2003_types", train="x", dev="x", test="x")]
    er.align_derived(SimpleNamespace(tasks=alone), tmp_path / "work2")
    assert alone[0].train == "x"
