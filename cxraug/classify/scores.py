"""Scores of a classifier's class probabilities that do not depend on a decision rule's
user: one-vs-rest AUROC (threshold-free), macro AUROC, and per-class decision thresholds
chosen on validation data (best F1). Shared by the benchmark and the reference classifier."""

from __future__ import annotations

import numpy as np

DEFAULT_THRESHOLD = 0.5  # used only for a class without validation positives


def one_vs_rest_auroc(y: np.ndarray, probs: np.ndarray, c: int) -> float:
    """AUROC as the Mann-Whitney statistic (ties count one half): the same number as
    scikit-learn's roc_auc_score, without its per-call overhead."""
    from scipy.stats import rankdata

    pos = y == c
    n_pos = int(pos.sum())
    n_neg = len(y) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(probs[:, c])
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def macro_auroc(y: np.ndarray, probs: np.ndarray) -> tuple[float, int]:
    """Mean one-vs-rest AUROC over the classes with positives and negatives, and their count."""
    vals = [one_vs_rest_auroc(y, probs, c) for c in range(probs.shape[1])]
    defined = [v for v in vals if not np.isnan(v)]
    return (float(np.mean(defined)) if defined else float("nan")), len(defined)


def choose_thresholds(y: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Per class, the score threshold with the best one-vs-rest F1 on these (validation) data."""
    from sklearn.metrics import precision_recall_curve

    k = probs.shape[1]
    out = np.full(k, DEFAULT_THRESHOLD)
    for c in range(k):
        pos = y == c
        if not pos.any():
            continue
        precision, recall, thr = precision_recall_curve(pos, probs[:, c])
        p, r = precision[:-1], recall[:-1]  # the last point has no threshold
        with np.errstate(divide="ignore", invalid="ignore"):
            f1 = np.where(p + r > 0, 2 * p * r / (p + r), 0.0)
        out[c] = float(thr[int(np.argmax(f1))])
    return out
