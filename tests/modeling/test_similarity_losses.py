"""The similarity losses: CoSENT and AnglE against plain reference implementations, their
behaviour on ordered and reversed batches, and end to end through training and loading."""
from __future__ import annotations

import itertools
import math

import pytest
import torch

from polyhead import PolyheadError, load
from polyhead.modeling.heads import SimilarityHead, angle_similarity, ranking_loss
from polyhead.modeling.tasks import TaskSpec
from polyhead.training.config import load_config
from polyhead.training.loop import train

from train_helpers import write_config


def _reference_ranking(pred: list[float], gold: list[float], scale: float) -> float:
    """log(1 + sum over gold_i > gold_j of exp(scale (pred_j - pred_i))), by explicit loops in float64."""
    total = 1.0
    for i, j in itertools.product(range(len(pred)), repeat=2):
        if gold[i] > gold[j]:
            total += math.exp(scale * (pred[j] - pred[i]))
    return math.log(total)


def _reference_angle(a: list[float], b: list[float]) -> float:
    """|Re + Im| of sum_k u_k conj(v_k), over the norms, with Python complex numbers."""
    half = len(a) // 2
    q = sum(complex(a[k], a[half + k]) * complex(b[k], b[half + k]).conjugate() for k in range(half))
    return abs(q.real + q.imag) / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(x * x for x in b)))


def test_ranking_loss_matches_the_reference() -> None:
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        pred, gold = torch.rand(7, generator=g) * 2 - 1, torch.randint(0, 4, (7,), generator=g).float()
        assert float(ranking_loss(pred, gold, 20.0)) == pytest.approx(_reference_ranking(pred.tolist(), gold.tolist(), 20.0), rel=1e-5)


def test_angle_similarity_matches_the_reference_and_keeps_gradients_bounded() -> None:
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(3, 10, generator=g), torch.randn(3, 10, generator=g)
    got = angle_similarity(a, b)
    for i in range(3):
        assert float(got[i]) == pytest.approx(_reference_angle(a[i].tolist(), b[i].tolist()), rel=1e-5)
    assert torch.allclose(angle_similarity(3 * a, b), got)  # scale-free, like the cosine
    # A near-zero complex component must not steer the step (a per-component atan2 did).
    x = torch.nn.functional.normalize(torch.randn(8, 384, generator=g), dim=-1)
    x[:, 0] = 1e-6
    x[:, 192] = 0.0
    x.requires_grad_(True)
    y = torch.nn.functional.normalize(torch.randn(8, 384, generator=g), dim=-1)
    _head("angle").loss(x, y, torch.arange(8.0) / 1.6).backward()
    assert float(x.grad.abs().max()) < 10.0


def _head(loss: str) -> SimilarityHead:
    return SimilarityHead(TaskSpec("sts", "similarity", score_range=(0, 5), loss=loss), 8)


@pytest.mark.parametrize("loss", ["cosent", "angle"])
def test_cosines_in_gold_order_cost_less_than_reversed(loss: str) -> None:
    torch.manual_seed(0)
    base = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    noise = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    # pair i: b_i = base_i mixed with noise, less and less similar as i grows
    b = torch.nn.functional.normalize(torch.stack([base[i] * (1 - 0.3 * i) + noise[i] * 0.3 * i for i in range(4)]), dim=-1)
    ordered, reversed_ = torch.tensor([5.0, 3.5, 2.0, 0.5]), torch.tensor([0.5, 2.0, 3.5, 5.0])
    head = _head(loss)
    good, bad = head.loss(base, b, ordered), head.loss(base, b, reversed_)
    assert float(good) < float(bad)
    a = base.clone().requires_grad_(True)
    head.loss(a, b, reversed_).backward()
    assert torch.isfinite(a.grad).all() and a.grad.abs().sum() > 0


@pytest.mark.parametrize("loss", ["cosent", "angle"])
def test_a_batch_with_equal_gold_scores_is_zero_and_does_not_crash(loss: str) -> None:
    a = torch.nn.functional.normalize(torch.randn(3, 8), dim=-1).requires_grad_(True)
    out = _head(loss).loss(a, a.detach().flip(0), torch.full((3,), 2.0))
    assert float(out.detach()) == 0.0 and out.requires_grad
    out.backward()


def test_an_unknown_similarity_loss_is_a_one_line_error() -> None:
    with pytest.raises(PolyheadError, match="loss 'cosine' does not fit kind 'similarity'.*cosent"):
        TaskSpec("sts", "similarity", loss="cosine")


@pytest.mark.parametrize("loss", ["cosent", "angle"])
def test_training_with_a_ranking_loss_runs_and_the_model_loads_with_it(tmp_path, loss: str) -> None:
    cfg = load_config(write_config(tmp_path, epochs=3), [f"tasks.sts.loss={loss}", "tasks.sts.contrastive_scale=30"])
    result = train(cfg, tmp_path / "m", progress=False)
    assert math.isfinite(result.dev["sts"]["spearman"])
    model = load(tmp_path / "m")
    assert model.tasks["sts"].loss == loss
    assert model.heads["sts"].loss_name == loss
    assert model.tasks["sts"].contrastive_scale == model.heads["sts"].scale == 30.0  # the config's scale reaches the head
