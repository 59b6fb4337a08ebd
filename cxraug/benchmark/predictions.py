"""The prediction schema of a stored run: what predictions.npz holds, and its check.

Stored predictions are checked against the dataset's split order whenever they are read
(schema 1, from before row indices were stored, through their labels).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cxraug.errors import UserError

if TYPE_CHECKING:
    from cxraug.benchmark.training import RunOutput

PREDICTIONS_SCHEMA = 2  # 2: + val/test row index and patient id; 1: probabilities and labels only


def row_identity(labels: np.ndarray, patients: np.ndarray) -> dict[str, np.ndarray]:
    """What stored predictions carry to say which test image each row is."""
    return {"index": np.arange(len(labels)), "patient": patients.astype(str)}


def check_predictions(where: Path, preds: dict[str, np.ndarray], split: str, labels: np.ndarray, patients) -> None:
    """Stored predictions of a split must be its rows in the dataset's order: refused otherwise."""
    version = int(preds.get("schema_version", 1))
    if version > PREDICTIONS_SCHEMA:
        raise UserError(
            f"{where} holds predictions of schema {version}; this cxraug reads up to {PREDICTIONS_SCHEMA}: "
            "update cxraug"
        )
    got = preds.get(f"{split}_labels")
    if got is None or f"{split}_probs" not in preds:
        raise UserError(f"{where} holds no {split} predictions; train it again with --overwrite")
    same = len(got) == len(labels) and np.array_equal(got, labels) and len(preds[f"{split}_probs"]) == len(labels)
    if version >= 2:
        idx, pid = preds.get(f"{split}_index"), preds.get(f"{split}_patient")
        same = same and idx is not None and pid is not None and np.array_equal(idx, np.arange(len(labels)))
        same = same and np.array_equal(np.asarray(pid, dtype=str), np.asarray(patients, dtype=str))
    if not same:
        raise UserError(
            f"{where}: the stored {split} predictions are not the dataset's {len(labels)} {split} images in "
            "its order (was the dataset prepared again?); use another --out, or --overwrite to train again"
        )


def predictions_of(output: RunOutput, patients: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What predictions.npz stores of a trained run: each split's probabilities, labels, and
    each row's index in its split and patient id."""
    preds = {"schema_version": np.int64(PREDICTIONS_SCHEMA)}
    for split, probs, labels in (("val", output.val_probs, output.val_labels),
                                 ("test", output.test_probs, output.test_labels)):  # fmt: skip
        rows = row_identity(labels, patients[split])
        preds |= {f"{split}_probs": probs, f"{split}_labels": labels,
                  f"{split}_index": rows["index"], f"{split}_patient": rows["patient"]}  # fmt: skip
    return preds
