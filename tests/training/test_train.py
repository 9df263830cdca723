"""Training end to end on the tiny BERT: learning, freezing, schedules, checkpoints and resume."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from polyhead import PolyheadError, load
from polyhead.training.config import load_config
from polyhead.training.freezing import GradualUnfreezer, apply_freezing, param_groups
from polyhead.training.evaluation import evaluate
from polyhead.training.loop import train

from train_helpers import write_config

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _cfg(tmp_path, *overrides, **training):
    return load_config(write_config(tmp_path, **training), list(overrides))


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    out = {f"encoder.{k}": v for k, v in load_file(str(folder / "encoder" / "model.safetensors")).items()}
    for f in (folder / "heads").glob("*.safetensors"):
        out.update({f"{f.stem}.{k}": v for k, v in load_file(str(f)).items()})
    return out


def test_joint_training_learns_all_three_tasks_and_writes_outputs(tmp_path):
    cfg = _cfg(tmp_path, "training.epochs=6")
    result = train(cfg, tmp_path / "out", progress=False)
    assert set(result.dev) == {"topic", "ner", "sts"}
    assert result.dev["topic"]["accuracy"] >= 0.75  # 2 separable classes, learned from scratch
    history = (tmp_path / "out" / "training" / "curves.csv").read_text().splitlines()
    losses = [float(r.split(",")[4]) for r in history[1:] if r.startswith("train,") and ",topic," in r]
    assert losses[-1] < losses[0]
    assert (tmp_path / "out" / "training" / "curves.png").stat().st_size > 1000
    metrics = json.loads((tmp_path / "out" / "training" / "metrics.json").read_text())
    assert metrics["best_step"] > 0 and "entity_f1" in metrics["dev"]["ner"]
    assert not (tmp_path / "out" / "checkpoints").exists()  # removed after a successful run
    model = load(tmp_path / "out")
    assert model.tasks["ner"].labels == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    assert model.predict(["the team won"])[0]["tasks"]["topic"]["label"] in ("sports", "tech")


def _trained_weights(tmp_path, name, *overrides):
    cfg = _cfg(tmp_path, *overrides)
    init = tmp_path / "init"
    if not init.exists():
        # The untrained starting point: same seed, nothing trainable.
        train(_cfg(tmp_path, "freeze.all=true"), init, progress=False)
    train(cfg, tmp_path / name, progress=False)
    return _weights(init), _weights(tmp_path / name)


def test_frozen_backbone_is_bit_identical_and_heads_train(tmp_path):
    before, after = _trained_weights(tmp_path, "fb", "freeze.encoder=true")
    enc = [k for k in before if k.startswith("encoder.")]
    assert enc and all(torch.equal(before[k], after[k]) for k in enc)
    assert not torch.equal(before["topic.net.1.weight"], after["topic.net.1.weight"])


def test_frozen_head_is_bit_identical_while_the_rest_trains(tmp_path):
    before, after = _trained_weights(tmp_path, "fh", "freeze.heads=[ner]")
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith("ner."))
    assert not torch.equal(before["encoder.encoder.layer.1.output.dense.weight"], after["encoder.encoder.layer.1.output.dense.weight"])
    assert not torch.equal(before["topic.net.1.weight"], after["topic.net.1.weight"])


def test_lowest_layers_and_embeddings_frozen(tmp_path):
    before, after = _trained_weights(tmp_path, "fl", "freeze.layers=1", "freeze.embeddings=true")
    frozen = [k for k in before if k.startswith(("encoder.embeddings.", "encoder.encoder.layer.0."))]
    moving = [k for k in before if k.startswith("encoder.encoder.layer.1.")]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)
    assert any(not torch.equal(before[k], after[k]) for k in moving)


def test_whole_network_frozen_changes_nothing(tmp_path):
    before, after = _trained_weights(tmp_path, "fa", "freeze.all=true")
    assert all(torch.equal(before[k], after[k]) for k in before)
    metrics = json.loads((tmp_path / "fa" / "training" / "metrics.json").read_text())
    assert metrics["trainable_params"] == 0 and "topic" in metrics["dev"]  # still evaluated


def test_gradual_unfreezing_goes_top_down(tmp_path):
    from polyhead.training.loop import build_model
    from polyhead.training.data import build_sources

    cfg = _cfg(tmp_path)
    _, specs = build_sources(cfg)
    model = build_model(cfg, specs, "cpu")
    frozen = apply_freezing(model, cfg.freeze)
    unf = GradualUnfreezer(model, every=1, static_frozen=frozen)
    layer = lambda i: model.encoder.backbone.encoder.layer[i].output.dense.weight  # noqa: E731
    emb = model.encoder.backbone.embeddings.word_embeddings.weight
    unf.update(0)
    assert not layer(1).requires_grad and not layer(0).requires_grad and not emb.requires_grad
    assert model.heads["topic"].net[1].weight.requires_grad
    unf.update(1)
    assert layer(1).requires_grad and not layer(0).requires_grad
    unf.update(2)
    assert layer(0).requires_grad and not emb.requires_grad
    unf.update(3)
    assert emb.requires_grad


def test_gradual_unfreezing_run_keeps_lower_layers_until_their_turn(tmp_path):
    # 2 epochs, one stage per epoch: layer 0 and embeddings never unfreeze.
    # No dev sets, so the saved model is the last one rather than the best on dev.
    before, after = _trained_weights(
        tmp_path, "gu", "freeze.gradual_unfreezing=1", "tasks.topic.dev=null", "tasks.ner.dev=null", "tasks.sts.dev=null"
    )
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith(("encoder.encoder.layer.0.", "encoder.embeddings.")))
    assert not torch.equal(before["encoder.encoder.layer.1.output.dense.weight"], after["encoder.encoder.layer.1.output.dense.weight"])


def test_layer_wise_lr_decay_groups(tmp_path):
    from polyhead.training.loop import build_model
    from polyhead.training.data import build_sources

    cfg = _cfg(tmp_path, "training.layer_decay=0.5", "training.head_lr=0.01", "training.lr=0.001")
    _, specs = build_sources(cfg)
    model = build_model(cfg, specs, "cpu")
    groups = param_groups(model, cfg.training)
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    bb = model.encoder.backbone
    assert lr_of[id(bb.encoder.layer[1].output.dense.weight)] == pytest.approx(0.001)
    assert lr_of[id(bb.encoder.layer[0].output.dense.weight)] == pytest.approx(0.0005)
    assert lr_of[id(bb.embeddings.word_embeddings.weight)] == pytest.approx(0.00025)
    assert lr_of[id(model.heads["topic"].net[1].weight)] == pytest.approx(0.01)
    wd_of = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    assert wd_of[id(bb.encoder.layer[0].output.dense.bias)] == 0.0


# static weighting with unequal weights: tests/training/test_weighting.py (with default weights it is "equal").
@pytest.mark.parametrize("weighting", ["uncertainty", "dwa"])
def test_weighting_strategies_train(tmp_path, weighting):
    result = train(_cfg(tmp_path, f"training.weighting={weighting}"), tmp_path / weighting, progress=False)
    assert result.global_step > 0
    rows = (tmp_path / weighting / "training" / "curves.csv").read_text().splitlines()
    assert any(r.startswith("train,") for r in rows)


@pytest.mark.parametrize("sampling", ["round_robin", "temperature"])
def test_sampling_strategies_train(tmp_path, sampling):
    result = train(_cfg(tmp_path, f"training.sampling={sampling}", "training.epochs=1"), tmp_path / sampling, progress=False)
    assert result.global_step > 0


def _run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "polyhead.cli", *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": SRC, **(env or {})})


KILL = str(Path(__file__).with_name("train_kill.py"))


def _run_killed(step, *args):
    """The CLI, SIGKILLed right after it writes the checkpoint of `step` (see train_kill.py)."""
    return subprocess.run([sys.executable, KILL, str(step), *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": SRC})


@pytest.mark.slow  # `make test-slow` (and CI) runs it
def test_resume_after_a_kill_matches_an_uninterrupted_run(tmp_path):
    config = write_config(tmp_path, epochs=2, checkpoint_every=3, keep_checkpoints=True)
    full = _run_cli("train", str(config), "--output", str(tmp_path / "full"), "--no-progress")
    assert full.returncode == 0, full.stderr
    killed = _run_killed(6, "train", str(config), "--output", str(tmp_path / "part"), "--no-progress")
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert (tmp_path / "part" / "checkpoints" / "latest").read_text().strip() == "step-0000006"
    again = _run_cli("train", str(config), "--output", str(tmp_path / "part"), "--no-progress")
    assert again.returncode == 1 and "--resume" in again.stderr  # never silently restarts over a run
    resumed = _run_cli("train", str(config), "--output", str(tmp_path / "part"), "--resume", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed from step 6" in resumed.stderr
    a, b = _weights(tmp_path / "full"), _weights(tmp_path / "part")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    ma = json.loads((tmp_path / "full" / "training" / "metrics.json").read_text())
    mb = json.loads((tmp_path / "part" / "training" / "metrics.json").read_text())
    assert ma["dev"] == mb["dev"] and ma["global_step"] == mb["global_step"]


@pytest.mark.slow  # `make test-slow` (and CI) runs it
def test_cli_train_then_predict_and_evaluate(tmp_path):
    config = write_config(tmp_path, epochs=1)
    out = _run_cli("train", str(config), "--output", str(tmp_path / "m"), "--no-progress")
    assert out.returncode == 0, out.stderr
    pred = _run_cli("predict", str(tmp_path / "m"), "Anna lives in Paris", "--precision", "fp32")
    assert pred.returncode == 0, pred.stderr
    assert set(json.loads(pred.stdout)["tasks"]) == {"topic", "ner"}
    ev = _run_cli("evaluate", str(tmp_path / "m"), str(config), "--output", str(tmp_path / "eval.json"))
    assert ev.returncode == 0, ev.stderr
    assert "accuracy" in ev.stdout and "entity_f1" in ev.stdout and "spearman" in ev.stdout
    assert set(json.loads((tmp_path / "eval.json").read_text())["metrics"]) == {"topic", "ner", "sts"}


def test_evaluate_matches_training_dev_metrics(tmp_path):
    cfg = _cfg(tmp_path, "training.epochs=1")
    result = train(cfg, tmp_path / "m", progress=False)
    from polyhead.training.data import build_sources

    sources, _ = build_sources(cfg)
    again = evaluate(load(tmp_path / "m"), sources, "dev")
    assert again["topic"] == pytest.approx(result.dev["topic"])
    assert again["ner"]["entity_f1"] == pytest.approx(result.dev["ner"]["entity_f1"])


def test_bad_config_values_are_clear_errors(tmp_path):
    with pytest.raises(PolyheadError, match="unknown key"):
        _cfg(tmp_path, "training.epoch=3")
    with pytest.raises(PolyheadError, match="weighting"):
        train(_cfg(tmp_path, "training.weighting=magic"), tmp_path / "x", progress=False)
    with pytest.raises(PolyheadError, match="freeze.heads names unknown task"):
        _cfg(tmp_path, "freeze.heads=[nope]")


LAUNCH = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
          "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0"]


def _launch(*args):
    """Two processes under `accelerate launch` (gloo on CPU)."""
    return subprocess.run([*LAUNCH, *args], capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONPATH": SRC})


@pytest.mark.slow  # `make test-slow` (and CI) runs it
def test_two_process_training_and_resume_with_accelerate_launch(tmp_path):
    config = write_config(tmp_path, epochs=1, checkpoint_every=3, keep_checkpoints=True)
    out = _launch("-m", "polyhead.cli", "train", str(config), "--output", str(tmp_path / "ddp"), "--no-progress")
    assert out.returncode == 0, out.stderr[-3000:]
    # 32 topic + 16 ner + 16 sts examples, batch 4 per process x 2 processes: 4 + 2 + 2 steps.
    assert "1 epoch(s) x 8 batches" in out.stderr
    assert out.stderr.count("done in") == 1  # only the main process reports and writes
    model = load(tmp_path / "ddp")
    assert set(model.tasks) == {"topic", "ner", "sts"}
    # Killed after step 3 and resumed: every process continues from its own RNG state (each
    # drew its own dropout masks), so the result is the uninterrupted run's, bit for bit.
    killed = _launch(KILL, "3", "train", str(config), "--output", str(tmp_path / "part"), "--no-progress")
    assert killed.returncode != 0
    ckpt = tmp_path / "part" / "checkpoints" / (tmp_path / "part" / "checkpoints" / "latest").read_text().strip()
    assert ckpt.name == "step-0000003"
    rng = [load_file(str(ckpt / f"rng-{rank}.safetensors"))["/torch"] for rank in (0, 1)]
    assert not torch.equal(rng[0], rng[1])  # each process has its own dropout stream to continue
    resumed = _launch("-m", "polyhead.cli", "train", str(config), "--output", str(tmp_path / "part"), "--resume", "--no-progress")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resumed from step 3" in resumed.stderr
    a, b = _weights(tmp_path / "ddp"), _weights(tmp_path / "part")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_early_stopping_stops_when_dev_stops_improving(tmp_path):
    # A vanishing lr: nothing improves after the first evaluation; patience 1 stops at the second.
    cfg = _cfg(tmp_path, "training.epochs=5", "training.lr=1e-12", "training.head_lr=1e-12", "training.early_stopping_patience=1")
    result = train(cfg, tmp_path / "es", progress=False)
    metrics = json.loads((tmp_path / "es" / "training" / "metrics.json").read_text())
    assert metrics["stopped_early"] is True
    assert result.global_step == 2 * 16  # two epochs of 16 batches, not five


def test_gradient_accumulation_halves_optimizer_steps(tmp_path):
    result = train(_cfg(tmp_path, "training.epochs=1", "training.grad_accum=2"), tmp_path / "ga", progress=False)
    assert result.global_step == 8  # 16 batches, one optimiser step per 2


def test_contrastive_similarity_loss_and_bf16_mixed_precision(tmp_path):
    seen: set[torch.dtype] = set()

    def record(module, args, output):
        if isinstance(module, torch.nn.Linear):
            seen.add(output.dtype)

    cfg = _cfg(tmp_path, "training.epochs=1", "tasks.sts.loss=contrastive", "training.precision=bf16")
    hook = torch.nn.modules.module.register_module_forward_hook(record)
    try:
        result = train(cfg, tmp_path / "c", progress=False)
    finally:
        hook.remove()
    assert torch.bfloat16 in seen  # the training forward passes really ran in bf16
    assert "spearman" in result.dev["sts"]
    assert load(tmp_path / "c").tasks["sts"].loss == "contrastive"


# -- the output folder: never replaced silently (issue 11) --------------------------------------
@pytest.mark.parametrize("existing", ["model", "files"])
def test_training_into_a_folder_with_something_in_it_is_refused_before_any_work(tmp_path, existing):
    out = tmp_path / "out"
    out.mkdir()
    keep = out / ("polyhead.json" if existing == "model" else "notes.txt")
    keep.write_text('{"mine": true}')
    with pytest.raises(PolyheadError, match="--overwrite") as err:
        train(_cfg(tmp_path, "training.epochs=1"), out, progress=False)
    assert "\n" not in str(err.value) and str(out) in str(err.value)
    assert keep.read_text() == '{"mine": true}' and sorted(p.name for p in out.iterdir()) == [keep.name]


def test_overwrite_replaces_a_model_and_drops_a_stale_unfinished_run(tmp_path):
    out = tmp_path / "out"
    (out / "checkpoints" / "step-0000005").mkdir(parents=True)
    (out / "checkpoints" / "latest").write_text("step-0000005")
    (out / "polyhead.json").write_text("{}")
    with pytest.raises(PolyheadError, match="unfinished run; pass --resume to continue it, or --overwrite"):
        train(_cfg(tmp_path, "training.epochs=1"), out, progress=False)
    with pytest.raises(PolyheadError, match="not both"):
        train(_cfg(tmp_path, "training.epochs=1"), out, resume=True, overwrite=True, progress=False)
    result = train(_cfg(tmp_path, "training.epochs=1"), out, overwrite=True, progress=False)
    assert result.global_step == 16 and set(load(out).tasks) == {"topic", "ner", "sts"}
    assert not (out / "checkpoints").exists()


def test_an_empty_folder_is_used_without_overwrite(tmp_path):
    (tmp_path / "out").mkdir()
    assert train(_cfg(tmp_path, "training.epochs=1", "training.max_steps=2"), tmp_path / "out", progress=False).global_step == 2


# -- resume checks the run is the same run (issue 11) --------------------------------------------
@pytest.fixture(scope="module")
def finished_with_checkpoint(tmp_path_factory):
    """One epoch (16 steps) trained with its last checkpoint kept: a run --resume can continue."""
    root = tmp_path_factory.mktemp("ckpt")
    config = write_config(root, epochs=1, keep_checkpoints=True)
    train(load_config(config), root / "run", progress=False)
    return root, config


def _copy_run(finished, tmp_path) -> Path:
    import shutil

    root, _ = finished
    return Path(shutil.copytree(root / "run", tmp_path / "run"))


def test_resume_refuses_a_changed_config_and_lists_what_changed(finished_with_checkpoint, tmp_path):
    _, config = finished_with_checkpoint
    out = _copy_run(finished_with_checkpoint, tmp_path)
    with pytest.raises(PolyheadError) as err:
        train(load_config(config, ["training.lr=0.002", "tasks.topic.dropout=0.3"]), out, resume=True, progress=False)
    message = str(err.value)
    assert "training.lr: 0.001 -> 0.002" in message and "tasks.topic.dropout: 0.1 -> 0.3" in message
    assert "--overwrite" in message and "config.yaml" in message and "\n" not in message
    # A task removed: a clear refusal, not a traceback from loading mismatched state.
    data = yaml.safe_load(config.read_text())
    data["tasks"] = [t for t in data["tasks"] if t["name"] != "sts"]
    fewer = tmp_path / "fewer.yaml"
    fewer.write_text(yaml.safe_dump(data))
    with pytest.raises(PolyheadError, match="tasks.sts: removed"):
        train(load_config(fewer), out, resume=True, progress=False)


def test_resume_refuses_changed_training_data(finished_with_checkpoint, tmp_path):
    root, _ = finished_with_checkpoint
    out = _copy_run(finished_with_checkpoint, tmp_path)
    config = write_config(tmp_path, epochs=1, keep_checkpoints=True)  # same settings, other files
    data = yaml.safe_load(config.read_text())
    data["encoder"]["model"] = str(root / "tiny-encoder")
    topic = Path(data["tasks"][0]["train"])
    topic.write_text(topic.read_text() + '{"text": "one more match", "label": "sports"}\n')
    config.write_text(yaml.safe_dump(data))
    with pytest.raises(PolyheadError, match=r"run.train_examples.topic: 32 -> 33"):
        train(load_config(config), out, resume=True, progress=False)


def test_resume_may_lengthen_the_run(finished_with_checkpoint, tmp_path):
    _, config = finished_with_checkpoint
    out = _copy_run(finished_with_checkpoint, tmp_path)
    result = train(load_config(config, ["training.epochs=2", "training.log_every=5"]), out, resume=True, progress=False)
    assert result.global_step == 32  # the second epoch ran on top of the first


@pytest.mark.parametrize("damage", ["truncated optimizer.safetensors", "garbage trainer_state.json",
                                    "missing tensor in optimizer.json", "truncated rng-0.safetensors",
                                    "truncated model/heads/topic.safetensors"])
def test_a_damaged_checkpoint_is_a_one_line_error_naming_the_file(finished_with_checkpoint, tmp_path, damage):
    _, config = finished_with_checkpoint
    out = _copy_run(finished_with_checkpoint, tmp_path)
    folder = out / "checkpoints" / (out / "checkpoints" / "latest").read_text().strip()
    how, name = damage.split(" ", 1)[0], damage.split(" ")[-1]
    path = folder / name
    if how == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    elif how == "garbage":
        path.write_text('{"epoch": 1, "glob')
    else:
        path.write_text(path.read_text().replace('"__tensor__": "/state/0/exp_avg"', '"__tensor__": "/nope"'))
    with pytest.raises(PolyheadError) as err:
        train(load_config(config), out, resume=True, progress=False)
    message = str(err.value)
    assert "\n" not in message and "--overwrite" in message
    assert str(path if not name.startswith("model/") else folder / "model") in message


def test_heads_learn_faster_than_the_encoder_by_default(tmp_path):
    from polyhead.training.config import HEAD_LR_RATIO
    from polyhead.training.data import build_sources
    from polyhead.training.loop import build_model

    cfg = _cfg(tmp_path, "training.lr=0.0001", "training.head_lr=null")
    _, specs = build_sources(cfg)
    model = build_model(cfg, specs, "cpu")
    lr_of = {id(p): g["lr"] for g in param_groups(model, cfg.training) for p in g["params"]}
    assert lr_of[id(model.encoder.backbone.encoder.layer[1].output.dense.weight)] == pytest.approx(1e-4)
    assert lr_of[id(model.heads["topic"].net[1].weight)] == pytest.approx(HEAD_LR_RATIO * 1e-4)
    assert HEAD_LR_RATIO > 1
