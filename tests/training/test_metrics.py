"""Tests for polyhead.metrics."""
from __future__ import annotations

import math
import warnings

import pytest

from polyhead.training.metrics import (
    METRIC_FOR_KIND,
    classification_metrics,
    entity_metrics,
    similarity_metrics,
)
from polyhead.modeling.tagging import bio_to_spans


def test_classification_hand_computed():
    y_true = ["a", "a", "a", "b", "b", "c"]
    y_pred = ["a", "a", "b", "b", "c", "c"]
    m = classification_metrics(y_true, y_pred)
    # per-label F1 = 2TP / (|pred| + |true|): a 4/5, b 2/4, c 2/3
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["macro_f1"] == pytest.approx((0.8 + 0.5 + 2 / 3) / 3)
    assert m["n"] == 6


def test_classification_label_only_in_pred_counts_in_macro():
    m = classification_metrics(["a", "a"], ["a", "d"])
    # a: F1 2/3, d (never true): F1 0 -> macro 1/3, not 2/3
    assert m["macro_f1"] == pytest.approx(1 / 3)
    assert m["accuracy"] == pytest.approx(0.5)


def test_classification_errors_and_empty():
    with pytest.raises(ValueError, match="2 items"):
        classification_metrics(["a", "b"], ["a"])
    assert classification_metrics([], []) == {"accuracy": 0.0, "macro_f1": 0.0, "n": 0.0}


def test_entity_hand_computed_partial_span_is_wrong():
    y_true = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"], ["O", "O"]]
    y_pred = [["B-PER", "O", "O", "B-LOC"], ["B-ORG", "O"], ["B-MISC", "O"]]
    m = entity_metrics(y_true, y_pred)
    # true: PER(0,2) LOC ORG = 3; pred: PER(0,1) LOC ORG MISC = 4; exact matches: LOC ORG = 2
    assert m["precision"] == pytest.approx(2 / 4)
    assert m["recall"] == pytest.approx(2 / 3)
    assert m["entity_f1"] == pytest.approx(2 * 0.5 * (2 / 3) / (0.5 + 2 / 3))
    assert m["f1_PER"] == 0.0  # the truncated PER span is a miss, not partial credit
    assert m["f1_LOC"] == 1.0
    assert m["f1_ORG"] == 1.0
    assert m["f1_MISC"] == 0.0


def _spans_f1(y_true, y_pred):
    gold = {(i, *s) for i, tags in enumerate(y_true) for s in bio_to_spans(tags)}
    pred = {(i, *s) for i, tags in enumerate(y_pred) for s in bio_to_spans(tags)}
    tp = len(gold & pred)
    p = tp / len(pred) if pred else 0.0
    r = tp / len(gold) if gold else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


@pytest.mark.parametrize(
    "y_true, y_pred",
    [
        ([["B-PER", "I-PER", "O"]], [["B-PER", "I-PER", "O"]]),
        # I- after O starts an entity (conlleval), on either side
        ([["O", "I-PER", "I-PER"]], [["O", "B-PER", "I-PER"]]),
        # I-LOC after B-PER starts a new LOC entity
        ([["B-PER", "I-LOC", "O"]], [["B-PER", "B-LOC", "O"]]),
        ([["B-PER", "B-PER", "O", "B-LOC", "I-LOC"]], [["B-PER", "I-PER", "O", "B-LOC", "O"]]),
        ([["B-X", "O"], ["O", "B-Y"]], [["O", "O"], ["B-Y", "B-Y"]]),
    ],
)
def test_entity_metrics_agree_with_bio_to_spans(y_true, y_pred):
    p, r, f = _spans_f1(y_true, y_pred)
    m = entity_metrics(y_true, y_pred)
    assert m["precision"] == pytest.approx(p)
    assert m["recall"] == pytest.approx(r)
    assert m["entity_f1"] == pytest.approx(f)


def test_entity_length_mismatch_message():
    with pytest.raises(ValueError, match="sentence 1 has 2 true tags but 3 predicted"):
        entity_metrics([["O"], ["O", "O"]], [["O"], ["O", "O", "O"]])
    with pytest.raises(ValueError, match="sentences"):
        entity_metrics([["O"]], [])


def test_entity_no_entities_anywhere_is_zero_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = entity_metrics([["O", "O"]], [["O", "O"]])
    assert m == {"precision": 0.0, "recall": 0.0, "entity_f1": 0.0}


def test_similarity_monotone_nonlinear():
    gold = [float(x) for x in range(1, 11)]
    pred = [x**3 for x in gold]
    m = similarity_metrics(gold, pred)
    assert m["spearman"] == pytest.approx(1.0)
    assert 0.9 < m["pearson"] < 1.0  # linear correlation is imperfect for a cubic
    assert m["n"] == 10
    assert similarity_metrics(gold, [-x for x in pred])["spearman"] == pytest.approx(-1.0)


def test_similarity_constant_and_tiny_inputs_are_nan_safe():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = similarity_metrics([1.0, 2.0, 3.0], [0.5, 0.5, 0.5])
        assert m["spearman"] == 0.0 and m["pearson"] == 0.0
        assert similarity_metrics([1.0], [2.0])["spearman"] == 0.0
    assert not any(math.isnan(v) for v in m.values())
    with pytest.raises(ValueError):
        similarity_metrics([1.0, 2.0], [1.0])


def test_metric_for_kind_names_real_keys():
    assert METRIC_FOR_KIND == {
        "classification": "accuracy",
        "multilabel": "micro_f1",
        "regression": "pearson",
        "token": "entity_f1",
        "similarity": "spearman",
        "pair_classification": "accuracy",
    }
    assert METRIC_FOR_KIND["classification"] in classification_metrics(["a"], ["a"])
    assert METRIC_FOR_KIND["token"] in entity_metrics([["B-X"]], [["B-X"]])
    assert METRIC_FOR_KIND["similarity"] in similarity_metrics([1.0, 2.0], [1.0, 2.0])
