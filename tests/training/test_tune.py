"""Hyperparameter search on Optuna: the Python function, `polyhead tune` with two worker processes
sharing one SQLite study, pruning through the callback protocol, and a bad search space."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import polyhead
from polyhead import PolyheadError
from polyhead.training.tune import parse_space

from train_helpers import write_config

pytest.importorskip("optuna")
SRC = str(Path(__file__).resolve().parents[2] / "src")


def test_tune_in_python_writes_the_table_and_a_best_config_that_trains(tmp_path):
    config = write_config(tmp_path, epochs=1, max_steps=4)
    result = polyhead.tune(config, tmp_path / "search", {"training.lr": "log:1e-4:1e-2", "training.weighting": ["equal", "uncertainty"]},
                           trials=2, seed=0, log=lambda m: None)
    rows = list(csv.DictReader((tmp_path / "search" / "trials.csv").open()))
    assert [r["number"] for r in rows] == ["0", "1"] and all(r["state"] == "complete" for r in rows)
    assert all(1e-4 <= float(r["training.lr"]) <= 1e-2 for r in rows)
    assert result.best_value == max(float(r["dev_score"]) for r in rows)
    best = yaml.safe_load(result.best_config.read_text())
    assert best["training"]["lr"] == pytest.approx(result.best_params["training.lr"])
    assert (result.best_dir / "polyhead.json").is_file()
    # best.yaml names the data relative to itself: it trains as it is.
    again = polyhead.train(result.best_config, tmp_path / "again", progress=False, log=lambda m: None)
    assert again.global_step == 4
    with pytest.raises(PolyheadError, match="holds an earlier search"):
        polyhead.tune(config, tmp_path / "search", {"training.lr": "log:1e-4:1e-2"}, trials=1)


@pytest.mark.parametrize("space, match", [
    ({"training.lrr": "log:1e-4:1e-2"}, r"search space training.lrr = 0.0001: training: unknown key\(s\) lrr"),
    ({"training.lr": "log:1e-2:1e-4"}, r"search space training.lr: the range \[0.01, 0.0001\] is empty"),
    ({"training.lr": "float:-1:1"}, r"search space training.lr = -1.0: training.lr: expected a positive number"),
    ({"training.epochs": "int:1:2.5"}, r"int ranges take whole numbers"),
    ({"training.lr": "normal:0:1"}, r"is not float:LOW:HIGH"),
    ({"training.weighting": []}, r"an empty list of choices"),
    ({}, r"the search space is empty: give the config a search: section"),
])
def test_a_bad_search_space_is_one_line_before_any_trial(tmp_path, space, match):
    config = write_config(tmp_path, epochs=1)
    with pytest.raises(PolyheadError, match=match) as err:
        polyhead.tune(config, tmp_path / "search", space, trials=1)
    assert "\n" not in str(err.value) and not (tmp_path / "search" / "trials").exists()


def test_space_from_the_command_line_syntax():
    (lr, weighting, epochs) = parse_space(["training.lr=log:1e-5:1e-3", "training.weighting=choice:equal,loss_scale",
                                           "training.epochs=int:1:4"])
    assert (lr.dist, lr.low, lr.high) == ("log", 1e-5, 1e-3)
    assert weighting.choices == ["equal", "loss_scale"] and epochs.ends() == [1, 4]
    with pytest.raises(PolyheadError, match="expected KEY=SPEC"):
        parse_space(["training.lr"])


def test_a_pruned_trial_stops_early_and_is_recorded(tmp_path):
    import optuna

    class AlwaysPrune(optuna.pruners.BasePruner):
        def prune(self, study, trial):
            return True

    config = write_config(tmp_path, epochs=3, eval_every=2)
    original = optuna.pruners.MedianPruner
    optuna.pruners.MedianPruner = AlwaysPrune  # the search's pruner, for this test
    try:
        with pytest.raises(PolyheadError, match="no trial completed"):
            polyhead.tune(config, tmp_path / "search", {"training.lr": "log:1e-4:1e-2"}, trials=1, log=lambda m: None)
    finally:
        optuna.pruners.MedianPruner = original
    (row,) = csv.DictReader((tmp_path / "search" / "trials.csv").open())
    assert row["state"] == "pruned"
    metrics = yaml.safe_load((Path(row["folder"]) / "training" / "metrics.json").read_text())
    assert metrics["stopped_early"] is True and metrics["global_step"] == 2


@pytest.mark.slow
def test_two_processes_share_one_sqlite_study(tmp_path):
    config = write_config(tmp_path, epochs=1, max_steps=3)
    storage = f"sqlite:///{tmp_path / 'tune.db'}"
    command = [sys.executable, "-m", "polyhead", "tune", str(config), "-o", str(tmp_path / "search"), "--trials", "3",
               "--space", "training.lr=log:1e-4:1e-2", "--storage", storage, "--study-name", "shared", "--device", "cpu"]
    env = {**os.environ, "PYTHONPATH": SRC + os.pathsep + os.environ.get("PYTHONPATH", "")}
    workers = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [w.communicate(timeout=600)[0] for w in workers]
    assert all(w.returncode == 0 for w in workers), outputs
    import optuna

    study = optuna.load_study(study_name="shared", storage=storage)
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert 3 <= len(finished) <= 4  # --trials is the study's total (a worker may start one as the other finishes)
    folders = {Path(t.user_attrs["folder"]).name for t in finished}
    assert len(folders) == len(finished)  # each trial its own folder, whichever worker ran it
    assert all(out.count("trial ") >= 2 for out in outputs)  # both workers ran trials
    assert (tmp_path / "search" / "best.yaml").is_file()


def test_the_config_carries_its_search_space_and_the_command_line_wins(tmp_path):
    config = write_config(tmp_path, epochs=1, max_steps=2)
    data = yaml.safe_load(config.read_text())
    data["search"] = {"training.lr": "log:1e-4:1e-2", "training.weighting": ["equal", "uncertainty"]}
    config.write_text(yaml.safe_dump(data))
    assert polyhead.load_config(config).search["training.lr"] == "log:1e-4:1e-2"
    result = polyhead.tune(config, tmp_path / "search", ["training.weighting=choice:dwa"], trials=1, log=lambda m: None)
    assert result.best_params["training.weighting"] == "dwa" and 1e-4 <= result.best_params["training.lr"] <= 1e-2
    # polyhead train reads the same file and ignores the search space; a bad one fails when it loads.
    assert polyhead.train(config, tmp_path / "run", progress=False, log=lambda m: None).global_step == 2
    data["search"] = {"training.lr": "normal:0:1"}
    config.write_text(yaml.safe_dump(data))
    with pytest.raises(PolyheadError, match="search space training.lr: 'normal:0:1' is not float:LOW:HIGH"):
        polyhead.load_config(config)
