"""polyhead.train from Python: configs as dicts and objects, data as lists, DataFrames and
datasets.Dataset objects (the same model as from files), callbacks, checked config objects."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from safetensors.torch import load_file

import polyhead
from polyhead import PolyheadError
from polyhead.training.config import RunConfig, TaskConfig, TrainingConfig

from train_helpers import NER, TOPICS, write_config


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    out = {f"encoder.{k}": v for k, v in load_file(str(folder / "encoder" / "model.safetensors")).items()}
    for f in (folder / "heads").glob("*.safetensors"):
        out.update({f"{f.stem}.{k}": v for k, v in load_file(str(f)).items()})
    return out


def _rows(split: str) -> dict[str, list[dict]]:
    """The records of train_helpers.write_data's files, as Python data."""
    reps = 4 if split == "train" else 1
    topic = [{"text": t, "label": lab} for _ in range(reps) for lab, ts in TOPICS.items() for t in ts]
    ner = [{"tokens": w, "tags": t} for _ in range(reps) for w, t in NER]
    sts = [{"sentence1": a, "sentence2": b, "score": s} for a, b, s in [
        ("a cat sits", "a cat is sitting", 4.8), ("a dog runs", "stocks fell", 0.2),
        ("the sun is hot", "it is sunny", 3.5), ("he plays piano", "a man eats", 0.5)] * reps]
    return {"topic": topic, "ner": ner, "sts": sts}


def _without_files(config: Path) -> dict:
    """The test config as a dict with every data file left out (the data comes from Python)."""
    data = yaml.safe_load(config.read_text())
    for task in data["tasks"]:
        task.pop("train"), task.pop("dev")
    data["training"].update(epochs=1)
    return data


@pytest.fixture(scope="module")
def from_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("files")
    config = write_config(root, epochs=1)
    result = polyhead.train(config, root / "run", progress=False)
    return root, config, result


def _memory(form: str) -> dict:
    def convert(rows: list[dict]):
        if form == "lists":
            return rows
        if form == "dataframe":
            return pd.DataFrame(rows)
        datasets = pytest.importorskip("datasets")
        return datasets.Dataset.from_list(rows)

    train, dev = _rows("train"), _rows("dev")
    return {task: {"train": convert(train[task]), "dev": convert(dev[task])} for task in train}


@pytest.mark.parametrize("form", ["lists", "dataframe", "datasets"])
def test_data_in_python_trains_the_same_model_as_the_files(from_files, tmp_path, form):
    _, config, expected = from_files
    result = polyhead.train(_without_files(config), tmp_path / "run", data=_memory(form), progress=False)
    want, got = _weights(expected.output_dir), _weights(result.output_dir)
    assert want.keys() == got.keys()
    for key in want:
        assert torch.equal(want[key], got[key]), key
    assert result.dev == expected.dev and result.best_step == expected.best_step
    # The report carries the saved model.
    assert result.model.predict(["the team won"])[0]["tasks"]["topic"]["label"] in TOPICS
    saved = yaml.safe_load((result.output_dir / "training" / "config.yaml").read_text())
    assert "data" not in saved  # what came from Python is not config


def test_a_task_takes_texts_and_labels_and_a_dataframe_labels_several_tasks(tmp_path):
    config = write_config(tmp_path, epochs=1)
    data = _without_files(config)
    data["tasks"] = [t for t in data["tasks"] if t["name"] != "sts"]
    data["tasks"].append({"name": "tone", "kind": "classification"})
    data["datasets"] = [{"name": "inbox", "labels": {"topic": "topic", "tone": "tone"}}]
    texts = [t for ts in TOPICS.values() for t in ts]
    inbox = pd.DataFrame({"text": texts * 2, "topic": [lab for lab, ts in TOPICS.items() for _ in ts] * 2,
                          "tone": (["calm", "loud"] * len(texts))})
    inbox.loc[1, "tone"] = None  # a row without a tone label: it still teaches topic
    ner = _rows("train")["ner"]
    result = polyhead.train(data, tmp_path / "run", progress=False, data={
        "inbox": inbox,  # a bare value is the train split
        "ner": {"train": ([r["tokens"] for r in ner], [r["tags"] for r in ner])},
    })
    model = result.model
    assert set(model.tasks) == {"topic", "tone", "ner"}
    assert model.tasks["tone"].labels == ["calm", "loud"]
    assert model.tasks["ner"].labels[0] == "O"


def test_a_run_config_object_is_copied_not_changed(tmp_path):
    config = write_config(tmp_path, epochs=1, max_steps=2)
    cfg = polyhead.load_config(config)
    result = polyhead.train(cfg, tmp_path / "run", overrides=["training.max_steps=3"], progress=False)
    assert result.global_step == 3 and cfg.training.max_steps == 2
    cfg.training.lr = -1.0  # changed after it was made: checked again when it trains
    with pytest.raises(PolyheadError, match=r"training\.lr: expected a positive number"):
        polyhead.train(cfg, tmp_path / "again", progress=False)


# -- bad input: one line each, before any training ----------------------------------------------
def _bad(tmp_path, data, match):
    config = _without_files(write_config(tmp_path, epochs=1))
    with pytest.raises(PolyheadError, match=match) as err:
        polyhead.train(config, tmp_path / "run", data=data, progress=False)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "run" / "training").exists()


def _good() -> dict:
    return _memory("lists")


@pytest.mark.parametrize("change, match", [
    (lambda d: d["topic"]["train"][3].pop("label"), r"data\['topic'\]\.train\[3\]: missing column 'label'"),
    (lambda d: d["topic"]["train"][2].update(text=7), r"data\['topic'\]\.train\[2\]: 'text' must be a string, got int"),
    (lambda d: d["topic"].update(dev=[]), r"data\['topic'\]\.dev: no rows"),
    (lambda d: d["topic"].update(train=pd.DataFrame({"text": ["a", "b"], "label": ["sports", math.nan]})),
     r"data\['topic'\]\.train\[1\]: the label 'label' of task 'topic' is NaN"),
    (lambda d: d["sts"]["train"][0].update(score=math.nan), r"data\['sts'\]\.train\[0\]: the label 'score' of task 'sts' is NaN"),
    (lambda d: d.update(nosuch={"train": []}), r"data: nosuch is neither a task nor a dataset of the config; names that take data: topic, ner, sts"),
    (lambda d: d["topic"].update(holdout=[]), r"data\['topic'\]: unknown split 'holdout'"),
    (lambda d: d["topic"].update(train=42), r"data\['topic'\]\.train: expected a list of dicts, a pandas DataFrame"),
    (lambda d: d["topic"].update(train=(["a", "b"], ["sports"])), r"data\['topic'\]\.train: 2 texts but 1 labels"),
    (lambda d: d.pop("ner"), r"task 'ner' has no training data"),
])
def test_bad_data_in_python_is_one_line_before_training(tmp_path, change, match):
    data = _good()
    change(data)
    _bad(tmp_path, data, match)


def test_a_missing_tracker_or_a_callback_without_hooks_is_one_line(tmp_path, monkeypatch):
    import importlib.util

    config = write_config(tmp_path, epochs=1)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real(name, *a))
    with pytest.raises(PolyheadError, match=r"training.log_with: wandb needs the wandb package.*pip install 'polyhead\[wandb\]'"):
        polyhead.train(config, tmp_path / "a", overrides=["training.log_with=[wandb]"], progress=False)
    with pytest.raises(PolyheadError, match="unknown tracker 'tensorbored'"):
        polyhead.train(config, tmp_path / "b", overrides=["training.log_with=[tensorbored]"], progress=False)
    with pytest.raises(PolyheadError, match="callbacks: object has none of the hooks"):
        polyhead.train(config, tmp_path / "c", callbacks=[object()], progress=False)
    assert not any((tmp_path / d / "training").exists() for d in "abc")


# -- config objects check themselves ------------------------------------------------------------
@pytest.mark.parametrize("make, match", [
    (lambda: TrainingConfig(epochs=-1), r"^training\.epochs: expected a positive integer, got -1$"),
    (lambda: TrainingConfig(lr=-5), r"^training\.lr: expected a positive number"),
    (lambda: TrainingConfig(scheduler="bogus"), r"^training\.scheduler: expected one of linear, cosine, constant"),
    (lambda: TrainingConfig(grad_accum=0), r"^training\.grad_accum: expected a positive integer, got 0$"),
    (lambda: TaskConfig(name="x", kind="bogus"), r"^tasks\[x\]\.kind: expected one of classification"),
    (lambda: RunConfig(training={"epochs": 0}), r"^training\.epochs: expected a positive integer, got 0$"),
    (lambda: RunConfig(tasks=[{"name": "t"}]), r"^tasks\[0\]: missing required key 'kind'$"),
    (lambda: RunConfig(tasks=[{"name": "t", "kind": "classification", "dropout": 2}]), r"^tasks\[0\]\.dropout: expected a number in \[0.0, 1.0\)"),
])
def test_config_objects_check_their_fields_when_made(make, match):
    with pytest.raises(PolyheadError, match=match):
        make()


def test_config_objects_convert_as_the_loader_does():
    assert TrainingConfig(lr=1).lr == 1.0 and isinstance(TrainingConfig(lr=1).lr, float)
    cfg = RunConfig(tasks=[{"name": "t", "kind": "classification"}], training={"epochs": 2})
    assert isinstance(cfg.tasks[0], TaskConfig) and cfg.training.epochs == 2
    with pytest.raises(PolyheadError, match="task 't' has no training data"):
        cfg.validate()


# -- callbacks ----------------------------------------------------------------------------------
class Recorder(polyhead.Callback):
    def __init__(self, stop_at: int | None = None):
        self.events: list[tuple] = []
        self.stop_at = stop_at

    def on_train_begin(self, progress):
        self.events.append(("begin", progress.step, progress.total_steps))

    def on_step(self, progress):
        self.events.append(("step", progress.step, dict(progress.losses), progress.lr))
        if self.stop_at and progress.step >= self.stop_at:
            progress.request_stop(f"stop at step {self.stop_at}")

    def on_evaluate(self, progress):
        self.events.append(("evaluate", progress.step, progress.score, progress.is_best))

    def on_checkpoint(self, progress):
        self.events.append(("checkpoint", progress.step, progress.checkpoint))

    def on_train_end(self, progress, result):
        self.events.append(("end", result.global_step, result.dev))


def test_callbacks_see_every_step_evaluation_checkpoint_and_the_end(tmp_path):
    rec = Recorder()
    result = polyhead.train(write_config(tmp_path, epochs=2), tmp_path / "run", progress=False, callbacks=[rec])
    kinds = [e[0] for e in rec.events]
    assert kinds[0] == "begin" and kinds[-1] == "end"
    steps = [e for e in rec.events if e[0] == "step"]
    assert [e[1] for e in steps] == list(range(1, result.global_step + 1))
    assert all(e[2] and all(math.isfinite(v) for v in e[2].values()) and e[3] >= 0 for e in steps)
    assert steps[0][3] > 0
    evaluations = [e for e in rec.events if e[0] == "evaluate"]
    assert len(evaluations) == 2 and any(e[3] for e in evaluations)
    checkpoints = [e for e in rec.events if e[0] == "checkpoint"]
    assert len(checkpoints) == 2 and checkpoints[0][2].name.startswith("step-")
    assert rec.events[-1][2] == result.dev


def test_a_callback_stops_the_run_and_the_model_is_kept(tmp_path):
    rec = Recorder(stop_at=3)
    logs: list[str] = []
    result = polyhead.train(write_config(tmp_path, epochs=2), tmp_path / "run", progress=False, callbacks=[rec], log=logs.append)
    assert result.global_step == 3
    assert "stop at step 3" in logs
    metrics = json.loads((tmp_path / "run" / "training" / "metrics.json").read_text())
    assert metrics["stopped_early"] is True
    assert polyhead.load(tmp_path / "run").predict(["a goal"])[0]["tasks"]["topic"]["label"] in TOPICS


def test_early_stopping_is_a_callback_that_stops_after_patience_evaluations(tmp_path):
    rec = Recorder()
    logs: list[str] = []
    # lr 0: dev never improves after the first evaluation; patience 1 stops at the second.
    polyhead.train(write_config(tmp_path, epochs=5, lr=1e-12, head_lr=1e-12, eval_every=2, early_stopping_patience=1),
                   tmp_path / "run", progress=False, callbacks=[rec], log=logs.append)
    evaluations = [e for e in rec.events if e[0] == "evaluate"]
    assert len(evaluations) == 2
    assert "early stopping: no improvement in 1 evaluations" in logs


def test_resume_refuses_changed_data_of_the_same_size(tmp_path):
    class Interrupt(polyhead.Callback):
        def on_step(self, progress):
            if progress.step == 4:
                raise KeyboardInterrupt

    config = _without_files(write_config(tmp_path, epochs=1))
    data = _memory("lists")
    with pytest.raises(KeyboardInterrupt):
        polyhead.train(config, tmp_path / "run", data=data, progress=False, callbacks=[Interrupt()])
    assert (tmp_path / "run" / "checkpoints").is_dir()
    changed = _memory("lists")
    changed["topic"]["train"][0]["label"] = "tech"  # same number of examples, other content
    with pytest.raises(PolyheadError, match=r"run\.train_data\.topic: '\w+' -> '\w+'"):
        polyhead.train(config, tmp_path / "run", data=changed, resume=True, progress=False)
    result = polyhead.train(config, tmp_path / "run", data=data, resume=True, progress=False)
    assert result.global_step > 4


def test_public_names_import_from_polyhead_and_the_package_is_typed():
    import importlib.resources

    for name in polyhead.__all__:
        assert getattr(polyhead, name) is not None, name
    assert polyhead.train is __import__("polyhead.training.api", fromlist=["train"]).train
    assert importlib.resources.files("polyhead").joinpath("py.typed").is_file()
    # One naming: the model holds a head per task (add_head, fit_heads, add-head); add_task is the old name.
    assert polyhead.MultiTaskModel.add_task is polyhead.MultiTaskModel.add_head


def test_a_frozen_encoder_run_calls_begin_evaluate_and_end(tmp_path):
    rec = Recorder()
    result = polyhead.train(write_config(tmp_path, epochs=1), tmp_path / "run", overrides=["freeze.encoder=true"],
                            progress=False, callbacks=[rec])
    assert [e[0] for e in rec.events] == ["begin", "evaluate", "end"]
    assert rec.events[1][2] == result.best_metric and rec.events[-1][2] == result.dev


def test_max_examples_keeps_a_seeded_random_subset_not_the_first_rows():
    from polyhead.training.data import build_sources

    rows = [{"text": f"sports text {i}", "label": "sports"} for i in range(50)] + \
           [{"text": f"tech text {i}", "label": "tech"} for i in range(50)]  # sorted by label
    def subset(seed):
        cfg = RunConfig(tasks=[{"name": "topic", "kind": "classification", "max_examples": 20}], training={"seed": seed},
                        data={"topic": rows})
        cfg.validate()
        (src,), _ = build_sources(cfg)
        return [ex.text for ex in src.splits["train"]]

    kept = subset(1)
    assert len(kept) == 20 and {t.split()[0] for t in kept} == {"sports", "tech"}  # both classes, not the first 20
    assert kept == sorted(kept, key=lambda t: (t.split()[0] != "sports", int(t.split()[-1])))  # file order kept
    assert subset(1) == kept and subset(2) != kept  # the run's seed decides


def test_a_run_config_with_python_data_takes_overrides_and_numpy_values(tmp_path):
    import numpy as np

    config = _without_files(write_config(tmp_path, epochs=1))
    config["tasks"] = [t for t in config["tasks"] if t["name"] == "topic"]
    cfg = RunConfig(**{k: v for k, v in config.items()}, data={"topic": pd.DataFrame(_rows("train")["topic"])})
    labels = np.array([r["label"] for r in _rows("dev")["topic"]])  # numpy strings in a (texts, labels) pair
    result = polyhead.train(cfg, tmp_path / "run", overrides=["training.max_steps=2"], progress=False,
                            data={"topic": {"train": cfg.data["topic"], "dev": ([r["text"] for r in _rows("dev")["topic"]], labels)}})
    assert result.global_step == 2 and set(result.dev) == {"topic"}
