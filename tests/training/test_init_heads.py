"""training.init_heads: fit — the heads are fit on the starting encoder (frozen) before joint
training: linear probing, then fine-tuning."""
from __future__ import annotations

import pytest
import torch

from polyhead import PolyheadError, load
from polyhead.training import loop, refit
from polyhead.training.build import build_model
from polyhead.training.config import load_config
from polyhead.training.data import build_sources
from polyhead.training.frozen import fit_frozen_heads
from polyhead.training.loop import train

from train_helpers import write_config

# lr this small leaves every weight where the first step found it (to float precision)
STILL = ["training.lr=1e-12", "training.head_lr=1e-12", "training.max_steps=1", "training.warmup_ratio=0"]


def _cfg(tmp_path, *overrides, **training):
    return load_config(write_config(tmp_path, **training), list(overrides))


def _fit_on_fresh_model(cfg):
    """The heads a frozen fit gives on the model as a run builds it (same seed)."""
    torch.manual_seed(cfg.training.seed)
    sources, specs = build_sources(cfg)
    from accelerate.utils import set_seed
    set_seed(cfg.training.seed)
    model = build_model(cfg, specs, "cpu")
    fit_frozen_heads(model, sources, ["topic", "ner"], seed=cfg.training.seed, progress=False, score_test=False)
    return model


def test_fit_first_starts_training_from_the_frozen_fit(tmp_path):
    cfg = _cfg(tmp_path, *STILL, "training.init_heads=fit")
    lines: list[str] = []
    train(cfg, tmp_path / "out", progress=False, log=lines.append)
    assert any("on the starting encoder first" in line and "topic" in line and "ner" in line for line in lines)
    saved = load(tmp_path / "out")
    fitted = _fit_on_fresh_model(cfg)
    for task in ("topic", "ner"):
        for key, value in fitted.heads[task].state_dict().items():
            torch.testing.assert_close(saved.heads[task].state_dict()[key], value, atol=1e-5, rtol=1e-4)


def test_random_heads_are_the_default_and_differ_from_the_fit(tmp_path):
    cfg = _cfg(tmp_path, *STILL)
    assert cfg.training.init_heads == "random"
    lines: list[str] = []
    train(cfg, tmp_path / "out", progress=False, log=lines.append)
    assert not any("on the starting encoder first" in line for line in lines)
    saved = load(tmp_path / "out")
    fitted = _fit_on_fresh_model(cfg)
    weight = next(k for k in fitted.heads["topic"].state_dict() if k.endswith("weight"))
    assert not torch.allclose(saved.heads["topic"].state_dict()[weight], fitted.heads["topic"].state_dict()[weight], atol=1e-3)


def test_frozen_heads_and_heads_from_init_from_keep_their_weights(tmp_path, monkeypatch):
    fitted_names: list[list[str]] = []
    real = refit.fit_frozen_heads

    def spy(model, sources, names, **kwargs):
        fitted_names.append(list(names))
        return real(model, sources, names, **kwargs)

    monkeypatch.setattr(refit, "fit_frozen_heads", spy)
    cfg = _cfg(tmp_path / "a", *STILL, "training.init_heads=fit", "freeze.heads=[ner]")
    train(cfg, tmp_path / "a" / "out", progress=False)
    assert fitted_names == [["topic"]]  # the similarity head has nothing to fit; ner is frozen

    fitted_names.clear()
    cfg = _cfg(tmp_path / "b", *STILL, "training.init_heads=fit", f"training.init_from={tmp_path / 'a' / 'out'}")
    train(cfg, tmp_path / "b" / "out", progress=False)
    assert fitted_names == []  # both fittable heads come from init_from with the same labels


def test_a_resumed_run_does_not_fit_again(tmp_path, monkeypatch):
    cfg = _cfg(tmp_path, "training.init_heads=fit")
    calls: list[str] = []
    monkeypatch.setattr(refit, "fit_frozen_heads", lambda *a, **k: calls.append("fit"))
    from polyhead.training.devices import make_accelerator
    accelerator = make_accelerator("no", "cpu")
    loop.build_run(cfg, tmp_path / "out", accelerator, lambda m: None, resume=True)
    assert calls == []
    loop.build_run(cfg, tmp_path / "out", accelerator, lambda m: None, resume=False)
    assert calls == ["fit"]


def test_an_unknown_init_is_one_line(tmp_path):
    with pytest.raises(PolyheadError, match="init_heads"):
        _cfg(tmp_path, "training.init_heads=probe")
