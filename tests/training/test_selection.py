"""Checkpoint selection (mean vs min-relative), the diagnostic test curve, the refit second stage,
and scoring a saved model under another precision."""
from __future__ import annotations

import csv
import json

import pytest
import torch

from polyhead import load
from polyhead.modeling.tasks import TaskSpec
from polyhead.training.config import load_config
from polyhead.training.data import build_sources
from polyhead.training.evaluation import evaluate, headline, predictions, selection_reference
from polyhead.training.metrics import task_metrics
from polyhead.training.loop import train

from train_helpers import write_config

SPECS = {"a": TaskSpec("a", "classification", ["x", "y"]), "b": TaskSpec("b", "token", ["O", "B-PER"])}


def test_min_relative_prefers_the_checkpoint_that_trades_no_task_away() -> None:
    ref = {"a": 0.90, "b": 0.80}
    balanced = {"a": {"accuracy": 0.88}, "b": {"entity_f1": 0.78}}  # 0.978 and 0.975 of the references
    lopsided = {"a": {"accuracy": 0.98}, "b": {"entity_f1": 0.70}}  # higher mean, b gave up 12.5%
    assert headline(lopsided, SPECS, "mean") > headline(balanced, SPECS, "mean")
    assert headline(balanced, SPECS, "min-relative", ref) > headline(lopsided, SPECS, "min-relative", ref)
    assert headline(balanced, SPECS, "min-relative", ref) == pytest.approx(0.78 / 0.80)


def test_selection_reference_is_the_best_so_far_unless_given() -> None:
    history = [{"type": "eval", "task": "a", "accuracy": 0.7}, {"type": "eval", "task": "a", "accuracy": 0.9},
               {"type": "eval-test", "task": "a", "accuracy": 0.99},  # test never sets a reference
               {"type": "train", "task": "a", "loss": 0.1}, {"type": "eval", "task": "b", "entity_f1": 0.5}]
    assert selection_reference(history, SPECS) == {"a": 0.9, "b": 0.5}
    assert selection_reference(history, SPECS, {"b": 0.8}) == {"a": 0.9, "b": 0.8}


def _config(tmp_path, *overrides, **training):
    path = write_config(tmp_path, **training)
    return load_config(path, list(overrides))


def test_min_relative_run_keeps_a_model_and_records_its_choice(tmp_path) -> None:
    cfg = _config(tmp_path, "training.select_metric=min-relative", "training.epochs=3")
    result = train(cfg, tmp_path / "m", progress=False)
    metrics = json.loads((tmp_path / "m" / "training" / "metrics.json").read_text())
    rows = [r for r in csv.DictReader(open(tmp_path / "m" / "training" / "curves.csv")) if r["type"] == "eval"]
    # Re-derive the choice from the dev curve: the kept step maximises min(dev / best dev of the run so far).
    peaks: dict[str, float] = {}
    best_step = None
    by_step: dict[int, dict[str, float]] = {}
    metric = {"topic": "accuracy", "ner": "entity_f1", "sts": "spearman"}
    for r in rows:
        by_step.setdefault(int(r["step"]), {})[r["task"]] = float(r[metric[r["task"]]])
    for step, scores in sorted(by_step.items()):
        for t, v in scores.items():
            peaks[t] = max(peaks.get(t, v), v)
        mine = min(v / peaks[t] if peaks[t] > 0 else 1.0 for t, v in scores.items())
        kept = None if best_step is None else min(
            by_step[best_step][t] / peaks[t] if peaks[t] > 0 else 1.0 for t in scores)
        if kept is None or mine > kept:
            best_step = step
    assert metrics["best_step"] == result.best_step == best_step


def test_eval_test_logs_test_scores_every_evaluation_without_selecting_on_them(tmp_path) -> None:
    cfg = _config(tmp_path, "training.epochs=2", "training.eval_test=true")
    for t in cfg.tasks:  # score "test" on the dev files: a second copy the loop must keep apart
        t.test = t.dev
    result = train(cfg, tmp_path / "m", progress=False)
    rows = list(csv.DictReader(open(tmp_path / "m" / "training" / "curves.csv")))
    evals = [r for r in rows if r["type"] == "eval"]
    tests = [r for r in rows if r["type"] == "eval-test"]
    assert len(tests) == len(evals) == 2 * 3  # two evaluations x three tasks
    assert [r["step"] for r in tests] == [r["step"] for r in evals]
    last = {r["task"]: r for r in tests if int(r["step"]) == result.best_step}
    assert float(last["topic"]["accuracy"]) == pytest.approx(result.test["topic"]["accuracy"])


def test_refit_heads_keeps_the_encoder_and_only_better_heads(tmp_path) -> None:
    cfg = _config(tmp_path, "training.epochs=1", "training.refit_heads=true")
    train(cfg, tmp_path / "m", progress=False)
    metrics = json.loads((tmp_path / "m" / "training" / "metrics.json").read_text())
    assert set(metrics["refit"]) == {"topic", "ner"}  # per-text heads; similarity has none to fit
    plain = train(_config(tmp_path / "p", "training.epochs=1", "training.refit_heads=false"), tmp_path / "p" / "m", progress=False)
    a, b = load(tmp_path / "m"), load(tmp_path / "p" / "m")
    for (name, x), (_, y) in zip(a.encoder.state_dict().items(), b.encoder.state_dict().items()):
        assert torch.equal(x, y), name  # the second stage never moves the encoder
    sources, _ = build_sources(cfg)
    dev = evaluate(a, sources, "dev")
    for task, line in metrics["refit"].items():
        metric = "accuracy" if task == "topic" else "entity_f1"
        assert dev[task][metric] >= plain.dev[task][metric] - 1e-9  # a refit head is kept only when dev improves
        assert ("refit head kept" in line) == (dev[task][metric] > plain.dev[task][metric])
        # metrics.json's dev scores are the saved model's, refit heads included
        assert metrics["dev"][task][metric] == pytest.approx(dev[task][metric], abs=1e-9)


def test_evaluate_scores_a_saved_model_under_bf16(tmp_path) -> None:
    cfg = _config(tmp_path, "training.epochs=1")
    train(cfg, tmp_path / "m", progress=False)
    sources, _ = build_sources(cfg)
    fp32 = evaluate(load(tmp_path / "m"), sources, "dev")
    seen = []
    model = load(tmp_path / "m", precision="bf16")
    linear = next(m for m in model.encoder.modules() if isinstance(m, torch.nn.Linear))
    linear.register_forward_hook(lambda mod, inp, out: seen.append(out.dtype))
    bf16 = evaluate(model, sources, "dev")
    assert torch.bfloat16 in seen  # the encoder really ran under bf16 autocast
    assert bf16["sts"]["spearman"] == pytest.approx(fp32["sts"]["spearman"], abs=0.1)


def test_predictions_are_per_example_in_data_order_and_give_evaluates_scores(tmp_path) -> None:
    cfg = _config(tmp_path, "training.epochs=1")
    train(cfg, tmp_path / "m", progress=False)
    sources, _ = build_sources(cfg)
    model = load(tmp_path / "m")
    gold, pred = predictions(model, sources, "dev", batch_size=3)  # several batches, so order matters
    scores = evaluate(model, sources, "dev")
    assert set(gold) == set(pred) == set(scores) == {"topic", "ner", "sts"}
    for task in gold:
        assert len(gold[task]) == len(pred[task])
        assert task_metrics(model.tasks[task].kind, gold[task], pred[task]) == scores[task]
    # gold comes back in the dev file's order, one entry per example: tags per word for NER
    dev_topics = [e.labels["topic"] for s in sources for e in s.splits.get("dev", []) if "topic" in e.labels]
    assert gold["topic"] == dev_topics and all(isinstance(p, str) for p in pred["topic"])
    assert all(len(g) == len(p) for g, p in zip(gold["ner"], pred["ner"]))
    # the predictions are the model's own: a head with other weights predicts otherwise
    other = load(tmp_path / "m")
    for param in other.heads["topic"].parameters():
        torch.nn.init.normal_(param, std=5.0)
    assert predictions(other, sources, "dev")[1]["topic"] != pred["topic"]


def test_the_refit_stage_leaves_frozen_heads_alone(tmp_path) -> None:
    """refit_heads (on by default) is training too: a head in freeze.heads, or everything under
    freeze.all, comes out of the refit stage exactly as it went in."""
    train(_config(tmp_path, "training.epochs=1", "freeze.heads=[topic]", refit_heads=True), tmp_path / "m", progress=False)
    metrics = json.loads((tmp_path / "m" / "training" / "metrics.json").read_text())
    assert set(metrics["refit"]) == {"ner"}
    plain = tmp_path / "p" / "m"
    train(_config(tmp_path / "p", "training.epochs=1", "freeze.heads=[topic]", "training.refit_heads=false"), plain, progress=False)
    refit, kept = load(tmp_path / "m").heads["topic"].state_dict(), load(plain).heads["topic"].state_dict()
    assert all(torch.equal(refit[k], kept[k]) for k in kept)
    train(_config(tmp_path / "all", "training.epochs=1", "freeze.all=true", refit_heads=True), tmp_path / "all" / "m", progress=False)
    assert "refit" not in json.loads((tmp_path / "all" / "m" / "training" / "metrics.json").read_text())
