"""Tests for polyhead.weighting."""
from __future__ import annotations

import io
import math

import pytest
import torch

from polyhead.training.weighting import (
    FAMO,
    WEIGHTINGS,
    DynamicWeightAverage,
    EqualWeighting,
    LossScaleWeighting,
    LossWeighting,
    StaticWeighting,
    UncertaintyWeighting,
    build_weighting,
)

TASKS = ["a", "b"]


def test_registry_and_build():
    assert set(WEIGHTINGS) == {"equal", "static", "uncertainty", "dwa", "loss_scale", "famo"}
    for name, cls in WEIGHTINGS.items():
        assert issubclass(cls, LossWeighting) and cls.name == name
    assert isinstance(build_weighting("dwa", TASKS, temperature=1.0), DynamicWeightAverage)
    with pytest.raises(ValueError, match=r"valid: \['dwa', 'equal', 'famo', 'loss_scale', 'static', 'uncertainty'\]"):
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


# -- loss_scale ---------------------------------------------------------------------------------
def _step(w: LossWeighting, values: dict[str, float]) -> tuple[float, dict[str, float]]:
    """combine() on leaf losses of these values: the combined value and d(combined)/d(loss) per task."""
    leaves = {t: torch.tensor(float(v), requires_grad=True) for t, v in values.items()}
    out = w.combine(leaves)
    out.backward()
    return out.item(), {t: leaf.grad.item() for t, leaf in leaves.items()}


def test_loss_scale_ema_matches_a_hand_computation():
    w = build_weighting("loss_scale", TASKS, beta=0.5)
    assert isinstance(w, LossScaleWeighting) and list(w.parameters()) == []
    assert w.weights() == {"a": 1.0, "b": 1.0}  # nothing seen yet
    # a: first value initialises the mean (2), then 0.5*2 + 0.5*4 = 3, then 0.5*3 + 0.5*1 = 2.
    value, grad = _step(w, {"a": 2.0})
    assert value == pytest.approx(1.0) and grad["a"] == pytest.approx(1 / 2)
    value, grad = _step(w, {"a": 4.0, "b": 0.1})  # b's first value: its own scale, a's goes on
    assert value == pytest.approx(4 / 3 + 1.0, rel=1e-6)
    assert grad == pytest.approx({"a": 1 / 3, "b": 1 / 0.1}, rel=1e-6)
    value, grad = _step(w, {"a": 1.0})
    assert value == pytest.approx(0.5, rel=1e-6) and grad["a"] == pytest.approx(0.5, rel=1e-6)
    assert w.weights() == pytest.approx({"a": 0.5, "b": 10.0}, rel=1e-6)
    assert w.running_mean.tolist() == pytest.approx([2.0, 0.1], rel=1e-6)


def test_loss_scale_gives_each_task_a_unit_gradient_scale_whatever_its_units():
    # Two tasks with the same shape of loss, one in units 10x smaller (cross-entropy vs cosine MSE).
    theta = torch.tensor([0.3], requires_grad=True)
    f = lambda: ((theta - 1.0) ** 2).sum() + 0.5
    units = {"a": 1.0, "b": 0.1}
    w = LossScaleWeighting(TASKS)
    for _ in range(5):  # constant losses (theta never moves)
        for task, unit in units.items():
            w.combine({task: unit * f()})
    grads, values = {}, {}
    for task, unit in units.items():
        theta.grad = None
        out = w.combine({task: unit * f()})
        out.backward()
        grads[task], values[task] = theta.grad.item(), out.item()
    assert values == pytest.approx({"a": 1.0, "b": 1.0}, rel=1e-5)
    expected = 2 * (0.3 - 1.0) / (0.7**2 + 0.5)  # grad f / f: the loss's units cancel
    assert grads == pytest.approx({"a": expected, "b": expected}, rel=1e-5)
    # equal weighting, for contrast, passes the units straight to the gradient
    eq = {}
    for task, unit in units.items():
        theta.grad = None
        EqualWeighting(TASKS).combine({task: unit * f()}).backward()
        eq[task] = theta.grad.item()
    assert eq["a"] == pytest.approx(10 * eq["b"])


def test_loss_scale_state_dict_roundtrip_zero_loss_and_options():
    w = LossScaleWeighting(TASKS, beta=0.8)
    for a, b in [(2.0, 0.2), (1.5, 0.3), (1.0, 0.1)]:
        _step(w, {"a": a, "b": b})
    fresh = LossScaleWeighting(TASKS, beta=0.8)
    fresh.load_state_dict(_roundtrip(w))
    assert fresh.weights() == w.weights() != LossScaleWeighting(TASKS).weights()
    assert _step(fresh, {"a": 0.7}) == _step(w, {"a": 0.7})
    assert fresh.weights() == w.weights()
    # a zero loss: a large but finite weight, finite gradients; an inf loss is not remembered
    z = LossScaleWeighting(TASKS)
    for _ in range(3):
        value, grad = _step(z, {"a": 0.0, "b": 1.0})
        assert math.isfinite(value) and all(math.isfinite(g) for g in grad.values())
    assert all(math.isfinite(v) for v in z.weights().values())
    before = z.running_mean.clone()
    z.combine({"b": torch.tensor(float("inf"))})
    assert torch.equal(z.running_mean, before)
    # eval mode: weights apply, nothing is remembered
    z.eval()
    _step(z, {"a": 5.0, "b": 5.0})
    assert torch.equal(z.running_mean, before)
    for bad in (1.0, -0.1, "high", float("nan"), True):
        with pytest.raises(ValueError, match="'loss_scale' weighting option beta must be"):
            LossScaleWeighting(TASKS, beta=bad)
    with pytest.raises(ValueError, match="unknown option"):
        LossScaleWeighting(TASKS, temperature=2.0)
    assert LossScaleWeighting(["only"]).combine({"only": torch.tensor(3.0)}).item() == pytest.approx(1.0)


# -- famo ---------------------------------------------------------------------------------------
class _PaperFAMO:
    """FAMO as the paper states it, written independently for the tests: leaf logits, autograd
    through softmax, torch.optim.Adam with weight decay; every task's loss in every step."""

    def __init__(self, k: int, lr: float = 0.025, gamma: float = 0.01) -> None:
        self.w = torch.zeros(k, requires_grad=True)
        self.opt = torch.optim.Adam([self.w], lr=lr, weight_decay=gamma)

    def coefficients(self, losses: torch.Tensor) -> torch.Tensor:
        """d(objective)/d(loss_t) for objective Σ z_t log(L_t + eps) / c, c detached."""
        leaf = losses.clone().requires_grad_(True)
        z = torch.softmax(self.w.detach(), 0)
        d = leaf + 1e-8
        c = (z / d).sum().detach()
        (z * d.log() / c).sum().backward()
        return leaf.grad

    def update(self, before: torch.Tensor, after: torch.Tensor) -> None:
        delta = (before + 1e-8).log() - (after + 1e-8).log()
        (grad,) = torch.autograd.grad(torch.softmax(self.w, 0), self.w, grad_outputs=delta)
        self.opt.zero_grad()
        self.w.grad = grad
        self.opt.step()


def test_famo_first_updates_by_hand():
    w = build_weighting("famo", TASKS)
    assert isinstance(w, FAMO) and list(w.parameters()) == []  # ξ never reaches the model's AdamW
    assert w.weights() == {"a": 0.5, "b": 0.5}
    # step 1: only a, never seen -> no update, the whole step is a's (alpha = 1)
    value, grad = _step(w, {"a": 1.0})
    assert grad == pytest.approx({"a": 1.0}) and value == pytest.approx(math.log(1 + 1e-8), abs=1e-6)
    # step 2: only b (first time): no update; c = z_a/1 (remembered) + z_b/0.1, alpha_b = 5/5.5
    _, grad = _step(w, {"b": 0.1})
    assert grad["b"] == pytest.approx(5 / 5.5, rel=1e-6)
    assert w.logits.tolist() == [0.0, 0.0]
    # step 3: a again at 1/e: delta = (log 1 - log 1/e, 0) = (1, 0); J_softmax^T delta at z = (.5, .5)
    # is (0.25, -0.25); Adam's first step is lr * sign: logits (-0.025, +0.025).
    _, grad = _step(w, {"a": math.exp(-1)})
    assert w.logits.tolist() == pytest.approx([-0.025, 0.025], abs=1e-7)
    za = 1 / (1 + math.exp(0.05))
    alpha_a = (za / math.exp(-1)) / (za / math.exp(-1) + (1 - za) / 0.1)
    assert grad["a"] == pytest.approx(alpha_a, rel=1e-5)
    assert w.weights() == pytest.approx({"a": za, "b": 1 - za}, rel=1e-6)
    assert sum(w.weights().values()) == pytest.approx(1.0)


def test_famo_with_every_task_per_batch_matches_the_paper_over_several_updates():
    torch.manual_seed(0)
    k = 3
    seq = torch.rand(6, k) * torch.tensor([2.0, 0.2, 1.0]) + 0.05
    ours = FAMO(["a", "b", "c"], logit_lr=0.05, gamma=0.02)
    ref = _PaperFAMO(k, lr=0.05, gamma=0.02)
    for step, losses in enumerate(seq):
        if step:  # here the decrease is measured on the next batch, the paper's after the step
            ref.update(seq[step - 1], losses)
        _, grad = _step(ours, dict(zip(["a", "b", "c"], losses.tolist())))
        expected = ref.coefficients(losses)
        assert [grad[t] for t in "abc"] == pytest.approx(expected.tolist(), rel=1e-5)
        assert sum(grad.values()) == pytest.approx(1.0, rel=1e-5)  # a convex combination
        assert ours.logits.tolist() == pytest.approx(ref.w.detach().tolist(), abs=1e-6)
        assert sum(ours.weights().values()) == pytest.approx(1.0, rel=1e-6)
    assert int(ours.adam_steps) == len(seq) - 1


@pytest.mark.parametrize("per_step", ["one task", "both tasks"])
def test_famo_gives_weight_to_the_task_whose_loss_stops_falling(per_step):
    """The paper's core behaviour on observed losses: both tasks' losses fall alike for 100
    steps, then b's stops falling while a's goes on; b gains the weight a loses."""
    w = FAMO(TASKS)
    for step in range(300):
        k = step // 2 if per_step == "one task" else step
        values = {"a": math.exp(-0.02 * k), "b": math.exp(-0.02 * min(k, 50 if per_step == "one task" else 100))}
        present = [TASKS[step % 2]] if per_step == "one task" else TASKS
        _step(w, {t: values[t] for t in present})
        if step == 99:
            assert w.weights()["b"] == pytest.approx(0.5, abs=0.01)  # equal progress, equal weight
    assert w.weights()["b"] > 0.6 and w.weights()["a"] < 0.4


@pytest.mark.parametrize("per_step", ["one task", "both tasks"])
def test_famo_toy_problem_favours_the_slower_task(per_step):
    """Toy problem: plain SGD on two parameters along FAMO's direction. Task a can reach 0; task b
    has a floor of 0.5 it cannot go under, so its log-loss falls ever slower and it gains weight."""
    theta = torch.tensor([2.0, 2.0], requires_grad=True)
    losses = {"a": lambda: theta[0] ** 2, "b": lambda: theta[1] ** 2 + 0.5}
    w = FAMO(TASKS)
    opt = torch.optim.SGD([theta], lr=0.01)
    for step in range(300):
        present = [TASKS[step % 2]] if per_step == "one task" else TASKS
        opt.zero_grad()
        w.combine({t: losses[t]() for t in present}).backward()
        opt.step()
    la, lb = losses["a"]().item(), losses["b"]().item()
    assert math.log(4.0 / la) > 2 * math.log(4.5 / lb) > 0  # a's log-loss fell much further
    assert w.weights()["b"] > 0.6 and w.weights()["a"] < 0.4


def test_famo_state_dict_roundtrip_is_exact():
    w = FAMO(TASKS, logit_lr=0.1)
    rows = [{"a": 1.0}, {"b": 0.2}, {"a": 0.8}, {"a": 0.7, "b": 0.15}, {"b": 0.19}]
    for row in rows:
        _step(w, row)
    fresh = FAMO(TASKS, logit_lr=0.1)
    fresh.load_state_dict(_roundtrip(w))
    assert set(fresh.state_dict()) == {"logits", "last_log_loss", "adam_exp_avg", "adam_exp_avg_sq", "adam_steps"}
    assert fresh.weights() == w.weights() != {"a": 0.5, "b": 0.5}
    for row in [{"a": 0.5}, {"b": 0.3}, {"a": 0.6, "b": 0.1}]:
        assert _step(fresh, row) == _step(w, row)
    assert all(torch.equal(x, y) for x, y in zip(fresh.state_dict().values(), w.state_dict().values()))


def test_famo_zero_loss_single_task_eval_mode_and_options():
    w = FAMO(TASKS)
    for row in [{"a": 0.0}, {"b": 1.0}, {"a": 0.0, "b": 0.5}, {"a": 1.0}, {"a": 0.0}, {"b": 0.0}]:
        value, grad = _step(w, row)
        assert math.isfinite(value) and all(math.isfinite(g) and 0 <= g <= 1 for g in grad.values())
    assert all(torch.isfinite(t).all() for t in w.state_dict().values())
    assert sum(w.weights().values()) == pytest.approx(1.0)
    before = {k: v.clone() for k, v in w.state_dict().items()}
    w.combine({"a": torch.tensor(float("nan"))})  # a NaN loss is not remembered
    w.eval()
    _step(w, {"a": 0.3, "b": 0.3})  # eval mode: weights apply, nothing is learned
    assert all(torch.equal(before[k], v) for k, v in w.state_dict().items())
    single = FAMO(["only"])
    for v in (2.0, 1.0, 0.0):
        assert _step(single, {"only": v})[1] == {"only": pytest.approx(1.0)}  # one task: plain gradient
    assert single.weights() == {"only": 1.0}
    for key, bad in [("logit_lr", 0.0), ("logit_lr", "fast"), ("gamma", -1.0), ("gamma", float("inf"))]:
        with pytest.raises(ValueError, match=f"'famo' weighting option {key} must be"):
            FAMO(TASKS, **{key: bad})
    with pytest.raises(ValueError, match=r"'famo' weighting got unknown option\(s\): \['beta'\]"):
        FAMO(TASKS, beta=0.9)


# -- config and end to end ----------------------------------------------------------------------
@pytest.mark.parametrize("name,options", [("loss_scale", {"beta": 0.95}), ("famo", {"logit_lr": 0.01, "gamma": 0.001})])
def test_new_weightings_in_the_config(tmp_path, name, options):
    import yaml

    from polyhead import PolyheadError
    from polyhead.training.config import load_config

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"tasks": [{"name": "t", "kind": "classification", "train": "x.jsonl"}],
                                    "training": {"weighting": name, "weighting_options": options}}))
    cfg = load_config(path)
    assert (cfg.training.weighting, cfg.training.weighting_options) == (name, options)
    for override, message in [
        ("training.weighting_options={temperature: 2}", f"training.weighting_options: '{name}' weighting got unknown option(s): ['temperature']"),
        (f"training.weighting_options={{{next(iter(options))}: -5}}", f"training.weighting_options: '{name}' weighting option {next(iter(options))} must be"),
    ]:
        with pytest.raises(PolyheadError) as info:
            load_config(path, [override])
        assert str(info.value).startswith(message) and "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["loss_scale", "famo"])
def test_new_weightings_train_and_resume_exactly(tmp_path, monkeypatch, name):
    """A tiny run; and one stopped right after its step-8 checkpoint then resumed ends with the same
    weighting state (and model) as the uninterrupted run."""
    from safetensors.torch import load_file

    from polyhead.training import checkpoint, loop
    from polyhead.training.config import load_config
    from train_helpers import write_config

    config = write_config(tmp_path, epochs=1, checkpoint_every=4, keep_checkpoints=True)
    cfg = lambda: load_config(config, [f"training.weighting={name}"])
    result = loop.train(cfg(), tmp_path / "full", progress=False)
    assert result.global_step == 16

    class Killed(Exception):
        pass

    save = loop.save_checkpoint

    def save_then_die(run, state):
        save(run, state)
        if state.global_step == 8:
            raise Killed

    monkeypatch.setattr(loop, "save_checkpoint", save_then_die)
    with pytest.raises(Killed):
        loop.train(cfg(), tmp_path / "part", progress=False)
    assert (tmp_path / "part" / "checkpoints" / "latest").read_text().strip() == "step-0000008"
    monkeypatch.setattr(loop, "save_checkpoint", save)
    assert loop.train(cfg(), tmp_path / "part", resume=True, progress=False).global_step == 16

    def final(run):
        folder = checkpoint.latest_checkpoint(tmp_path / run / "checkpoints")
        assert folder.name == "step-0000016"
        heads = {f.stem: load_file(str(f)) for f in (folder / "model" / "heads").glob("*.safetensors")}
        return checkpoint.load_tree(folder, "weighting"), heads

    (wa, ha), (wb, hb) = final("full"), final("part")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)
    assert ha.keys() == hb.keys() and all(torch.equal(ha[h][k], hb[h][k]) for h in ha for k in ha[h])
    rows = [r.split(",") for r in (tmp_path / "full" / "training" / "curves.csv").read_text().splitlines()[1:]]
    logged = {r[3]: float(r[5]) for r in rows if r[0] == "train"}  # task -> last logged weight
    assert set(logged) == {"topic", "ner", "sts"} and all(math.isfinite(v) and v > 0 for v in logged.values())
    if name == "famo":
        assert torch.isfinite(wa["logits"]).all() and int(wa["adam_steps"]) > 0
        assert not torch.equal(wa["logits"], torch.zeros(3))
    else:
        assert torch.isfinite(wa["running_mean"]).all()
        assert logged["sts"] > logged["topic"]  # the cosine MSE is the smaller loss: larger weight


def test_loss_scale_weights_multiply_the_normalised_losses():
    plain = LossScaleWeighting(["a", "b"])
    weighted = LossScaleWeighting(["a", "b"], weights={"a": 2.0, "b": 0.5})
    losses = {"a": torch.tensor(3.0, requires_grad=True), "b": torch.tensor(0.2, requires_grad=True)}
    assert float(plain.combine(losses).detach()) == pytest.approx(2.0)  # each L_t / m_t is 1 on first sight
    weighted.combine(losses).backward()
    # d/dL (w L / m) with m = L detached = w / L
    assert float(losses["a"].grad) == pytest.approx(2.0 / 3.0)
    assert float(losses["b"].grad) == pytest.approx(0.5 / 0.2)
    assert weighted.weights() == pytest.approx({"a": 2.0 / 3.0, "b": 0.5 / 0.2})
    assert "weights={'a': 2.0, 'b': 0.5}" in repr(weighted)


@pytest.mark.parametrize("weights, message", [
    ({"a": 1.0}, r"no weight for task\(s\): \['b'\]"),
    ({"a": 1.0, "b": 1.0, "c": 1.0}, r"unknown task\(s\) \['c'\]"),
    ({"a": -1.0, "b": 1.0}, r"weights\.a must be in \[0, inf\)"),
    ({"a": "x", "b": 1.0}, r"weights\.a must be a number"),
    ([1.0, 2.0], r"must be a mapping"),
])
def test_loss_scale_weights_are_checked(weights, message):
    with pytest.raises(ValueError, match=message):
        LossScaleWeighting(["a", "b"], weights=weights)


def test_loss_scale_in_a_config_takes_each_tasks_weight(tmp_path):
    """`tasks.X.weight` reaches loss_scale (it used to be read by static only); an explicit
    weighting_options.weights wins; a bad one is a one-line config error before any data is read."""
    from polyhead.errors import PolyheadError
    from polyhead.training.build import make_weighting
    from polyhead.training.config import load_config
    from train_helpers import write_config

    config = write_config(tmp_path, epochs=1)
    cfg = load_config(config, ["training.weighting=loss_scale", "tasks.ner.weight=2"])
    w = make_weighting(cfg, [t.name for t in cfg.tasks])
    assert isinstance(w, LossScaleWeighting)
    assert w.task_weights == {"topic": 1.0, "ner": 2.0, "sts": 1.0}
    cfg = load_config(config, ["training.weighting=loss_scale", "tasks.ner.weight=2",
                               "training.weighting_options={weights: {topic: 3, ner: 1, sts: 1}}"])
    assert make_weighting(cfg, [t.name for t in cfg.tasks]).task_weights == {"topic": 3.0, "ner": 1.0, "sts": 1.0}
    with pytest.raises(PolyheadError, match=r"^training.weighting_options: 'loss_scale' weighting has no weight for task\(s\)"):
        load_config(config, ["training.weighting=loss_scale", "training.weighting_options={weights: {topic: 3}}"])
