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
from typing import Any

import numpy as np

from cxraug.data.prepared import PreparedData
from cxraug.metrics.cache import FeatureCache
from cxraug.metrics.real import real_features
from cxraug.metrics.reference import ReferenceClassifier
from cxraug.metrics.registry import MetricOptions, compute_metrics
from cxraug.progress import Reporter

OVERALL = "all"


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float] | None:
    """95% Wilson score interval of a share k/n (None for n = 0): honest at n of a handful."""
    if n == 0:
        return None
    p = k / n
    mid = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, mid - half), min(1.0, mid + half)


def label_fidelity(fake_probs: np.ndarray, fake_labels: np.ndarray, real_probs: np.ndarray, real_labels: np.ndarray):
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


def reference_metrics(
    data: PreparedData,
    split: str,
    classes: list[str],
    fake_images: dict[str, np.ndarray],
    rows: list[dict[str, Any]],
    names: list[str],
    reference: ReferenceClassifier,
    cache: FeatureCache,
    fp: str,
    min_images: int,
    options: MetricOptions,
    batch_size: int,
    reporter: Reporter | None = None,
) -> tuple[dict[str, Any], dict[str, bytes], dict[str, Any]]:
    """Add fidelity and/or fd_cxr to ``rows`` (per class, then ``all``, as ``score`` made them).

    Fidelity needs synthetic images only on its own side (a rare class with 3 val images still
    gets the share of its 1,000 synthetic images, and a ceiling from 3 images, with intervals);
    fd_cxr follows the FID rule (``min_images`` on both sides). Returns the JSON section
    (confusion tables), the extra files (confusion.csv, confusion.png) and, per class, the
    reference's features of the real and synthetic images and whether each synthetic image
    was called its class (``compare`` resamples them for intervals).
    """
    k = len(data.classes)
    by_class = {r["class"]: r for r in rows}
    real_f, val_f, fake_f = {}, {}, {}
    for c in classes:
        real_f[c] = real_features(data, split, c, reference, cache, batch_size, reporter, fp)[1]
        val_f[c] = (
            real_f[c]
            if split == "val"
            else real_features(data, "val", c, reference, cache, batch_size, reporter, fp)[1]
        )
        imgs = fake_images[c]
        fake_f[c] = (
            reference.extract(imgs, batch_size, reporter, what=f"synthetic {c} ({len(imgs)})")
            if len(imgs)
            else np.empty((0, reference.num_features), np.float32)
        )

    # The ceiling: val images of the patients the reference was not selected on.
    val_labels = data.labels("val")
    held_f = {c: val_f[c][reference.ceiling_mask(val_labels, c)] for c in classes}
    probs = {c: (reference.probs(fake_f[c]), reference.probs(held_f[c])) for c in classes}
    overall = by_class[OVERALL]
    counts = overall.get("fake_per_class") or {c: len(fake_f[c]) for c in classes}
    for c in [*classes, OVERALL]:
        row = by_class[c]
        part = classes if c == OVERALL else [c]
        take = {x: counts[x] for x in part} if c == OVERALL else {c: len(fake_f[c])}
        info = (
            reference.val_class(c)
            if c != OVERALL
            else {"recall_top1": None, "auroc": reference.record["val_macro_auroc"]}
        )
        row["ref_val_recall"], row["ref_val_auroc"] = info["recall_top1"], info["auroc"]
        if "fidelity" in names:
            fp_ = np.concatenate([probs[x][0][: take[x]] for x in part])
            fl = np.concatenate([class_labels(data.classes, x, take[x]) for x in part])
            rp = np.concatenate([probs[x][1] for x in part])
            rl = np.concatenate([class_labels(data.classes, x, len(held_f[x])) for x in part])
            row.update(label_fidelity(fp_, fl, rp, rl))
        if "fd_cxr" in names:
            real = np.concatenate([real_f[x] for x in part])
            fake = np.concatenate([fake_f[x][: take[x]] for x in part])
            if min(len(real), len(fake)) >= min_images:
                row.update(compute_metrics(["fd_cxr"], real, fake, options))
            else:
                row["fd_cxr_status"] = f"too few images (n_real={len(real)}, n_fake={len(fake)} < {min_images})"
    section: dict[str, Any] = {}
    files: dict[str, bytes] = {}
    if "fidelity" in names:
        syn = sum(
            (_confusion(probs[c][0], class_labels(data.classes, c, len(fake_f[c])), k) for c in classes),
            np.zeros((k, k), np.int64),
        )
        val = sum(
            (_confusion(probs[c][1], class_labels(data.classes, c, len(held_f[c])), k) for c in classes),
            np.zeros((k, k), np.int64),
        )
        idx = [data.classes.index(c) for c in classes]
        section["fidelity_confusion"] = {
            "predicted": data.classes,
            "synthetic": {c: syn[i].tolist() for c, i in zip(classes, idx, strict=True)},
            "real_val": {c: val[i].tolist() for c, i in zip(classes, idx, strict=True)},
        }
        files["confusion.csv"] = _confusion_csv(section["fidelity_confusion"]).encode()
        files["confusion.png"] = confusion_png(
            section["fidelity_confusion"], f"{data.name}: reference classifier's top-1"
        )
    hits = {c: probs[c][0].argmax(axis=1) == data.classes.index(c) for c in classes}
    return section, files, {"real": real_f, "fake": fake_f, "hits": hits}


def add_reference_metrics(
    data: PreparedData,
    classes: list[str],
    fake_images: dict[str, np.ndarray],
    result: Any,  # ScoreResult
    cfg: Any,  # ScoreConfig
    extractor: Any,
    reference: ReferenceClassifier | None,
    cache: FeatureCache,
    fp: str,
    reporter: Reporter | None = None,
) -> ReferenceClassifier:
    """``score``'s hook: the reference (loaded, or trained on first use, on the extractor's
    device), then its metrics into ``result``'s rows, JSON sections and files."""
    from cxraug.metrics.reference import load_reference
    from cxraug.metrics.registry import metrics_in

    if reference is None:
        reference = load_reference(data, cfg.reference, cache.directory, getattr(extractor, "device", None), reporter)
    opts = MetricOptions(kid_subsets=cfg.kid_subsets, seed=cfg.seed)
    names = metrics_in(cfg.metrics, "reference")
    result.extra, result.files, result.reference_features = reference_metrics(
        data, cfg.split, classes, fake_images, result.rows, names, reference, cache, fp, cfg.min_images, opts,
        cfg.batch_size, reporter,
    )  # fmt: skip
    return reference


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
