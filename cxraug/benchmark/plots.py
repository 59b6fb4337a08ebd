"""Report figures (matplotlib, Agg, no pyplot state): per-class AUROC per arm with intervals, mean
ROC curves, confusion matrices, and a grid of the synthetic images used."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from cxraug.fsutil import atomic_write_bytes

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from cxraug.benchmark.aggregate import BenchmarkReport


def _figure(width: float, height: float, layout: str | None = "constrained") -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout=layout)


def _save(fig: Figure, path: Path) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    atomic_write_bytes(path, buf.getvalue())


def _colours(n: int) -> list:
    """n distinct colours: matplotlib's default ten, or tab20's twenty beyond that."""
    from matplotlib import colormaps

    cmap = colormaps["tab10" if n <= 10 else "tab20"]
    return [cmap(i % cmap.N) for i in range(n)]


def _short(name: str) -> str:
    return name.replace("Pleural_Thickening", "Pl. thick.").replace("No Finding", "No Find.")


def plot_class_auroc(report: BenchmarkReport, path: Path) -> None:
    classes, arms = report.classes, [a.name for a in report.arms]
    fig = _figure(max(6.0, 0.55 * len(classes) * max(1, len(arms)) ** 0.5 + 2), 4.2)
    ax = fig.add_subplot()
    width = 0.8 / len(arms)
    # Matplotlib's default cycle has 10 colours; with the controls and +classic arms there are more.
    colours = _colours(len(arms))
    for i, arm in enumerate(arms):
        est = [report.class_summary[(arm, c)]["auroc"] for c in classes]
        x = np.arange(len(classes)) - 0.4 + width * (i + 0.5)
        mean = np.array([e.mean for e in est])
        # Bootstrap intervals lie within [0, 1] by construction; none is drawn where there is none.
        lo = np.array([e.mean - e.low if e.has_interval else 0.0 for e in est])
        hi = np.array([e.high - e.mean if e.has_interval else 0.0 for e in est])
        ax.errorbar(x, mean, yerr=np.nan_to_num(np.vstack([lo, hi])), fmt="o", ms=4, capsize=2, label=arm,
                    color=colours[i])  # fmt: skip
    ax.set_xticks(range(len(classes)), [_short(c) + (" *" if k in report.rare else "") for k, c in enumerate(classes)])
    ax.tick_params(axis="x", rotation=45 if len(classes) > 4 else 0)
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax.set_ylabel("test AUROC (one-vs-rest)")
    ax.set_ylim(-0.02, 1.02)
    n_test = int(report.runs["n_test"].iloc[0]) if len(report.runs) else 0
    conf = report.plan.cfg.confidence
    ax.set_title(  # two lines: one does not fit a 2-class figure
        f"per-class test AUROC, mean over n={len(report.seeds)} seeds and {conf:.0%} bootstrap interval\n"
        f"(test patients and seeds); test n={n_test} images; * rare class",
        fontsize=10,
    )
    ax.legend(fontsize=8, ncols=min(len(arms), 4))
    _save(fig, path)


def _mean_roc(runs: list[tuple[int, np.ndarray, np.ndarray]], c: int, grid: np.ndarray) -> np.ndarray | None:
    from sklearn.metrics import roc_curve

    curves = []
    for _, probs, y in runs:
        pos = y == c
        if pos.all() or not pos.any():
            continue
        fpr, tpr, _ = roc_curve(pos, probs[:, c])
        curves.append(np.interp(grid, fpr, tpr))
    return np.mean(curves, axis=0) if curves else None


def plot_roc(report: BenchmarkReport, path: Path) -> None:
    """Per class, each arm's ROC curve averaged over seeds (vertically, on a common FPR grid)."""
    k = len(report.classes)
    cols = min(k, 5)
    rows = math.ceil(k / cols)
    # Shared axes and a fixed layout: a grid of 15 panels stays quick to draw.
    fig = _figure(2.6 * cols, 2.4 * rows + 0.5, layout=None)
    axes = fig.subplots(rows, cols, squeeze=False, sharex=True, sharey=True)
    fig.subplots_adjust(left=0.06, right=0.99, bottom=0.06, top=1 - 0.5 / (2.4 * rows + 0.5), hspace=0.3, wspace=0.1)
    grid = np.linspace(0, 1, 101)
    for c, name in enumerate(report.classes):
        ax = axes[c // cols][c % cols]
        for arm in report.arms:
            tpr = _mean_roc(report.predictions.get(arm.name, []), c, grid)
            if tpr is not None:
                auc = report.class_summary[(arm.name, name)]["auroc"].mean
                ax.plot(grid, tpr, lw=1.2, label=f"{arm.name} {auc:.2f}")
        ax.plot([0, 1], [0, 1], color="grey", lw=0.6, ls=":")
        n_pos = report.n_test(name)
        ax.set_title(f"{name} (test n+={n_pos})", fontsize=9)
        if n_pos:
            ax.legend(fontsize=6, loc="lower right")
        else:  # no positive test image: no curve to draw
            ax.text(0.5, 0.5, "no test image", ha="center", va="center", fontsize=8, transform=ax.transAxes)
    for j in range(k, rows * cols):
        axes[j // cols][j % cols].axis("off")
    fig.suptitle(f"test ROC curves, mean over n={len(report.seeds)} seeds (legend: mean AUROC)")
    _save(fig, path)


def plot_confusion(report: BenchmarkReport, path: Path) -> None:
    """Per arm: top-1 confusion matrix summed over seeds, each row normalised to 1."""
    from sklearn.metrics import confusion_matrix

    k, arms = len(report.classes), report.arms
    cols = min(len(arms), 3)
    rows = math.ceil(len(arms) / cols)
    side = 2.2 + 0.28 * k
    fig = _figure(side * cols, side * rows)
    axes = fig.subplots(rows, cols, squeeze=False)
    labels = [_short(c) for c in report.classes]
    for i, arm in enumerate(arms):
        ax = axes[i // cols][i % cols]
        cm = np.zeros((k, k))
        runs = report.predictions.get(arm.name, [])
        for _, probs, y in runs:
            cm += confusion_matrix(y, probs.argmax(axis=1), labels=list(range(k)))
        norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
        ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
        if k <= 6:
            for a in range(k):
                for b in range(k):
                    ax.text(b, a, f"{norm[a, b]:.2f}", ha="center", va="center", fontsize=8,
                            color="white" if norm[a, b] > 0.5 else "black")  # fmt: skip
        ax.set_xticks(range(k), labels, rotation=90, fontsize=7)
        ax.set_yticks(range(k), labels, fontsize=7)
        ax.set_xlabel("predicted (top-1)", fontsize=8)
        ax.set_ylabel("true", fontsize=8)
        ax.set_title(f"{arm.name} ({len(runs)} seeds)", fontsize=9)
    for j in range(len(arms), rows * cols):
        axes[j // cols][j % cols].axis("off")
    n_test = int(report.runs["n_test"].iloc[0]) if len(report.runs) else 0
    fig.suptitle(f"top-1 confusion matrices on the test split (n={n_test} images per seed), rows normalised")
    _save(fig, path)


def synthetic_grid(images: np.ndarray, labels: np.ndarray, classes: list[str], per_class: int, title: str):
    """A labelled grid (one row per class present) of the first images of each class."""
    from cxraug.grid import class_grid

    rows, names = [], []
    for c in np.unique(labels):
        rows.append(images[labels == c][:per_class])
        names.append(classes[int(c)])
    scale = max(1, 64 // images.shape[-1])
    return class_grid(rows, names, title=title, scale=scale)
