"""Training sets of real images: which rows a classifier trains on, and how it samples or
weighs them. Real-only kinds: ``real`` (as they are), ``reweight`` (class-weighted loss),
``oversample`` (class-balanced sampling), ``classic`` (classical augmentation), ``logit-adjust``
(Menon et al., ICLR 2021: tau * log(class prior) added to the logits in training). The benchmark
adds synthetic images to a set; the reference classifier trains on a real-only one.

No torch here: a training set is index arrays and uint8 images.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cxraug.data.prepared import PreparedData

REAL_ARMS = ("real", "reweight", "oversample", "classic", "logit-adjust")


@dataclass
class TrainSet:
    """What one classifier trains on: real training rows + synthetic images, sampling and loss weights."""

    name: str  # the arm it was built for
    real_index: np.ndarray  # rows of the prepared training split
    real_labels: np.ndarray
    synth_images: np.ndarray  # uint8 M x S x S
    synth_labels: np.ndarray
    num_classes: int
    sampling: str = "shuffle"  # "shuffle" | "balanced"
    class_weights: np.ndarray | None = None
    augment: bool = False
    logit_bias: np.ndarray | None = None  # added to the logits in training only (logit adjustment)

    @property
    def labels(self) -> np.ndarray:
        return np.concatenate([self.real_labels, self.synth_labels]).astype(np.int64)

    def __len__(self) -> int:
        return len(self.real_labels) + len(self.synth_labels)

    def real_counts(self) -> np.ndarray:
        return np.bincount(self.real_labels, minlength=self.num_classes)

    def synth_counts(self) -> np.ndarray:
        return np.bincount(self.synth_labels, minlength=self.num_classes)


def inverse_frequency_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """w_c = N / (K * n_c) over the K classes present: the sample-weighted mean stays 1."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    present = counts > 0
    w = np.zeros(num_classes)
    w[present] = len(labels) / (present.sum() * counts[present])
    return w


def logit_adjustment(labels: np.ndarray, num_classes: int, tau: float) -> np.ndarray:
    """tau * log(prior) per class, the prior being the training labels' frequencies (a class
    with no image counts as one, so the bias stays finite)."""
    counts = np.maximum(np.bincount(labels, minlength=num_classes), 1).astype(np.float64)
    return tau * np.log(counts / counts.sum())


def real_train_set(
    name: str,
    kind: str,
    train_labels: np.ndarray,
    real_index: np.ndarray,
    num_classes: int,
    image_size: int = 0,
    logit_tau: float = 1.0,
) -> TrainSet:
    """The real rows ``real_index`` of the training split, sampled or weighed as ``kind``
    says (any other kind: as they are, for the caller to add synthetic images to)."""
    real_labels = train_labels[real_index].astype(np.int64)
    empty = (np.zeros((0, image_size, image_size), np.uint8), np.zeros(0, np.int64))
    ts = TrainSet(name, real_index, real_labels, *empty, num_classes=num_classes)
    if kind == "reweight":
        ts.class_weights = inverse_frequency_weights(real_labels, num_classes)
    elif kind == "oversample":
        ts.sampling = "balanced"
    elif kind == "classic":
        ts.augment = True
    elif kind == "logit-adjust":
        ts.logit_bias = logit_adjustment(real_labels, num_classes, logit_tau)
    return ts


def split_patients(data: PreparedData, split: str) -> np.ndarray:
    """Patient id of each row of a split's arrays (manifest rows in stored order)."""
    return data.split_rows(split)["patient_id"].astype(str).to_numpy()
