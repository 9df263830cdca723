"""Config validation: every field is type- and range-checked at load time, with its key path."""
from __future__ import annotations

import dataclasses
import typing
import warnings

import pytest
import yaml

from polyhead import PolyheadError
from polyhead.modeling.encoder import cpu_supports_bf16
from polyhead.training import config as config_module
from polyhead.training.config import (
    DatasetConfig,
    EncoderConfig,
    FreezeConfig,
    TaskConfig,
    TrainingConfig,
    config_from_dict,
    load_config,
)

TASK = {"name": "t", "kind": "classification", "train": "x.jsonl"}


def _write(tmp_path, **sections):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"tasks": [dict(TASK), {"name": "n", "kind": "token", "train": "n.conll"}], **sections}))
    return path


def _error(fn, *args) -> str:
    with pytest.raises(PolyheadError) as info:
        fn(*args)
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.mark.parametrize(
    "override,message",
    [
        ("training.epochs=abc", "training.epochs: expected a positive integer, got 'abc'"),
        ("training.epochs=2.5", "training.epochs: expected a positive integer, got 2.5"),
        ("freeze.layers=two", "freeze.layers: expected a non-negative integer, got 'two'"),
        ("training.log_every=0", "training.log_every: expected a positive integer, got 0"),
        ("training.lr=[", "override 'training.lr=[': invalid YAML: expected the node content"),
        ("tasks.5.kind=x", "override 'tasks.5.kind=x': no entry 5; its entries are 0 to 1"),
        ("training.epochs.x=1", "override 'training.epochs.x=1': training.epochs is 3, not a section or list"),
        ("training.seed=-1", "training.seed: expected an integer in [0, 4294967295], got -1"),
        ("training.lr=.inf", "training.lr: expected a positive number, got inf"),
        ("training.keep_checkpoints=maybe", "training.keep_checkpoints: expected true or false, got 'maybe'"),
        ("training.scheduler=steps", "training.scheduler: expected one of linear, cosine, constant, got 'steps'"),
        ("training.weighting=magic", "training.weighting: expected one of dwa, equal, famo, loss_scale, static, uncertainty, got 'magic'"),
        ("training.layer_decay=0", "training.layer_decay: expected a number in (0.0, 1.0], got 0.0"),
        ("tasks.0.delimiter=ab", "tasks[0].delimiter: expected a single character (or null), got 'ab'"),
        ("tasks.t.score_range=[1]", "tasks[0].score_range: expected a list of 2 numbers, got [1]"),
        ("tasks.n.labels=[O, 3, [x]]", "tasks[1].labels[2]: expected a string, got ['x']"),
        ("tasks.0.kind=tree", "tasks[0].kind: expected one of classification, multilabel, regression, token, similarity"),
        ("tasks.0.loss=contrastive", "tasks[0]: task 't': loss 'contrastive' does not fit kind 'classification'"),
        ("encoder.pooling=sum", "encoder.pooling: expected one of mean, cls, max, mean_sqrt_len_tokens, weightedmean, lasttoken (or null), got 'sum'"),
        ("training.weighting_options={weights: {t: 1}}", "training.weighting_options: 'equal' weighting got unknown option"),
        ("training.weighting=static", None),
    ],
)
def test_wrong_values_are_one_line_errors_with_the_key_path(tmp_path, override, message):
    path = _write(tmp_path, training={"epochs": 3})
    if message is None:  # static weighting takes each task's weight:, as the loop does
        assert load_config(path, [override]).training.weighting == "static"
        return
    assert _error(load_config, path, [override]).startswith(message)


def test_train_command_reports_each_bad_value_in_one_line(tmp_path, capsys):
    from polyhead.cli.main import main

    path = _write(tmp_path)
    for override in ["training.epochs=abc", "training.lr=[", "tasks.5.kind=x", "training.log_every=0"]:
        assert main(["train", str(path), "--output", str(tmp_path / "out"), "--set", override]) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("polyhead: error: ") and "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # nothing was started


def test_every_checked_number_field_refuses_text_with_its_path():
    """The declarations drive the check: no field of any section can take a wrong type silently."""
    sections = {"encoder": EncoderConfig, "training": TrainingConfig, "freeze": FreezeConfig, "tasks": TaskConfig, "datasets": DatasetConfig}
    checked = 0
    for section, cls in sections.items():
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            tp = hints[f.name]
            if typing.get_origin(tp) is not None:
                tp = next((a for a in typing.get_args(tp) if a is not type(None)), tp)
            if tp not in (int, float, bool):
                continue
            task = dict(TASK)
            data = {"tasks": [task], "datasets": []}
            if section == "tasks":
                task[f.name] = "abc"
                where = "tasks[0]"
            elif section == "datasets":
                task.pop("train")
                data["datasets"] = [{"name": "d", "train": "x.jsonl", "labels": {"t": "label"}, f.name: "abc"}]
                where = "datasets[0]"
            else:
                data[section] = {f.name: "abc"}
                where = section
            message = _error(config_from_dict, data)
            assert message.startswith(f"{where}.{f.name}: expected "), message
            assert message.endswith("got 'abc'"), message
            checked += 1
    assert checked > 30


def test_yaml_no_and_numbers_as_names_read_as_people_meant(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("tasks: [{name: t, kind: classification, train: x.jsonl, labels: [1, 2]}]\ntraining: {lr: 1e-4}\n")
    cfg = load_config(path)
    assert cfg.tasks[0].labels == ["1", "2"] and cfg.training.lr == 1e-4
    # `training:` with nothing under it is null; an override can still set a key in it
    path.write_text("tasks: [{name: t, kind: classification, train: x.jsonl}]\ntraining:\n")
    assert load_config(path, ["training.epochs=1"]).training.epochs == 1


def test_precision_uses_the_inference_names_and_auto(monkeypatch):
    cfg = config_from_dict({"tasks": [TASK], "training": {"precision": "auto"}})
    assert cfg.training.precision == "auto"
    # auto: bf16 where the CPU has native bf16, else plain fp32 ("no" in Accelerate's words)
    assert cfg.training.accelerate_precision("cpu") == ("bf16" if cpu_supports_bf16() else "no")
    monkeypatch.setattr("polyhead.modeling.encoder.cpu_supports_bf16", lambda: False)
    assert cfg.training.accelerate_precision("cpu") == "no"
    assert config_from_dict({"tasks": [TASK]}).training.mixed_precision == "no"  # default fp32
    assert config_from_dict({"tasks": [TASK], "training": {"precision": "fp16"}}).training.mixed_precision == "fp16"
    assert _error(config_from_dict, {"tasks": [TASK], "training": {"precision": "no"}}).startswith(
        "training.precision: expected one of fp32, bf16, fp16, auto, got 'no'"
    )


def test_mixed_precision_is_a_deprecated_alias_that_warns_once(tmp_path, monkeypatch):
    monkeypatch.setattr(config_module, "_WARNED", set())
    path = tmp_path / "c.yaml"
    path.write_text("tasks: [{name: t, kind: classification, train: x.jsonl}]\ntraining: {mixed_precision: no}\n")
    with pytest.warns(FutureWarning, match="training.mixed_precision is deprecated; write training.precision: fp32"):
        cfg = load_config(path)  # YAML reads the unquoted `no` as false: still means no mixed precision
    assert cfg.training.precision == "fp32" and cfg.training.mixed_precision == "no"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second use in the same process does not warn again
        cfg = load_config(path, ["training.mixed_precision=bf16"])
    assert cfg.training.precision == "bf16" and cfg.training.mixed_precision == "bf16"
    assert "mixed_precision" not in cfg.to_dict()["training"]
    assert config_from_dict(cfg.to_dict()).training.precision == "bf16"  # the saved config reloads
    cfg.training.mixed_precision = "fp16"  # old code that assigns the attribute keeps working
    assert cfg.training.precision == "fp16"
    assert _error(load_config, path, ["training.precision=fp16"]).startswith(
        "training: give precision or its old name mixed_precision, not both"
    )
    assert _error(load_config, path, ["training.mixed_precision=fp32"]).startswith(
        "training.mixed_precision: expected one of no, bf16, fp16, got 'fp32'"
    )


def test_structural_errors_name_what_to_fix(tmp_path):
    assert _error(config_from_dict, {"tasks": [{"kind": "token", "train": "x"}]}) == "tasks[0]: missing required key 'name'"
    assert _error(config_from_dict, {"tasks": [TASK], 1: 2}).startswith("config: unknown section(s) 1;")
    assert _error(config_from_dict, {"tasks": [TASK], "training": {3: 1}}).startswith("training: unknown key(s) 3;")
    assert _error(config_from_dict, {"tasks": [TASK], "training": [1]}) == "training: expected a mapping, got [1]"
    path = tmp_path / "c.yaml"
    path.write_text("- just\n- a list\n")
    assert "the config must be a mapping at the top level" in _error(load_config, path)
    path.write_text("tasks: [" * 2000)
    assert "invalid YAML" in _error(load_config, path)
