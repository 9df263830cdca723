"""Evaluation metrics, one function per kind of prediction: single labels, BIO entities, label
sets, numbers (correlations and errors)."""
from __future__ import annotations

import math
import warnings

import numpy as np
from scipy import stats
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

from .tagging import bio_to_spans

__all__ = ["classification_metrics", "entity_metrics", "multilabel_metrics", "regression_metrics", "similarity_metrics"]


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


def multilabel_metrics(gold: list[list[str]], pred: list[list[str]], labels: list[str]) -> dict[str, float]:
    """Micro-F1, macro-F1 (over `labels`), exact match and per-label F1 (`f1_<label>`) of label sets.

    A label that neither gold nor prediction uses anywhere scores F1 1.0 in the macro average
    (nothing to find, nothing wrongly found), as scikit-learn does with zero_division=1.
    """
    if len(gold) != len(pred):
        raise ValueError(f"multilabel_metrics: gold has {len(gold)} items but pred has {len(pred)}")
    n = len(gold)
    if n == 0:
        return {"micro_f1": 0.0, "macro_f1": 0.0, "exact_match": 0.0, "n": 0.0}
    index = {lab: i for i, lab in enumerate(labels)}
    g = np.zeros((n, len(labels)), dtype=bool)
    p = np.zeros((n, len(labels)), dtype=bool)
    for i, (gs, ps) in enumerate(zip(gold, pred)):
        g[i, [index[x] for x in gs]] = True
        p[i, [index[x] for x in ps]] = True
    tp = (g & p).sum(0).astype(np.float64)
    denom = g.sum(0) + p.sum(0)  # 2TP + FP + FN
    per_label = np.where(denom > 0, 2.0 * tp / np.maximum(denom, 1), 1.0)
    total = denom.sum()
    out = {
        "micro_f1": float(2.0 * tp.sum() / total) if total else 1.0,
        "macro_f1": float(per_label.mean()) if len(labels) else 0.0,
        "exact_match": float((g == p).all(1).mean()),
        "n": float(n),
    }
    out.update({f"f1_{lab}": float(f) for lab, f in zip(labels, per_label)})
    return out


def regression_metrics(gold: list, pred: list) -> dict[str, float]:
    """Pearson, Spearman, MAE and RMSE of predicted numbers (vectors: each averaged over outputs)."""
    if len(gold) != len(pred):
        raise ValueError(f"regression_metrics: gold has {len(gold)} items but pred has {len(pred)}")
    n = len(gold)
    if n == 0:
        return {"pearson": 0.0, "spearman": 0.0, "mae": 0.0, "rmse": 0.0, "n": 0.0}
    g = np.asarray(gold, dtype=np.float64).reshape(n, -1)
    p = np.asarray(pred, dtype=np.float64).reshape(n, -1)
    err = p - g
    corr = [similarity_metrics(g[:, j].tolist(), p[:, j].tolist()) for j in range(g.shape[1])]
    return {
        "pearson": float(np.mean([c["pearson"] for c in corr])),
        "spearman": float(np.mean([c["spearman"] for c in corr])),
        "mae": float(np.abs(err).mean()),
        "rmse": float(np.sqrt((err**2).mean())),
        "n": float(n),
    }
