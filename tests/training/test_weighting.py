"""Tests for polyhead.weighting."""
from __future__ import annotations

import io
import math

import pytest
import torch

from polyhead.training.weighting import (
    WEIGHTINGS,
    DynamicWeightAverage,
    EqualWeighting,
    LossWeighting,
    StaticWeighting,
    UncertaintyWeighting,
    build_weighting,
)

TASKS = ["a", "b"]


def test_registry_and_build():
    assert set(WEIGHTINGS) == {"equal", "static", "uncertainty", "dwa"}
    for name, cls in WEIGHTINGS.items():
        assert issubclass(cls, LossWeighting) and cls.name == name
    assert isinstance(build_weighting("dwa", TASKS, temperature=1.0), DynamicWeightAverage)
    with pytest.raises(ValueError, match=r"valid: \['dwa', 'equal', 'static', 'uncertainty'\]"):
        build_weighting("gradnorm", TASKS)
    with pytest.raises(ValueError, match="unknown option"):
        build_weighting("equal", TASKS, temperature=2.0)
    with pytest.raises(ValueError, match="duplicate"):
        build_weighting("equal", ["a", "a"])


def test_equal_sums_present_tasks_only():
    w = EqualWeighting(TASKS)
    out = w.combine({"a": torch.tensor(2.0), "b": torch.tensor(3.0)})
    assert out.item() == pytest.approx(5.0)
    assert w.combine({"b": torch.tensor(3.0)}).item() == pytest.approx(3.0)
    assert w.weights() == {"a": 1.0, "b": 1.0}
    with pytest.raises(ValueError, match="unknown task"):
        w.combine({"c": torch.tensor(1.0)})
    with pytest.raises(ValueError):
        w.combine({})


def test_static_weights_and_errors():
    w = build_weighting("static", ["a", "b", "c"], weights={"a": 2.0, "b": 0.5, "c": 1.0})
    loss = torch.tensor(4.0, requires_grad=True)
    out = w.combine({"a": loss, "b": torch.tensor(2.0)})
    assert out.item() == pytest.approx(9.0)
    out.backward()
    assert loss.grad.item() == pytest.approx(2.0)
    assert w.weights() == {"a": 2.0, "b": 0.5, "c": 1.0}
    with pytest.raises(ValueError, match=r"no weight for task\(s\): \['b', 'c'\]"):
        StaticWeighting(["a", "b", "c"], weights={"a": 1.0})
    with pytest.raises(ValueError, match="unknown task"):
        StaticWeighting(["a"], weights={"a": 1.0, "typo": 1.0})
    with pytest.raises(ValueError, match="needs a `weights`"):
        StaticWeighting(["a"])


def test_uncertainty_gradient_and_convergence_to_log_loss():
    w = UncertaintyWeighting(TASKS)
    assert [p.shape for p in w.parameters()] == [torch.Size([2])]
    assert w.weights() == {"a": 1.0, "b": 1.0}  # s_t = 0 initially

    w.combine({"a": torch.tensor(4.0)}).backward()
    grad = w.log_vars.grad
    # d/ds [exp(-s)L + s] at s=0 is 1 - L; task b absent -> no gradient
    assert grad[0].item() == pytest.approx(1 - 4.0)
    assert grad[1].item() == 0.0

    w = UncertaintyWeighting(TASKS)
    opt = torch.optim.Adam(w.parameters(), lr=0.05)
    fixed = {"a": torch.tensor(4.0), "b": torch.tensor(0.25)}
    for _ in range(400):
        opt.zero_grad()
        w.combine(fixed).backward()
        opt.step()
    s = w.log_vars.detach()
    assert s[0].item() == pytest.approx(math.log(4.0), abs=0.05)
    assert s[1].item() == pytest.approx(math.log(0.25), abs=0.05)
    weights = w.weights()
    assert weights["a"] == pytest.approx(0.25, rel=0.06)
    assert weights["b"] == pytest.approx(4.0, rel=0.06)


def test_dwa_weights():
    w = DynamicWeightAverage(TASKS, temperature=2.0)
    assert w.weights() == {"a": 1.0, "b": 1.0}
    w.epoch_end({"a": 1.0, "b": 1.0})
    assert w.weights() == {"a": 1.0, "b": 1.0}  # still weight 1 during the second epoch
    w.epoch_end({"a": 0.9, "b": 0.5})  # a fell least
    ws = w.weights()
    e = torch.softmax(torch.tensor([0.9 / 2, 0.5 / 2]), dim=0) * 2
    assert ws["a"] == pytest.approx(e[0].item(), rel=1e-5)
    assert ws["b"] == pytest.approx(e[1].item(), rel=1e-5)
    assert ws["a"] > ws["b"]
    assert sum(ws.values()) == pytest.approx(2.0)
    out = w.combine({"a": torch.tensor(1.0), "b": torch.tensor(1.0)})
    assert out.item() == pytest.approx(2.0, rel=1e-5)
    # uses only the last two epochs: now b's loss stalls while a's halves
    w.epoch_end({"a": 0.45, "b": 0.5})
    assert w.weights()["b"] > w.weights()["a"]


def test_dwa_temperature_and_missing_task():
    hot = DynamicWeightAverage(TASKS, temperature=100.0)
    cold = DynamicWeightAverage(TASKS, temperature=0.1)
    for m in (hot, cold):
        m.epoch_end({"a": 1.0, "b": 1.0})
        m.epoch_end({"a": 0.9, "b": 0.5})
    assert abs(hot.weights()["a"] - 1.0) < 0.01  # large T -> near equal
    assert cold.weights()["a"] > 1.9
    with pytest.raises(ValueError):
        DynamicWeightAverage(TASKS, temperature=0.0)
    # a task absent from an epoch keeps its previous loss (ratio 1), no nan
    w = DynamicWeightAverage(TASKS)
    w.epoch_end({"a": 1.0, "b": 1.0})
    w.epoch_end({"a": 0.5})
    ws = w.weights()
    assert all(math.isfinite(v) for v in ws.values())
    assert ws["b"] > ws["a"]
    with pytest.raises(ValueError, match="unknown task"):
        w.epoch_end({"zzz": 1.0})


def _roundtrip(module: torch.nn.Module) -> dict:
    buf = io.BytesIO()
    torch.save(module.state_dict(), buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def test_dwa_state_dict_roundtrip_is_exact():
    w = DynamicWeightAverage(TASKS)
    w.epoch_end({"a": 1.0, "b": 2.0})
    w.epoch_end({"a": 0.7, "b": 1.9})
    fresh = DynamicWeightAverage(TASKS)
    fresh.load_state_dict(_roundtrip(w))
    assert fresh.weights() == w.weights()
    # history restored too: the next epoch gives identical weights
    w.epoch_end({"a": 0.6, "b": 1.0})
    fresh.epoch_end({"a": 0.6, "b": 1.0})
    assert fresh.weights() == w.weights()
    assert fresh.weights() != DynamicWeightAverage(TASKS).weights()


def test_dwa_state_dict_after_one_epoch():
    w = DynamicWeightAverage(TASKS)
    w.epoch_end({"a": 1.0, "b": 1.0})
    fresh = DynamicWeightAverage(TASKS)
    fresh.load_state_dict(w.state_dict())
    w.epoch_end({"a": 0.9, "b": 0.5})
    fresh.epoch_end({"a": 0.9, "b": 0.5})
    assert fresh.weights() == w.weights() != {"a": 1.0, "b": 1.0}


def test_uncertainty_state_dict_roundtrip():
    w = UncertaintyWeighting(TASKS)
    with torch.no_grad():
        w.log_vars.copy_(torch.tensor([0.3, -1.2]))
    fresh = UncertaintyWeighting(TASKS)
    fresh.load_state_dict(_roundtrip(w))
    assert fresh.weights() == w.weights()
    assert fresh.weights()["b"] == pytest.approx(math.exp(1.2), rel=1e-6)


def test_static_weighting_in_training_uses_each_tasks_weight(tmp_path):
    """End to end: `weight:` per task reaches the loss (not just `equal` under another name)."""
    from polyhead.training.config import load_config
    from polyhead.training.loop import train
    from train_helpers import write_config

    config = write_config(tmp_path, epochs=1)
    runs = {
        "equal": [],
        "static": ["training.weighting=static", "tasks.topic.weight=3.0", "tasks.ner.weight=0.5"],
    }
    weights = {}
    for name, overrides in runs.items():
        train(load_config(config, overrides), tmp_path / name, progress=False)
        rows = [r.split(",") for r in (tmp_path / name / "training" / "curves.csv").read_text().splitlines()[1:]]
        weights[name] = {r[3]: float(r[5]) for r in rows if r[0] == "train"}  # task -> logged weight
    assert weights["equal"] == {"topic": 1.0, "ner": 1.0, "sts": 1.0}
    assert weights["static"] == {"topic": 3.0, "ner": 0.5, "sts": 1.0}
    from polyhead import load

    a, b = load(tmp_path / "equal"), load(tmp_path / "static")
    assert not torch.equal(a.heads["topic"].net[-1].weight, b.heads["topic"].net[-1].weight)
