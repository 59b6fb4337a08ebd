"""Label fidelity and the chest-X-ray feature space: metrics that use the reference classifier.

Label fidelity of class c: the share of synthetic images of c that the reference classifier
assigns to c (top-1) and their mean p(c | x), beside the same two numbers for the real **val**
images of c of the val patients the reference was not selected on (the ceiling: a generator
cannot be judged more recognisable than real images are; that share is also the reference's
recorded val recall of c), and their ratio. FD_cxr: FD, KID
and precision/recall in the reference's penultimate features (``fd_cxr`` in the registry).
Both are comparable only between scores made with the same reference (its weights sha256).
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cxraug.data.prepared import PreparedData
from cxraug.metrics import registry
from cxraug.metrics.cache import FeatureCache
from cxraug.metrics.real import real_features
from cxraug.metrics.reference import ReferenceClassifier
from cxraug.metrics.registry import MetricOptions, compute_metrics
from cxraug.metrics.scoring import OVERALL, RealSide, extract, pooled, too_few
from cxraug.progress import Reporter


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """95% Wilson score interval of a share k/n (None for n = 0): honest at n of a handful."""
    if n == 0:
        return None
    p = k / n
    mid = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, mid - half), min(1.0, mid + half)


def label_fidelity(
    fake_probs: np.ndarray, fake_labels: np.ndarray, real_probs: np.ndarray, real_labels: np.ndarray
) -> dict[str, Any]:
    """The fidelity numbers of one row: synthetic images (their requested labels) vs real val images."""
    out: dict[str, Any] = {}
    for prefix, probs, labels in (("", fake_probs, fake_labels), ("real_", real_probs, real_labels)):
        n = len(labels)
        hits = int((probs.argmax(axis=1) == labels).sum()) if n else 0
        ci = wilson_interval(hits, n)
        out[f"{prefix}fidelity_n"] = n
        out[f"{prefix}fidelity"] = hits / n if n else None
        out[f"{prefix}fidelity_p"] = float(probs[np.arange(n), labels].mean()) if n else None
        out[f"{prefix}fidelity_ci"] = list(ci) if ci else None
    f, r = out["fidelity"], out["real_fidelity"]
    out["fidelity_ratio"] = f / r if f is not None and r else None  # None when the ceiling is 0: no judge
    return out


def class_labels(classes: list[str], class_name: str, n: int) -> np.ndarray:
    """n copies of a class's label (the requested label of n synthetic images)."""
    return np.full(n, classes.index(class_name), dtype=np.int64)


def _confusion(probs: np.ndarray, labels: np.ndarray, k: int) -> np.ndarray:
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (labels, probs.argmax(axis=1)), 1)
    return cm


@dataclass
class ReferenceSide:
    """The reference classifier's features of one score, per class: the split's real images
    (FD_cxr's real side), the synthetic images, the real images fidelity's ceiling is measured
    on (``held``), and p(class | image) of the synthetic and held images."""

    real: dict[str, np.ndarray]
    fake: dict[str, np.ndarray]
    held: dict[str, np.ndarray]
    fake_probs: dict[str, np.ndarray] = field(default_factory=dict)
    held_probs: dict[str, np.ndarray] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        reference: ReferenceClassifier,
        real: dict[str, np.ndarray],
        fake: dict[str, np.ndarray],
        held: dict[str, np.ndarray],
    ) -> ReferenceSide:
        fake_probs = {c: reference.probs(f) for c, f in fake.items()}
        return cls(real, fake, held, fake_probs, {c: reference.probs(h) for c, h in held.items()})


def reference_features(
    data: PreparedData,
    split: str,
    fake_images: dict[str, np.ndarray],
    reference: ReferenceClassifier,
    cache: FeatureCache,
    fp: str,
    batch_size: int,
    reporter: Reporter | None = None,
    with_val: bool = False,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Per class of ``fake_images``: the reference's features of the split's real images (cached
    as the Inception ones are), of the val images (``with_val``: the ceiling's, when the split is
    another), and of the synthetic images."""
    real_f, val_f, fake_f = {}, {}, {}
    for c, imgs in fake_images.items():
        real_f[c] = real_features(data, split, c, reference, cache, batch_size, reporter, fp)[1]
        if with_val:
            val_f[c] = (
                real_f[c]
                if split == "val"
                else real_features(data, "val", c, reference, cache, batch_size, reporter, fp)[1]
            )
        fake_f[c] = extract(reference, imgs, batch_size, reporter, f"synthetic {c} ({len(imgs)})")
    return real_f, val_f, fake_f


def reference_row(
    names: list[str],
    classes: list[str],
    take: dict[str, int],
    side: ReferenceSide,
    options: MetricOptions,
    min_images: int,
) -> dict[str, Any]:
    """The reference-space numbers of one row made of the classes of ``take``, each class's first
    ``take[c]`` synthetic images (``classes``: the dataset's, for the labels). Fidelity needs
    synthetic images only on its own side; the feature-pair metrics (fd_cxr) follow the
    minimum-images rule on both sides, their reason under ``<name>_status``."""
    out: dict[str, Any] = {}
    part = list(take)
    if "fidelity" in names:
        fake_p = np.concatenate([side.fake_probs[x][: take[x]] for x in part])
        fake_l = np.concatenate([class_labels(classes, x, take[x]) for x in part])
        held_p = np.concatenate([side.held_probs[x] for x in part])
        held_l = np.concatenate([class_labels(classes, x, len(side.held[x])) for x in part])
        out.update(label_fidelity(fake_p, fake_l, held_p, held_l))
    paired = [m for m in names if registry.METRICS[m].fn is not None]  # from two feature sets, as the Inception ones
    if paired:
        real = pooled({x: side.real[x] for x in part})
        fake = pooled({x: side.fake[x] for x in part}, take)
        reason = too_few(len(real), len(fake), min_images)
        for m in paired:
            if reason:
                out[f"{m}_status"] = reason
            else:
                out.update(compute_metrics([m], real, fake, options))
    return out


def reference_metrics(
    real: RealSide,
    fake_images: dict[str, np.ndarray],
    rows: list[dict[str, Any]],
    names: list[str],
    options: MetricOptions,
    min_images: int,
    reference: ReferenceClassifier,
    reporter: Reporter | None = None,
) -> tuple[dict[str, Any], dict[str, bytes], dict[str, Any]]:
    """Add the reference-space metrics ``names`` to ``rows`` (per class, then ``all``, as
    ``score`` made them).

    Fidelity needs synthetic images only on its own side (a rare class with 3 val images still
    gets the share of its 1,000 synthetic images, and a ceiling from 3 images, with intervals);
    fd_cxr follows the FID rule (``min_images`` on both sides). Returns the JSON section
    (confusion tables), the extra files (confusion.csv, confusion.png) and, per class, the
    reference's features of the real and synthetic images and whether each synthetic image
    was called its class (``compare`` resamples them for intervals).
    """
    data, classes = real.data, real.classes
    real_f, val_f, fake_f = reference_features(
        data, real.split, fake_images, reference, real.cache, real.fingerprint, real.batch_size, reporter, with_val=True
    )
    # The ceiling: val images of the patients the reference was not selected on.
    val_labels = data.labels("val")
    held = {c: val_f[c][reference.ceiling_mask(val_labels, c)] for c in classes}
    side = ReferenceSide.of(reference, real_f, fake_f, held)
    by_class = {r["class"]: r for r in rows}
    counts = by_class[OVERALL].get("fake_per_class") or {c: len(fake_f[c]) for c in classes}
    for c in [*classes, OVERALL]:
        row = by_class[c]
        info = (
            reference.val_class(c)
            if c != OVERALL
            else {"recall_top1": None, "auroc": reference.record["val_macro_auroc"]}
        )
        row["ref_val_recall"], row["ref_val_auroc"] = info["recall_top1"], info["auroc"]
        take = {x: counts[x] for x in classes} if c == OVERALL else {c: len(fake_f[c])}
        row.update(reference_row(names, data.classes, take, side, options, min_images))
    section, files = _confusion_outputs(data, classes, side) if "fidelity" in names else ({}, {})
    hits = {c: side.fake_probs[c].argmax(axis=1) == data.classes.index(c) for c in classes}
    return section, files, {"real": real_f, "fake": fake_f, "hits": hits}


def _confusion_outputs(
    data: PreparedData, classes: list[str], side: ReferenceSide
) -> tuple[dict[str, Any], dict[str, bytes]]:
    """Fidelity's confusion tables (JSON section) and confusion.csv / confusion.png."""
    k = len(data.classes)
    syn = sum(
        (_confusion(side.fake_probs[c], class_labels(data.classes, c, len(side.fake[c])), k) for c in classes),
        np.zeros((k, k), np.int64),
    )
    val = sum(
        (_confusion(side.held_probs[c], class_labels(data.classes, c, len(side.held[c])), k) for c in classes),
        np.zeros((k, k), np.int64),
    )
    idx = [data.classes.index(c) for c in classes]
    conf = {
        "predicted": data.classes,
        "synthetic": {c: syn[i].tolist() for c, i in zip(classes, idx, strict=True)},
        "real_val": {c: val[i].tolist() for c, i in zip(classes, idx, strict=True)},
    }
    files = {
        "confusion.csv": _confusion_csv(conf).encode(),
        "confusion.png": confusion_png(conf, f"{data.name}: reference classifier's top-1"),
    }
    return {"fidelity_confusion": conf}, files


def _confusion_csv(conf: dict[str, Any]) -> str:
    import csv

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["images", "requested", *conf["predicted"]])
    for images in ("synthetic", "real_val"):
        for c, counts in conf[images].items():
            w.writerow([images, c, *counts])
    return buf.getvalue()


def confusion_png(conf: dict[str, Any], title: str) -> bytes:
    """Two panels, rows normalised: synthetic (requested -> predicted) and real val (true -> predicted)."""
    from matplotlib.figure import Figure

    predicted, requested = conf["predicted"], list(conf["synthetic"])
    side = 2.4 + 0.3 * len(predicted)
    fig = Figure(figsize=(2 * side, 1.6 + 0.3 * len(requested) + 1.2), dpi=100, layout="constrained")
    axes = fig.subplots(1, 2, squeeze=False)[0]
    for ax, images, head in zip(axes, ("synthetic", "real_val"), ("synthetic", "real val (the ceiling)"), strict=True):
        cm = np.array([conf[images][c] for c in requested], dtype=np.float64)
        n = cm.sum(axis=1, keepdims=True)
        norm = cm / np.maximum(n, 1)
        ax.imshow(norm, vmin=0, vmax=1, cmap="Blues", aspect="auto")
        if len(predicted) <= 8:
            for a in range(norm.shape[0]):
                for b in range(norm.shape[1]):
                    ax.text(b, a, f"{norm[a, b]:.2f}", ha="center", va="center", fontsize=7,
                            color="white" if norm[a, b] > 0.5 else "black")  # fmt: skip
        ax.set_xticks(range(len(predicted)), predicted, rotation=90, fontsize=7)
        ax.set_yticks(
            range(len(requested)), [f"{c} (n={int(k)})" for c, k in zip(requested, n[:, 0], strict=True)], fontsize=7
        )
        ax.set_xlabel("predicted (top-1)", fontsize=8)
        ax.set_ylabel("requested" if images == "synthetic" else "true", fontsize=8)
        ax.set_title(head, fontsize=9)
    fig.suptitle(title + ", rows normalised", fontsize=9)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
