"""SIGTERM and SIGINT during training: the step in progress finishes, a checkpoint is written,
the run stops with status 128 + signal, and --resume gives weights bit-identical to a run that was
never stopped; a second signal stops at once. The signals are real (os.kill on this process)."""
from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from polyhead.errors import RunStopped, StopNow
from polyhead.training import loop
from polyhead.training.config import load_config
from polyhead.training.loop import train

from train_helpers import write_config

# 2 epochs of 16 optimiser steps (batch 4), no dev evaluation in between.
OVERRIDES = ["training.epochs=2", "tasks.topic.dev=null", "tasks.ner.dev=null", "tasks.sts.dev=null", "training.log_every=100"]


def weights(folder: Path) -> dict[str, torch.Tensor]:
    out = {f"encoder.{k}": v for k, v in load_file(str(folder / "encoder" / "model.safetensors")).items()}
    for f in (folder / "heads").glob("*.safetensors"):
        out.update({f"{f.stem}.{k}": v for k, v in load_file(str(f)).items()})
    return out


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_config(tmp_path_factory.mktemp("stop"))


@pytest.fixture(scope="module")
def uninterrupted(config: Path) -> dict[str, dict[str, torch.Tensor]]:
    out: dict[str, dict[str, torch.Tensor]] = {}
    for accum in (1, 2):
        folder = config.parent / f"full-{accum}"
        train(load_config(config, OVERRIDES + [f"training.grad_accum={accum}"]), folder, progress=False)
        out[str(accum)] = weights(folder)
    return out


def signal_at(monkeypatch: pytest.MonkeyPatch, where: str, step: int, signum: int, times: int = 1) -> None:
    """Send `signum` to this process (`times` times) right after optimiser step `step`
    (where="step") or after the backward pass of micro-batch `step` (where="micro")."""
    target = {"step": "optimizer_step", "micro": "forward_backward"}[where]
    original = getattr(loop, target)
    count = {"n": 0}

    def wrapped(run, state, *args, **kwargs):
        result = original(run, state, *args, **kwargs)
        count["n"] += 1
        if count["n"] == step:
            for _ in range(times):
                os.kill(os.getpid(), signum)
        return result

    monkeypatch.setattr(loop, target, wrapped)


@pytest.mark.parametrize("where, at, accum, signum, saved", [
    ("step", 5, 1, signal.SIGTERM, 5),     # mid-epoch
    ("step", 16, 1, signal.SIGTERM, 16),   # the last step of the first epoch
    ("micro", 7, 2, signal.SIGTERM, 4),    # between the two micro-batches of step 4: step 4 finishes
    ("step", 3, 1, signal.SIGINT, 3),      # Ctrl-C behaves the same
])
def test_a_stop_signal_checkpoints_and_resume_is_bit_identical(config: Path, uninterrupted: dict, monkeypatch: pytest.MonkeyPatch,
                                                              tmp_path: Path, where: str, at: int, accum: int, signum: int, saved: int) -> None:
    cfg = lambda: load_config(config, OVERRIDES + [f"training.grad_accum={accum}"])  # noqa: E731
    out = tmp_path / "run"
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}  # another library's (Ray's) or the default
    with monkeypatch.context() as m:
        signal_at(m, where, at, signum)
        with pytest.raises(RunStopped, match=rf"stopped by {signal.Signals(signum).name}: checkpoint of step {saved} saved .*--resume") as stopped:
            train(cfg(), out, progress=False)
    assert stopped.value.status == 128 + signum
    assert (out / "checkpoints" / "latest").read_text().strip() == f"step-{saved:07d}"
    assert {sig: signal.getsignal(sig) for sig in before} == before  # the run's handlers are gone, the earlier ones back
    train(cfg(), out, resume=True, progress=False)
    want, got = uninterrupted[str(accum)], weights(out)
    assert want.keys() == got.keys()
    assert all(torch.equal(want[k], got[k]) for k in want)


def test_a_second_signal_stops_at_once(config: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    signal_at(monkeypatch, "micro", 3, signal.SIGTERM, times=2)
    with pytest.raises(StopNow) as stopped:
        train(load_config(config, OVERRIDES + ["training.grad_accum=2"]), tmp_path / "run", progress=False)
    assert stopped.value.status == 128 + signal.SIGTERM
    assert not (tmp_path / "run" / "checkpoints").exists()  # no step finished, nothing written


def test_checkpoint_every_minutes_writes_checkpoints_by_time(config: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clock = {"t": 1000.0}

    def fake_monotonic() -> float:
        clock["t"] += 7.0  # every call: 7 s later
        return clock["t"]

    saved_steps: list[int] = []
    save = loop.save_checkpoint

    def recording_save(run, state):
        save(run, state)
        saved_steps.append(state.global_step)

    monkeypatch.setattr(loop.time, "monotonic", fake_monotonic)
    monkeypatch.setattr(loop, "save_checkpoint", recording_save)
    train(load_config(config, OVERRIDES + ["training.checkpoint_every_minutes=0.25"]), tmp_path / "run", progress=False)
    # a 15 s cadence against 7 s per clock read: checkpoints inside each epoch, not only at the two epoch ends
    assert len(saved_steps) > 4 and any(step % 16 for step in saved_steps), saved_steps


def test_the_command_line_exits_143_and_says_how_to_resume(config: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    src = str(Path(__file__).resolve().parents[2] / "src")
    script = (
        "import os, signal, sys\n"
        "from polyhead.training import loop\n"
        "step = loop.optimizer_step\n"
        "def once(run, state, *a):\n"
        "    step(run, state, *a)\n"
        "    if state.global_step == 3: os.kill(os.getpid(), signal.SIGTERM)\n"
        "loop.optimizer_step = once\n"
        "from polyhead.cli.main import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    args = ["train", str(config), "--output", str(tmp_path / "run"), "--no-progress", *sum((["--set", o] for o in OVERRIDES), [])]
    done = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": src})
    assert done.returncode == 143, done.stderr
    assert "SIGTERM received: stopping after this optimiser step" in done.stderr
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("polyhead: stopped by SIGTERM: checkpoint of step 3 saved") and "--resume" in last
