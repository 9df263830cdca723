"""Heads on a frozen encoder: features cached once (reused, invalidated), the same features and the
same head update as the per-batch loop, heads fit to convergence, and the public fit_heads API."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from polyhead import MultiTaskModel, PolyheadError, TaskSpec, load
from polyhead.training.config import load_config
from polyhead.training.data import build_sources, collate
from polyhead.training.evaluation import evaluate
from polyhead.training.features import FeatureCache, encode_split
from polyhead.training.frozen import fit_frozen_heads, fit_heads, fit_softmax_regression
from polyhead.training.loop import train

from conftest import make_tiny_encoder
from train_helpers import NER, TOPICS, write_config


def _frozen_config(tmp_path: Path, **training):
    return load_config(write_config(tmp_path), ["freeze.encoder=true", *[f"training.{k}={v}" for k, v in training.items()]])


def _tensors(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_frozen_run_encodes_once_and_reuses_the_cache(tmp_path):
    cfg = _frozen_config(tmp_path)
    first = train(cfg, tmp_path / "m", progress=False)
    cache_dir = tmp_path / "m" / "training" / "features"
    entries = sorted(cache_dir.glob("*.json"))
    assert len(entries) == 4  # topic train/dev, ner train/dev (similarity pairs need no cache)
    logs: list[str] = []
    second = train(cfg, tmp_path / "m", progress=False, overwrite=True, log=logs.append)
    assert any("0 split(s) encoded" in line and "4 read from the cache" in line for line in logs), logs
    assert second.dev == first.dev
    # The model trained on cached features scores the same through the ordinary evaluation path.
    sources, _ = build_sources(cfg)
    direct = evaluate(load(tmp_path / "m"), sources, "dev")
    for task in ("topic", "ner"):
        assert direct[task] == pytest.approx(second.dev[task], abs=1e-9)


def test_frozen_run_leaves_the_encoder_bit_identical(tmp_path):
    cfg = _frozen_config(tmp_path)
    sources, specs = build_sources(cfg)
    from polyhead.training.build import build_model

    before = _tensors(build_model(cfg, specs, "cpu").encoder)
    train(cfg, tmp_path / "m", progress=False)
    after = _tensors(load(tmp_path / "m").encoder)
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)


def _cache_and_sources(tmp_path, pooling="mean", encoder=None, folder=None):
    cfg = load_config(write_config(tmp_path), ["freeze.encoder=true", f"encoder.pooling={pooling}"])
    sources, specs = build_sources(cfg)
    enc = encoder or make_tiny_encoder(pooling=pooling, max_length=32)
    model = MultiTaskModel(enc, list(specs.values()))
    return FeatureCache(enc, folder or tmp_path / "cache"), sources, model.tasks


def test_cache_written_by_another_encoder_pooling_or_data_is_rebuilt(tmp_path):
    cache, sources, specs = _cache_and_sources(tmp_path)
    topic = sources[0]
    cache.get(topic, "train", specs)
    assert (cache.builds, cache.hits) == (1, 0)

    same, _, _ = _cache_and_sources(tmp_path)  # a new process, same everything: read from disk
    same.get(topic, "train", specs)
    assert (same.builds, same.hits) == (0, 1)

    other_pooling, _, _ = _cache_and_sources(tmp_path, pooling="max")
    other_pooling.get(topic, "train", specs)
    assert (other_pooling.builds, other_pooling.hits) == (1, 0)

    other_weights, _, _ = _cache_and_sources(tmp_path, encoder=make_tiny_encoder(max_length=32, seed=1))
    other_weights.get(topic, "train", specs)
    assert (other_weights.builds, other_weights.hits) == (1, 0)

    changed = copy.deepcopy(topic)
    changed.splits["train"][0].text = "a different first text"
    fresh, _, _ = _cache_and_sources(tmp_path)
    fresh.get(changed, "train", specs)
    assert (fresh.builds, fresh.hits) == (1, 0)


def test_a_damaged_cache_entry_is_rebuilt_not_trusted(tmp_path):
    cache, sources, specs = _cache_and_sources(tmp_path)
    good = cache.get(sources[0], "train", specs).pooled
    for npy in (tmp_path / "cache").glob("*.pooled.npy"):
        npy.write_bytes(npy.read_bytes()[:40])  # truncated
    again, _, _ = _cache_and_sources(tmp_path)
    rebuilt = again.get(sources[0], "train", specs).pooled
    assert again.builds == 1
    np.testing.assert_allclose(rebuilt, good, atol=1e-3)


def test_cached_features_are_what_the_loop_feeds_the_heads(tmp_path):
    cfg = load_config(write_config(tmp_path), ["freeze.encoder=true"])
    sources, specs = build_sources(cfg)
    enc = make_tiny_encoder(max_length=32).eval()
    model = MultiTaskModel(enc, list(specs.values()))
    for src in sources[:2]:  # topic (pooled) and ner (word states)
        feats = encode_split(enc, src, "train", model.tasks)
        examples = src.splits["train"][:5]
        batch = collate(examples, src, model.tasks, enc.tokenizer, 32)
        with torch.no_grad():
            out = enc(**batch["inputs"])
        if feats.pooled is not None and src.name == "topic":
            np.testing.assert_allclose(feats.pooled[:5], out["pooled"].numpy(), atol=1e-5)
        if feats.words is not None:
            for i, firsts in enumerate(batch["firsts"]):
                rows = feats.words[feats.text_words(i)]
                for w, t in enumerate(firsts):
                    np.testing.assert_allclose(rows[w], out["token_embeddings"][i, t].numpy(), atol=1e-5)


def test_one_step_on_cached_features_equals_one_step_through_the_encoder(tmp_path):
    cfg = load_config(write_config(tmp_path), ["freeze.encoder=true", "tasks.0.dropout=0"])
    sources, specs = build_sources(cfg)
    topic = sources[0]
    enc = make_tiny_encoder(max_length=32).eval()
    torch.manual_seed(3)
    model = MultiTaskModel(enc, [specs["topic"]])
    head_a = model.heads["topic"]
    head_b = copy.deepcopy(head_a)
    examples = topic.splits["train"][:8]
    index = {lab: i for i, lab in enumerate(specs["topic"].labels)}
    y = torch.tensor([index[e.labels["topic"]] for e in examples])

    # the loop: through the (frozen) encoder
    batch = collate(examples, topic, model.tasks, enc.tokenizer, 32)
    with torch.no_grad():
        feats = enc(**batch["inputs"])
    opt_a = torch.optim.AdamW(head_a.parameters(), lr=1e-2)
    head_a.loss(head_a(feats), y).backward()
    opt_a.step()

    # the cached path: the same rows of the cached features
    cached = encode_split(enc, topic, "train", model.tasks).pooled[:8]
    opt_b = torch.optim.AdamW(head_b.parameters(), lr=1e-2)
    head_b.loss(head_b({"pooled": torch.from_numpy(cached)}), y).backward()
    opt_b.step()
    for (name, a), (_, b) in zip(head_a.state_dict().items(), head_b.state_dict().items()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5, msg=name)


def test_lbfgs_reaches_the_optimum_of_regularised_logistic_regression():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 16, generator=g)
    y = (x[:, 0] + 0.5 * x[:, 1] > 0).long() + (x[:, 2] > 1).long()
    start = torch.zeros(3, 16)
    w, b = fit_softmax_regression(x, y, 1e-3, start, torch.zeros(3))
    assert start.abs().sum() == 0  # the warm start is not changed in place
    cold_w, _ = fit_softmax_regression(x, y, 1e-3)  # no start: zeros, classes from y
    torch.testing.assert_close(cold_w, w)
    w.requires_grad_(True)
    b.requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(x @ w.T + b, y) + 0.5 * 1e-3 * (w * w).sum()
    loss.backward()
    assert w.grad.abs().max() < 1e-4 and b.grad.abs().max() < 1e-4  # first-order optimality


def test_l2_is_picked_on_dev_and_recorded(tmp_path):
    cfg = _frozen_config(tmp_path)
    train(cfg, tmp_path / "m", progress=False)
    rows = (tmp_path / "m" / "training" / "curves.csv").read_text().splitlines()
    header = rows[0].split(",")
    topic_rows = [dict(zip(header, r.split(","))) for r in rows[1:] if ",topic," in r]
    assert len(topic_rows) == 7 and {r["solver"] for r in topic_rows} == {"lbfgs"}
    metrics = json.loads((tmp_path / "m" / "training" / "metrics.json").read_text())
    assert set(metrics["dev"]) == {"topic", "ner", "sts"}


def test_a_given_l2_skips_the_search_and_hidden_layer_heads_use_adamw(tmp_path):
    cfg = load_config(write_config(tmp_path), ["freeze.encoder=true", "training.head_l2=0.01", "tasks.0.hidden_dim=8"])
    logs: list[str] = []
    train(cfg, tmp_path / "m", progress=False, log=logs.append)
    assert any(line.startswith("topic: adamw") for line in logs), logs
    assert any(line.startswith("ner: lbfgs (l2=0.01)") for line in logs), logs
    with pytest.raises(PolyheadError, match="L-BFGS fits linear heads only"):
        cfg.training.head_solver = "lbfgs"
        train(cfg, tmp_path / "m2", progress=False)


def test_head_solver_loop_keeps_the_per_batch_path(tmp_path):
    cfg = _frozen_config(tmp_path, head_solver="loop", epochs=1)
    logs: list[str] = []
    train(cfg, tmp_path / "m", progress=False, log=logs.append)
    assert not (tmp_path / "m" / "training" / "features").exists()
    assert not any("encoded once" in line for line in logs)


def test_fit_heads_from_lists_adds_a_task_and_leaves_the_rest_alone():
    enc = make_tiny_encoder(max_length=32)
    model = MultiTaskModel(enc, [TaskSpec("old", "classification", ["a", "b"])])
    before = _tensors(model)
    texts = [t for ts in TOPICS.values() for t in ts] * 3
    labels = [lab for lab, ts in TOPICS.items() for _ in ts] * 3
    report = fit_heads(model, {
        "topic": {"train": (texts, labels), "dev": (texts[:8], labels[:8])},
        "ner": {"kind": "token", "train": ([w for w, _ in NER] * 2, [t for _, t in NER] * 2)},
    })
    assert set(model.tasks) == {"old", "topic", "ner"}
    assert report.tasks["topic"].solver == "lbfgs" and "topic" in report.dev
    after = model.state_dict()
    for key, value in before.items():  # the encoder and the old head: exactly as they were
        assert torch.equal(value, after[key]), key
    pred = model.predict(["the striker scored twice"], tasks=["topic"])[0]["tasks"]["topic"]["label"]
    assert pred == "sports"


@pytest.mark.parametrize("data,message", [
    ({"t": {"train": (["a", "b"], ["x"])}}, "2 texts but 1 labels"),
    ({"t": {"train": ["a"]}}, "must be a pair"),
    ({"t": {"kind": "token", "train": (["a b"], [["O"]])}}, "list of words"),
    ({"t": {"train": (["a"], ["x"]), "dev": (["b"], ["y"])}}, "unknown label 'y'"),
    ({"t": {"kind": "similarity", "train": ([], [])}}, "cannot be fit from lists"),
])
def test_fit_heads_input_errors_are_one_line(data, message):
    model = MultiTaskModel(make_tiny_encoder(max_length=32), [])
    with pytest.raises(PolyheadError, match=message) as err:
        fit_heads(model, data)
    assert "\n" not in str(err.value)


def test_fit_heads_refuses_to_change_an_existing_task_with_other_labels():
    model = MultiTaskModel(make_tiny_encoder(max_length=32), [TaskSpec("topic", "classification", ["x", "y"])])
    with pytest.raises(PolyheadError, match="exists in the model with other labels"):
        fit_heads(model, {"topic": {"train": (["a", "b"], ["sports", "tech"])}})


def test_fit_heads_takes_a_config_file(tmp_path):
    path = write_config(tmp_path)
    data = yaml.safe_load(path.read_text())
    data["tasks"] = [t for t in data["tasks"] if t["name"] == "topic"]
    path.write_text(yaml.safe_dump(data))
    model = MultiTaskModel(make_tiny_encoder(max_length=32), [])
    report = fit_heads(model, path)
    assert list(model.tasks) == ["topic"] and report.dev["topic"]["accuracy"] >= 0.5


def test_fit_frozen_heads_touches_only_the_named_heads(tmp_path):
    cfg = load_config(write_config(tmp_path))
    sources, specs = build_sources(cfg)
    model = MultiTaskModel(make_tiny_encoder(max_length=32), list(specs.values()))
    before = _tensors(model)
    fit_frozen_heads(model, sources, ["ner"], progress=False)
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(k.startswith("heads.ner.") for k in changed)


def test_a_full_disk_under_the_feature_cache_is_one_warning_and_the_fit_goes_on(tmp_path, monkeypatch):
    import errno
    import os

    from polyhead.training import features

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(features, "write_bytes_atomic", disk_full)
    cache, sources, specs = _cache_and_sources(tmp_path)
    with pytest.warns(UserWarning, match=r"could not write the feature cache in .*: No space left on device; going on without it"):
        got = cache.get(sources[0], "train", specs)
    assert got.pooled is not None and got.pooled.shape[0] == len(sources[0].splits["train"])
    assert cache.folder is None and not list((tmp_path / "cache").glob("*.json"))  # nothing a later run would read


def test_a_task_labelled_by_two_datasets_is_fit_and_scored_on_both(tmp_path):
    """A token task with a multi-task dataset and a CoNLL file of its own: the frozen fit trains on
    both datasets' examples and reports dev over both, as `evaluate` pools them."""
    cfg_path = write_config(tmp_path)
    cfg = yaml.safe_load(cfg_path.read_text())
    data = tmp_path / "data"
    extra = [(["Dora", "flew", "to", "Oslo"], ["B-PER", "O", "O", "B-LOC"]), (["quiet", "day"], ["O", "O"])] * 3
    for split in ("train", "dev"):
        (data / f"more_{split}.conll").write_text("\n\n".join("\n".join(f"{w} {t}" for w, t in zip(ws, ts)) for ws, ts in extra) + "\n")
    ner = next(t for t in cfg["tasks"] if t["name"] == "ner")
    cfg["datasets"] = [{"name": "ner_a", "train": ner.pop("train"), "dev": ner.pop("dev"), "labels": {"ner": "tags"}},
                       {"name": "more_ner", "train": str(data / "more_train.conll"), "dev": str(data / "more_dev.conll"),
                        "labels": {"ner": "tags"}}]
    cfg["tasks"] = [t for t in cfg["tasks"] if t["name"] != "sts"]
    cfg_path.write_text(yaml.safe_dump(cfg))
    run_cfg = load_config(cfg_path)
    sources, specs = build_sources(run_cfg)
    assert sum("ner" in s.tasks for s in sources) == 2
    model = MultiTaskModel(make_tiny_encoder(), list(specs.values()))
    seen: list[int] = []
    import polyhead.training.frozen as frozen

    real = frozen._task_arrays
    frozen_arrays = lambda spec, src, feats, split: seen.append(src.name) or real(spec, src, feats, split)  # noqa: E731
    try:
        frozen._task_arrays = frozen_arrays
        report = fit_frozen_heads(model, sources, ["ner"], progress=False)
    finally:
        frozen._task_arrays = real
    assert {"ner_a", "more_ner"} <= set(seen)  # both datasets' train (and dev) examples
    assert report.dev["ner"] == pytest.approx(evaluate(model, sources, "dev")["ner"])
