"""Figures of a comparison: samples side by side per class, and quality against cost."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

import numpy as np

from cxraug.metrics.scoring import OVERALL

if TYPE_CHECKING:
    from cxraug.compare.core import CompareResult


def side_by_side(class_name: str, per_run: dict[str, np.ndarray], seed: int) -> bytes:
    """One row per run, column i = synthetic image i (the same noise seed in every row)."""
    from cxraug.grid import class_grid

    size = next(v for v in per_run.values() if len(v)).shape[-1]
    scale = max(1, 64 // size)  # small images are hard to see at 1:1
    title = f"{class_name}: one row per run; column i from the same noise (seed {seed})"
    img = class_grid(list(per_run.values()), list(per_run), title=title, scale=scale)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def quality_vs_cost(result: CompareResult) -> bytes:
    """Overall FID against training minutes and against sampling img/s (log), one point per run."""
    from matplotlib.figure import Figure

    fid = {r["run"]: r.get("fid") for r in [*result.rows, *result.replicates] if r["class"] == OVERALL}
    fig = Figure(figsize=(8, 3.4), dpi=100, layout="constrained")
    axes = fig.subplots(1, 2)
    for r in result.runs:
        y = fid.get(r["label"])
        if y is None:
            continue
        for ax, x in zip(axes, (r["training"]["train_min"], r["sampling"]["img_per_s"]), strict=True):
            if x is not None:
                ax.scatter([x], [y], s=30)
                ax.annotate(r["label"], (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    clocks = {r["training"].get("clock", "wall") for r in result.runs}
    clock_unit = {"cpu": "CPU-minutes", "wall": "minutes"}
    unit = clock_unit[clocks.pop()] if len(clocks) == 1 else "minutes (CPU-minutes for clock=cpu runs)"
    axes[0].set_xlabel(f"training {unit} (training steps only)")
    axes[0].ticklabel_format(axis="x", style="plain", useOffset=False)  # equal budgets: no "+3e1" offset
    lo, hi = axes[0].get_xlim()
    if hi - lo < 1:  # runs at the same budget: show a minute either side, not a hundredth
        mid = (lo + hi) / 2
        axes[0].set_xlim(max(0.0, mid - 1), mid + 1)
    axes[1].set_xlabel("sampling img/s (this device)")
    axes[1].set_xscale("log")
    for ax in axes:
        ax.set_ylabel(f"FID, all classes ({result.context['split']})")
    fig.suptitle("quality against cost (lower FID is better)", fontsize=10)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()
