"""Experiment trackers through Accelerate (training.log_with), read back offline: TensorBoard's
event files and MLflow's local store."""
from __future__ import annotations

import pytest

import polyhead
from polyhead.training.trackers import flat_config

from train_helpers import write_config


def test_tensorboard_gets_losses_dev_metrics_test_metrics_and_the_config(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    config = write_config(tmp_path, epochs=2, log_every=4)
    result = polyhead.train(config, tmp_path / "run", overrides=["training.log_with=[tensorboard]", "training.run_name=tb-test"],
                            progress=False)
    logs = tmp_path / "run" / "training" / "logs" / "tb-test"
    events = EventAccumulator(str(logs))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"train/loss/topic", "train/loss/ner", "train/loss/sts", "train/lr", "dev/topic/accuracy", "dev/ner/entity_f1",
            "dev/sts/spearman", "dev/score", "embedding/rank_agreement"} <= scalars
    loss_steps = [e.step for e in events.Scalars("train/loss/topic")]
    assert loss_steps and all(s == 1 or s % 4 == 0 for s in loss_steps)
    dev = events.Scalars("dev/topic/accuracy")
    assert len(dev) == 2 and dev[-1].step == result.global_step
    # No test split in this config: test scores are logged when there is one (see the MLflow test).
    assert not any(t.startswith("test/") for t in scalars)


def test_mlflow_local_store_gets_params_and_metrics(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    import mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    config = write_config(tmp_path, epochs=1)
    import yaml

    data = yaml.safe_load(config.read_text())
    data["tasks"][0]["test"] = data["tasks"][0]["dev"]  # a test split: scored and logged at the end
    result = polyhead.train(data, tmp_path / "run", overrides=["training.log_with=[mlflow]", "training.run_name=ml-test"],
                            progress=False)
    mlflow.set_tracking_uri(uri)
    client = mlflow.MlflowClient()
    experiment = client.get_experiment_by_name("ml-test")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.data.params["training.epochs"] == "1" and run.data.params["tasks.topic.kind"] == "classification"
    history = client.get_metric_history(run.info.run_id, "dev/topic/accuracy")
    assert [m.step for m in history] == [result.global_step]
    assert run.data.metrics["test/topic/accuracy"] == pytest.approx(result.test["topic"]["accuracy"])
    assert client.get_metric_history(run.info.run_id, "train/loss/ner")
    assert run.info.status == "FINISHED"


def test_flat_config_names_tasks_and_keeps_values_trackers_accept():
    flat = flat_config({"training": {"lr": 1e-4, "log_with": ["tensorboard"], "head_lr": None},
                        "tasks": [{"name": "topic", "kind": "classification", "labels": None}], "datasets": []})
    assert flat == {"training.lr": 1e-4, "training.log_with": "['tensorboard']", "training.head_lr": "null",
                    "tasks.topic.kind": "classification", "tasks.topic.labels": "null", "datasets": "[]"}
