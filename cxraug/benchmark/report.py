"""Write the report: results.csv (arm x seed x class), runs.csv (arm x seed), verdicts.csv
(the primary comparisons with verdicts, then the exploratory ones), results.json (everything, with the
summaries and the answer), summary.md and summary.html (the answer first, then the tables;
summary.py) and the plots. Every file is written atomically; every number says what it was
computed on."""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cxraug.benchmark.aggregate import EXPLORATORY_METRICS, MDE_POWER, BenchmarkReport
from cxraug.benchmark.answer import answer_json
from cxraug.benchmark.statistics import ADJUSTMENT_NAMES, MIN_SEEDS, PRIOR_DEPENDENT, Estimate, Stat
from cxraug.benchmark.summary import PLOTS, caveats, page_title, summary_blocks
from cxraug.data.prepared import fingerprint
from cxraug.fsutil import atomic_write_text, write_json

if TYPE_CHECKING:
    import pandas as pd


def _clean(obj: Any) -> Any:
    """JSON has no NaN: write null instead."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, Estimate | Stat):
        return _clean(obj.to_dict())
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return _clean(obj.item())
    return obj


def verdict_frame(report: BenchmarkReport):
    """One row per comparison: the primary family (arm vs its copy control and vs the best
    baseline, test AUROC, adjusted p and verdict), then the exploratory ones (every arm vs the
    reference, AUROC and F1: raw p, no verdict)."""
    import pandas as pd

    def base(d, name: str) -> dict:
        return {"n_test_class": report.n_test(name), "n_test_patients_class": report.class_patients.get(name, 0),
                "n_test": report.n_test_images, "n_test_patients": report.n_test_patients, "n_seeds": d.n,
                "diff": d.mean, "low": d.low, "high": d.high, "t_low": d.t_low, "t_high": d.t_high,
                "bootstrap_sd": d.sd, "mde": d.mde, "p": d.p, "reason": d.reason}  # fmt: skip

    rows = []
    for c in report.primary:
        rows.append({"family": "primary", "metric": "auroc", "class": c.class_name, "arm": c.arm,
                     "against": c.against, "other": c.other, **base(c.diff, c.class_name),
                     "p_adjusted": c.diff.p_adjusted, "adjustment": report.plan.cfg.adjust,
                     "verdict": c.verdict, "answer": report.answers.get((c.class_name, c.arm))})  # fmt: skip
    for m in EXPLORATORY_METRICS:
        for v in report.exploratory(m):
            rows.append({"family": "exploratory", "metric": m, "class": v["class"], "arm": v["arm"],
                         "against": "reference", "other": report.reference, **base(v["diff"], v["class"]),
                         "p_adjusted": None, "adjustment": None, "verdict": None, "answer": None})  # fmt: skip
    return pd.DataFrame(rows)


def write_report(report: BenchmarkReport, out: Path) -> list[Path]:
    from cxraug import page
    from cxraug.benchmark import plots

    out = Path(out)
    cfg = report.plan.cfg
    per_class = report.per_class.rename(columns={"n": "n_test", "n_pos": "n_test_class"})
    atomic_write_text(out / "results.csv", per_class.to_csv(index=False))
    atomic_write_text(out / "runs.csv", report.runs.to_csv(index=False))
    atomic_write_text(out / "verdicts.csv", verdict_frame(report).to_csv(index=False))
    written = [out / f for f in ("results.csv", "runs.csv", "verdicts.csv")]
    if len(report.runs) and cfg.plots:
        plots.plot_class_auroc(report, out / "class_auroc.png")
        plots.plot_roc(report, out / "roc_curves.png")
        plots.plot_confusion(report, out / "confusion_matrices.png")
        written += [out / f for f in PLOTS]
    else:  # no figure is better than one of an earlier run
        for f in [*PLOTS, *(p.name for p in out.glob("synthetic_*.png"))]:
            (out / f).unlink(missing_ok=True)
    grids = _synthetic_grids(report, out)
    written += [out / f for f in grids]
    write_json(out / "results.json", _clean(results_json(report, per_class)))
    blocks = summary_blocks(report, grids)
    atomic_write_text(out / "summary.md", page.markdown(page_title(report), blocks))
    pngs = {b.file: (out / b.file).read_bytes() for b in blocks if isinstance(b, page.Image)}
    atomic_write_text(out / "summary.html", page.html(page_title(report), blocks, pngs))
    return [*written, out / "results.json", out / "summary.md", out / "summary.html"]


def _synthetic_grids(report: BenchmarkReport, out: Path) -> list[str]:
    """A sample grid of each synthetic set an arm uses (when plots are on): the files written."""
    from cxraug.benchmark import plots
    from cxraug.grid import save_png

    cfg = report.plan.cfg
    grids = []
    for name, syn in report.plan.synthetic.items():
        if not cfg.plots or cfg.grid_per_class == 0 or not any(a.synthetic == name for a in report.arms):
            continue
        classes = cfg.synthetic_classes or None
        images, labels = syn.load(classes=classes, limit_per_class=cfg.grid_per_class)
        if len(labels):
            title = f"synthetic set {name}: {syn.provenance.get('plugin', '?')} step {syn.provenance.get('step', '?')}"
            f = f"synthetic_{name}.png"
            save_png(plots.synthetic_grid(images, labels, report.classes, cfg.grid_per_class, title), out / f)
            grids.append(f)
    return grids


def results_json(report: BenchmarkReport, per_class: pd.DataFrame) -> dict:
    """results.json: the options, the question and its answer, every estimate, row and run."""
    cfg = report.plan.cfg
    return {
        "dataset": {"path": str(report.plan.data.root.resolve()), "fingerprint": fingerprint(report.plan.data)},
        "config": cfg.model_dump(mode="json"),
        "arms": [{**a.spec(), "description": a.describe()} for a in report.arms],
        "budget": {"steps": report.plan.steps, "evaluations": report.plan.evaluations, "batch_size": cfg.batch_size},
        "question": report.question,
        "post_hoc": report.post_hoc,
        "best_baseline": {k: {"arm": a, "val_auroc": v} for k, (a, v) in report.best_baseline.items()},
        "primary": [c.row() for c in report.primary],
        "answers": [{"class": k[0], "arm": k[1], "answer": v} for k, v in report.answers.items()],
        "seeds": report.seeds,
        "classes": report.classes,
        "rare_classes": [report.classes[c] for c in report.rare],
        "rare_rule": report.rare_rule,
        "train_counts_real": dict(zip(report.classes, report.train_counts.tolist(), strict=True)),
        "reference": report.reference,
        "confidence": cfg.confidence,
        "statistics": {
            "interval": "bootstrap percentile: test patients resampled within their class's stratum, seeds "
            "Dirichlet-weighted, paired across arms",
            "bootstrap_draws": cfg.bootstrap_draws,
            "bootstrap_seed": cfg.bootstrap_seed,
            "min_seeds": MIN_SEEDS,
            "test_patients": report.n_test_patients,
            "test_images": report.n_test_images,
            "secondary_interval": "t interval over seeds (t_low, t_high): training noise only",
            "adjustment": ADJUSTMENT_NAMES[cfg.adjust] + " over the primary family only",
            "primary_family_size": report.family_size,
            "prior_dependent_metrics": f"F1, precision, recall, balanced accuracy: {PRIOR_DEPENDENT}",
            "mde_power": MDE_POWER,
        },
        "summary": report.arm_summary,
        "paired_differences": {  # rare-class averages only for arms that change a rare class
            a: {m: d for m, d in diffs.items() if report.changes_rare(a) or not m.startswith("rare_")}
            for a, diffs in report.arm_diff.items()
        },
        "per_class_summary": [
            {"arm": a, "class": c, **est, "diff": report.class_diff.get((a, c), {}) if report.changes(a, c) else {}}
            for (a, c), est in report.class_summary.items()
        ],
        "exploratory": [{**v, "metric": m} for m in EXPLORATORY_METRICS for v in report.exploratory(m)],
        "rows": per_class.to_dict(orient="records"),
        "runs": report.runs.to_dict(orient="records"),
        "notes": caveats(report),
        "answer": answer_json(report),
    }
