"""Metrics of one trained model on one split, from its class probabilities.

Per class (one-vs-rest): AUROC (threshold-free), and recall, precision, F1 of the decision
``p_c >= t_c`` where the threshold t_c was chosen on the validation patients to maximise that
class's F1. Over classes: macro AUROC and macro F1 (means over the classes where the value is
defined, with the count), and balanced accuracy of the top-1 prediction (mean recall of
argmax over the classes present). ``recall_top1`` per class is that argmax recall.
"""

from __future__ import annotations

import warnings

import numpy as np

from cxraug.classify.scores import one_vs_rest_auroc


def per_class(y: np.ndarray, probs: np.ndarray, thresholds: np.ndarray) -> list[dict]:
    top1 = probs.argmax(axis=1)
    rows = []
    for c in range(probs.shape[1]):
        pos = y == c
        pred = probs[:, c] >= thresholds[c]
        tp = int((pos & pred).sum())
        fp = int((~pos & pred).sum())
        fn = int((pos & ~pred).sum())
        recall = tp / (tp + fn) if tp + fn else float("nan")
        precision = tp / (tp + fp) if tp + fp else 0.0
        f1 = 2 * tp / (2 * tp + fp + fn) if tp + fn else float("nan")
        rows.append(
            {
                "auroc": one_vs_rest_auroc(y, probs, c),
                "recall": recall,
                "precision": precision,
                "f1": f1,
                "recall_top1": float((top1[pos] == c).mean()) if pos.any() else float("nan"),
                "threshold": float(thresholds[c]),
                "n_pos": int(pos.sum()),
                "n": len(y),
            }
        )
    return rows


def _nanmean(values: list[float]) -> tuple[float, int]:
    v = [x for x in values if not np.isnan(x)]
    return (float(np.mean(v)) if v else float("nan")), len(v)


def overall(rows: list[dict], y: np.ndarray, probs: np.ndarray, rare: list[int]) -> dict:
    """Run-level metrics from the per-class rows; ``rare`` indexes the rare classes."""
    from sklearn.metrics import balanced_accuracy_score

    out: dict = {"n_test": len(y)}
    out["macro_auroc"], out["n_classes_auroc"] = _nanmean([r["auroc"] for r in rows])
    out["macro_f1"], out["n_classes_f1"] = _nanmean([r["f1"] for r in rows])
    with warnings.catch_warnings():  # a class predicted but absent from y is expected, not news
        warnings.simplefilter("ignore", UserWarning)
        out["balanced_accuracy"] = float(balanced_accuracy_score(y, probs.argmax(axis=1)))
    for key in ("auroc", "f1", "recall"):
        out[f"rare_{key}"], out[f"n_rare_{key}"] = _nanmean([rows[c][key] for c in rare])
    return out


RUN_METRICS = ("macro_auroc", "macro_f1", "balanced_accuracy", "rare_auroc", "rare_f1", "rare_recall")
CLASS_METRICS = ("auroc", "recall", "precision", "f1", "recall_top1")
