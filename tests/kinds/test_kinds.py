"""Each task kind on its own: labels read and refused, the label set, batch tensors, the loss, the
activation and decoding, tuned thresholds and the metrics."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from polyhead.errors import DataError, PolyheadError
from polyhead.kinds import IGNORE_INDEX, KINDS, TaskSpec, kind_of
from polyhead.kinds.metrics import multilabel_metrics, regression_metrics


def test_every_kind_is_registered_with_its_head_and_metric():
    assert set(KINDS) >= {"classification", "token", "similarity", "multilabel", "regression"}
    for name, kind in KINDS.items():
        assert kind.name == name
        assert kind.metric in kind.summary_metrics
        assert kind.losses
    assert kind_of("ner").name == "token" and kind_of("sts").name == "similarity"
    with pytest.raises(PolyheadError, match="unknown task kind 'nope'"):
        kind_of("nope")


# -- multilabel ------------------------------------------------------------------------------------
def test_multilabel_reads_lists_and_separated_cells_and_refuses_a_string_in_jsonl():
    kind = kind_of("multilabel")
    assert kind.read_label(["urgent", "billing", "urgent"], "f:1", "tags", "jsonl") == ["billing", "urgent"]
    assert kind.read_label([], "f:1", "tags", "jsonl") == []
    assert kind.read_label(None, "f:1", "tags", "jsonl") is None
    assert kind.read_label("billing|urgent", "f:2", "tags", "csv") == ["billing", "urgent"]
    assert kind.read_label("[]", "f:2", "tags", "csv") == []
    assert kind.read_label("", "f:2", "tags", "csv") is None
    with pytest.raises(DataError, match=r"f:3: labels 'billing' for multilabel task 'tags' must be a list"):
        kind.read_label("billing", "f:3", "tags", "jsonl")
    with pytest.raises(DataError, match="must be strings"):
        kind.read_label([{"a": 1}], "f:4", "tags", "jsonl")


def test_classification_refuses_a_list_where_one_label_is_expected():
    with pytest.raises(DataError, match=r"f:7: label \['a', 'b'\] for task 'topic' must be a string or a number"):
        kind_of("classification").read_label(["a", "b"], "f:7", "topic", "jsonl")


def test_multilabel_batch_loss_decode_and_threshold_tuning():
    spec = TaskSpec("tags", "multilabel", ["a", "b", "c"])
    kind = kind_of(spec.kind)
    labels = kind.batch_labels(spec, [["a"], None, ["b", "c"], []], None, (4,))
    assert labels.shape == (4, 3) and torch.isnan(labels[1]).all()
    assert labels[0].tolist() == [1, 0, 0] and labels[2].tolist() == [0, 1, 1] and labels[3].tolist() == [0, 0, 0]
    head = kind.build_head(spec, 8)
    assert head.labelled(labels).tolist() == [True, False, True, True]
    logits = torch.zeros(4, 3, requires_grad=True)
    loss = head.loss(logits, labels)
    assert math.isclose(loss.item(), math.log(2), rel_tol=1e-5)  # every row p = 0.5, only labelled rows count
    loss.backward()
    assert logits.grad[1].abs().sum() == 0  # the unlabelled row gets no gradient
    probs = kind.activate(spec, np.array([[2.0, -2.0, 0.1]]))[0]
    assert kind.decode(spec, probs, "x", [])["labels"] == ["a", "c"]
    # Label b's true texts score 0.3-0.4, the others below 0.2: a threshold near 0.25 separates them.
    outputs = [np.log(np.array(p) / (1 - np.array(p))) for p in ([0.9, 0.35, 0.1], [0.1, 0.3, 0.1], [0.8, 0.15, 0.9], [0.2, 0.1, 0.1])]
    gold = [["a", "b"], ["b"], ["a", "c"], []]
    tuned = kind.tune(spec, gold, outputs)["thresholds"]
    assert 0.15 < tuned[1] <= 0.3
    spec.stats.update(thresholds=tuned)
    assert kind.guesses(spec, np.stack(outputs), None) == gold


def test_multilabel_balanced_pos_weight():
    spec = TaskSpec("tags", "multilabel", ["a", "b"], class_weights="balanced")
    stats = kind_of("multilabel").fit_stats(spec, [["a"], ["a"], ["a", "b"], []])
    assert stats["pos_weight"] == [1 / 3, 3.0]


def test_multilabel_metrics():
    m = multilabel_metrics([["a"], ["a", "b"], []], [["a"], ["b"], []], ["a", "b", "c"])
    assert m["micro_f1"] == pytest.approx(0.8)  # tp 2, fp 0, fn 1
    assert m["exact_match"] == pytest.approx(2 / 3)
    assert m["f1_a"] == pytest.approx(2 / 3) and m["f1_b"] == 1.0


# -- regression ------------------------------------------------------------------------------------
def test_regression_reads_numbers_and_refuses_the_rest():
    kind = kind_of("regression")
    assert kind.read_label(3, "f:1", "urgency", "jsonl") == 3.0
    assert kind.read_label("2.5", "f:1", "urgency", "csv") == 2.5
    assert kind.read_label([1, 2], "f:1", "urgency", "jsonl") == [1.0, 2.0]
    for bad, why in (("high", "is not a number"), (float("nan"), "not a finite number"), ("inf", "not a finite number"),
                     (True, "is not a number"), ({"a": 1}, "is not a number")):
        with pytest.raises(DataError, match=f"f:9: target of task 'urgency' .*{why}"):
            kind.read_label(bad, "f:9", "urgency", "jsonl")


def test_regression_standardises_targets_and_predicts_in_the_users_units():
    spec = TaskSpec("urgency", "regression")
    kind = kind_of(spec.kind)
    spec.stats = kind.fit_stats(spec, [1.0, 3.0, 5.0])
    assert spec.stats["mean"] == [3.0] and spec.stats["std"][0] == pytest.approx(np.std([1, 3, 5]))
    labels = kind.batch_labels(spec, [5.0, None], None, (2,))
    assert labels[0, 0].item() == pytest.approx(2 / np.std([1, 3, 5]), rel=1e-5) and torch.isnan(labels[1]).all()
    assert kind.decode(spec, kind.activate(spec, np.array([[labels[0, 0].item()]]))[0], "x", []) == {"score": pytest.approx(5.0, rel=1e-5)}
    head = kind.build_head(spec, 8)
    loss = head.loss(torch.tensor([[0.0], [100.0]]), labels)
    assert loss.item() == pytest.approx(labels[0, 0].item() ** 2, rel=1e-5)  # the NaN row is left out


def test_regression_vector_targets_and_dimension_checks():
    kind = kind_of("regression")
    spec = TaskSpec("va", "regression", ["valence", "arousal"])
    assert spec.num_labels == 2
    kind.check_label(spec, [1.0, 2.0], "f:1", True)
    with pytest.raises(DataError, match="f:2: task 'va' has 2 output"):
        kind.check_label(spec, 1.0, "f:2", True)
    assert kind.label_set(None, [[1.0, 2.0, 3.0]]) == ["0", "1", "2"]
    with pytest.raises(PolyheadError, match="vector target"):
        TaskSpec("one", "regression", ["only"])


def test_regression_metrics():
    m = regression_metrics([1.0, 2.0, 3.0], [1.0, 2.0, 4.0])
    assert m["mae"] == pytest.approx(1 / 3) and m["rmse"] == pytest.approx(math.sqrt(1 / 3))
    assert m["spearman"] == pytest.approx(1.0)


# -- options on the spec ---------------------------------------------------------------------------
def test_class_weights_and_label_smoothing_fit_only_label_kinds():
    with pytest.raises(PolyheadError, match="not regression"):
        TaskSpec("r", "regression", label_smoothing=0.1)
    with pytest.raises(PolyheadError, match="'balanced' or a mapping"):
        TaskSpec("c", "classification", ["a", "b"], class_weights="heavy")
    spec = TaskSpec("c", "classification", ["a", "b"], class_weights="balanced", label_smoothing=0.1)
    spec.stats = kind_of("classification").fit_stats(spec, ["a", "a", "a", "b"])
    assert spec.stats["class_weights"] == [4 / 6, 2.0]
    weighted = kind_of("classification").build_head(TaskSpec("c", "classification", ["a", "b"], stats=spec.stats), 8)
    logits = torch.tensor([[2.0, 0.0], [2.0, 0.0], [0.0, 0.0]])
    per_row = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 0]), reduction="none")
    w = torch.tensor([4 / 6, 2.0, 4 / 6])
    got = weighted.loss(logits, torch.tensor([0, 1, IGNORE_INDEX]))
    assert got.item() == pytest.approx(((w[:2] * per_row[:2]).sum() / w[:2].sum()).item(), rel=1e-5)
    smoothed = kind_of("classification").build_head(TaskSpec("c", "classification", ["a", "b"], label_smoothing=0.1), 8)
    confident = torch.tensor([[20.0, -20.0]])
    assert smoothed.loss(confident, torch.tensor([0])).item() > 1.0  # 0.05 of the target sits on the wrong label
    assert weighted.loss(confident, torch.tensor([0])).item() < 1e-6
