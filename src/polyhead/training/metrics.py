"""Evaluation metrics per task kind: classification, token tagging (entities), similarity."""
from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import stats
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

from ..modeling.tagging import bio_to_spans

__all__ = [
    "METRIC_FOR_KIND",
    "METRICS_FOR_KIND",
    "classification_metrics",
    "entity_metrics",
    "similarity_metrics",
    "task_metrics",
]

# The headline metric of each task kind: what model selection and summaries look at.
METRIC_FOR_KIND: dict[str, str] = {
    "classification": "accuracy",
    "token": "entity_f1",
    "similarity": "spearman",
}


def classification_metrics(y_true: list[str], y_pred: list[str]) -> dict[str, float]:
    """Accuracy and macro-F1 (over labels in y_true ∪ y_pred) of single-label predictions."""
    if len(y_true) != len(y_pred):
        raise ValueError(
            f"classification_metrics: y_true has {len(y_true)} items but y_pred has {len(y_pred)}"
        )
    n = len(y_true)
    if n == 0:
        return {"accuracy": 0.0, "macro_f1": 0.0, "n": 0.0}
    labels = sorted(set(y_true) | set(y_pred))
    index = {label: i for i, label in enumerate(labels)}
    t = np.fromiter((index[y] for y in y_true), dtype=np.int64, count=n)
    p = np.fromiter((index[y] for y in y_pred), dtype=np.int64, count=n)
    k = len(labels)
    tp = np.bincount(t[t == p], minlength=k).astype(np.float64)
    pred_count = np.bincount(p, minlength=k).astype(np.float64)
    true_count = np.bincount(t, minlength=k).astype(np.float64)
    # F1 = 2TP / (2TP + FP + FN) = 2TP / (|pred| + |true|); the denominator is never 0 here
    # because every label in `labels` occurs in y_true or y_pred.
    f1 = 2.0 * tp / (pred_count + true_count)
    return {
        "accuracy": float(tp.sum() / n),
        "macro_f1": float(f1.mean()),
        "n": float(n),
    }


def entity_metrics(y_true: list[list[str]], y_pred: list[list[str]]) -> dict[str, float]:
    """Entity-level micro precision/recall/F1 and per-type F1 (`f1_<TYPE>`) of BIO tag sequences.

    conlleval semantics (seqeval default mode): an entity counts only if type and both
    boundaries match exactly, so a partially found span is both a false positive and a
    false negative.
    """
    if len(y_true) != len(y_pred):
        raise ValueError(
            f"entity_metrics: y_true has {len(y_true)} sentences but y_pred has {len(y_pred)}"
        )
    for i, (t, p) in enumerate(zip(y_true, y_pred)):
        if len(t) != len(p):
            raise ValueError(
                f"entity_metrics: sentence {i} has {len(t)} true tags but {len(p)} predicted tags"
            )
    y_true = [list(s) for s in y_true]
    y_pred = [list(s) for s in y_pred]
    # seqeval crashes/warns on a corpus with no entities at all; the answer there is all zeros.
    if not any(bio_to_spans(s) for s in y_true) and not any(bio_to_spans(s) for s in y_pred):
        return {"precision": 0.0, "recall": 0.0, "entity_f1": 0.0}
    out = {
        "precision": float(precision_score(y_true, y_pred, zero_division=0)),
        "recall": float(recall_score(y_true, y_pred, zero_division=0)),
        "entity_f1": float(f1_score(y_true, y_pred, zero_division=0)),
    }
    report = classification_report(y_true, y_pred, output_dict=True, zero_division=0)
    for name, row in report.items():
        if name.endswith(" avg"):
            continue
        out[f"f1_{name}"] = float(row["f1-score"])
    return out


def _safe_corr(fn, gold: np.ndarray, pred: np.ndarray) -> float:
    # scipy returns nan (with a ConstantInputWarning) for constant input; a constant
    # prediction carries no ranking information, so 0.0 is the honest score and keeps
    # downstream averaging / best-checkpoint comparisons nan-free.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = float(fn(gold, pred)[0])
    return 0.0 if math.isnan(value) else value


def similarity_metrics(gold: list[float], pred: list[float]) -> dict[str, float]:
    """Spearman and Pearson correlation between gold and predicted scores (0.0 when undefined)."""
    if len(gold) != len(pred):
        raise ValueError(
            f"similarity_metrics: gold has {len(gold)} items but pred has {len(pred)}"
        )
    n = len(gold)
    if n < 2:
        return {"spearman": 0.0, "pearson": 0.0, "n": float(n)}
    g = np.asarray(gold, dtype=np.float64)
    p = np.asarray(pred, dtype=np.float64)
    return {
        "spearman": _safe_corr(stats.spearmanr, g, p),
        "pearson": _safe_corr(stats.pearsonr, g, p),
        "n": float(n),
    }


# The metric function of each task kind (gold and predictions as `evaluate` collects them).
METRICS_FOR_KIND = {
    "classification": classification_metrics,
    "token": entity_metrics,
    "similarity": similarity_metrics,
}


def task_metrics(kind: str, gold: list, pred: list) -> dict[str, float]:
    """The metrics of one task of `kind` from its gold labels/tags/scores and predictions."""
    return METRICS_FOR_KIND[kind](gold, pred)
