"""Write the report: results.csv (arm x seed x class), runs.csv (arm x seed), verdicts.csv
(arm x rare class x metric, adjusted and unadjusted), results.json (everything, with the
summaries), summary.md (the tables and plain verdicts) and the plots. Every file is written
atomically; every number says what it was computed on."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from cxraug.benchmark.aggregate import MDE_POWER, VERDICT_METRICS, BenchmarkReport, images
from cxraug.benchmark.metrics import RUN_METRICS
from cxraug.benchmark.statistics import ADJUSTMENT_NAMES, HELPED, HURT, MIN_SEEDS, Estimate, Stat
from cxraug.data.prepared import fingerprint
from cxraug.fsutil import atomic_write_text, write_json
from cxraug.significance import per_test_level, smallest_attainable_p

RUN_LABELS = {
    "macro_auroc": "macro AUROC",
    "macro_f1": "macro F1",
    "balanced_accuracy": "balanced acc.",
    "rare_auroc": "rare AUROC",
    "rare_f1": "rare F1",
    "rare_recall": "rare recall",
}
PLOTS = {
    "class_auroc.png": "per-class test AUROC per arm (mean, bootstrap interval)",
    "roc_curves.png": "ROC curves",
    "confusion_matrices.png": "confusion matrices",
}


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


def dataset_line(report: BenchmarkReport) -> str:
    data = report.plan.data
    meta = data.meta
    n = {s: sum(data.counts(s).values()) for s in ("train", "val", "test")}
    p = meta.get("patients", {})
    real = "" if meta.get("real_data", True) else f" — **{meta.get('note') or 'NOT REAL DATA'}**"
    return (
        f"`{data.root}` ({meta.get('source')}, {data.size}px, {len(data.classes)} classes){real}; "
        f"train {n['train']} images ({p.get('train', '?')} patients), val {n['val']} ({p.get('val', '?')}), "
        f"test {n['test']} ({p.get('test', '?')}); fingerprint {fingerprint(data)[:12]}"
    )


def _verdict_text(v: str) -> str:
    return {HELPED: "**helped**", HURT: "**hurt**"}.get(v, v)


def interval_line(report: BenchmarkReport) -> str:
    """What the brackets are, in one line."""
    cfg = report.plan.cfg
    conf = f"{cfg.confidence:.0%}"
    if len(report.seeds) < MIN_SEEDS:
        return (
            f"Numbers are means over {len(report.seeds)} seed(s) on the whole test split, without intervals: "
            f"{MIN_SEEDS} or more seeds are needed for one."
        )
    return (
        f"Numbers are the mean over {len(report.seeds)} seeds on the whole test split, and in brackets its {conf} "
        f"bootstrap interval over test patients ({report.n_test_patients} patients, {report.n_test_images} images) "
        f"and seeds, paired across arms ({cfg.bootstrap_draws} draws, bootstrap seed {cfg.bootstrap_seed}); "
        f"'training noise only' is ± the half-width of the {conf} t interval over seeds."
    )


def adjustment_line(report: BenchmarkReport) -> str:
    cfg = report.plan.cfg
    n = report.families.get("auroc", 0)
    arms = sum(a.name != report.reference for a in report.arms)
    if n == 0:
        return (
            "No verdicts, so nothing to adjust: no rare class had an interval (too few seeds or "
            f"fewer than {cfg.min_test_images} positive test images)."
        )
    alpha = 1 - cfg.confidence
    return (
        f"Verdicts are {ADJUSTMENT_NAMES[cfg.adjust]}-adjusted over one family of m = {n} comparisons "
        f"({arms} arms x the rare classes with an interval x AUROC and F1); the smallest attainable adjusted p is "
        f"{smallest_attainable_p(cfg.bootstrap_draws, n):g} (the p is normal, from the bootstrap sd: no floor, so "
        f"every verdict is reachable), and the strictest step needs a p below {per_test_level(alpha, n):.2g}. "
        "The unadjusted p-values and verdicts are in verdicts.csv and results.json."
    )


def _verdict_cell(v: dict) -> str:
    d = v["diff"]
    p = "" if d.p_adjusted is None else f", adjusted p {d.p_adjusted:.3f}"
    return f"{_verdict_text(v['verdict'])}{p}"


def _mde_text(d: Stat) -> str:
    return "-" if d.mde is None or math.isnan(d.mde) else f"{d.mde:.3f}"


def answer_lines(report: BenchmarkReport) -> list[str]:
    """The plain answer, one line per rare class and arm (synthetic arms first)."""
    ref = report.reference
    if ref is None:
        return [f"No reference arm ({report.plan.cfg.reference}) was run, so nothing is compared."]
    if not report.rare:
        return [f"No rare class ({report.rare_rule}): set option rare_classes to name them."]
    lines = []
    verdicts = sorted(report.verdicts("auroc"), key=lambda v: (not v["synthetic"], v["class"]))
    f1 = {(v["arm"], v["class"]): v for v in report.verdicts("f1")}
    if not any(v["synthetic"] for v in verdicts):
        lines.append("No synthetic arm was run; the other arms compared with the reference:")
    for v in verdicts:
        c = report.classes.index(v["class"])
        n_test = report.n_test(v["class"])
        mde = _mde_text(v["diff"])
        detect = "" if mde == "-" else f"; the test split could detect a difference of about {mde} in AUROC"
        fv = f1[(v["arm"], v["class"])]
        lines.append(
            f"- **{v['class']}** ({images(int(report.train_counts[c]), 'real training')}, {images(n_test, 'test')}), "
            f"{v['arm']} vs {ref}: AUROC {v['diff'].text(signed=True)} → {_verdict_cell(v)}; "
            f"F1 {fv['diff'].text(signed=True)} → {_verdict_cell(fv)}{detect}"
        )
    return lines


def _p_text(d: Stat) -> str:
    if d.p is None:
        return "-"
    adj = "-" if d.p_adjusted is None else f"{d.p_adjusted:.3f}"
    return f"{d.p:.3f} / {adj}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return out


def summary_markdown(report: BenchmarkReport, grids: list[str]) -> str:
    cfg, plan = report.plan.cfg, report.plan
    k = len(report.seeds)
    n_test = int(report.runs["n_test"].iloc[0]) if len(report.runs) else 0
    conf = f"{cfg.confidence:.0%}"
    weights = f"weights from {cfg.weights}" if cfg.weights else "trained from scratch"
    lines = [
        f"# cxraug benchmark: {plan.data.name}",
        "",
        f"- Data: {dataset_line(report)}",
        f"- Classifier: {cfg.model}, 1 channel, {weights}; {cfg.epochs} epochs, batch {cfg.batch_size}, "
        f"AdamW lr {cfg.lr:g}, weight decay {cfg.weight_decay:g}, mixed precision {cfg.mixed_precision}; "
        f"device {report.runs['device'].iloc[0] if len(report.runs) else '?'}",
        f"- Selection: the epoch with the best validation macro AUROC; per-class thresholds maximise "
        f"validation F1; the test split ({n_test} images) is predicted once per trained model.",
        f"- Seeds: {', '.join(map(str, report.seeds))} (n={k}), the same for every arm (paired). "
        + interval_line(report),
        f"- Rare classes: {', '.join(report.classes[c] for c in report.rare) or 'none'} ({report.rare_rule}).",
    ]
    if plan.controlled:
        kept = ", ".join(f"{plan.classes[c]}={n}" for c, n in plan.controlled.items())
        lines.append(
            f"- Controlled imbalance: kept {kept} training images, chosen by patient (seed {cfg.imbalance_seed})."
        )
    lines += ["", "## Did it help the rare classes?", ""]
    lines += answer_lines(report)
    lines += [
        "",
        f"'helped': the adjusted bootstrap p of the paired difference is below {1 - cfg.confidence:.2g} and the "
        "difference is positive; 'hurt': the same, negative; otherwise there is no evidence it helps (which is "
        "not evidence that it does not). " + adjustment_line(report) + " "
        f"A class with fewer than {cfg.min_test_images} positive test images gets numbers but no interval and no "
        "verdict. 'Detectable' is the difference the test split would find with "
        f"{MDE_POWER:.0%} power at the family's strictest level {1 - cfg.confidence:.2g}/m: "
        "(z + z_power) x the bootstrap sd of the difference.",
        "",
        "## Arms and their training sets",
        "",
    ]
    rows = []
    for arm in report.arms:
        sub = report.per_class[report.per_class["arm"] == arm.name]
        seed0 = sub[sub["seed"] == sub["seed"].min()] if len(sub) else sub
        synth = int(seed0["n_train_synthetic"].sum()) if len(seed0) else 0
        real = int(seed0["n_train_real"].sum()) if len(seed0) else 0
        per = ", ".join(
            f"{r['class']} +{int(r['n_train_synthetic'])}" for _, r in seed0.iterrows() if r["n_train_synthetic"]
        )
        secs = report.arm_summary[arm.name]["seconds"]
        rows.append(
            [arm.name, arm.describe(), str(real), f"{synth}" + (f" ({per})" if per else ""), f"{secs.mean:.1f}s"]
        )
    lines += _table(["arm", "what", "real images", "synthetic images", "time per run"], rows)
    lines += ["", f"## Test results (test n={n_test} images; mean [{conf} bootstrap interval], n={k} seeds)", ""]
    rows = [
        [arm.name]
        + [report.arm_summary[arm.name][m].text() for m in RUN_METRICS]
        + [report.arm_summary[arm.name]["macro_auroc"].noise_text()]
        for arm in report.arms
    ]
    lines += _table(["arm", *(RUN_LABELS[m] for m in RUN_METRICS), "macro AUROC: training noise only"], rows)
    if report.reference:
        lines += ["", f"## Paired differences from {report.reference} (same test patients and seeds)", ""]
        rows = [
            [arm.name]
            + [f"{report.arm_diff[arm.name][m].text(signed=True)}" for m in RUN_METRICS]
            + [report.arm_diff[arm.name]["rare_auroc"].noise_text()]
            for arm in report.arms
            if arm.name != report.reference
        ]
        lines += _table(
            ["arm", *(f"Δ {RUN_LABELS[m]}" for m in RUN_METRICS), "Δ rare AUROC: training noise only"], rows
        )
    lines += ["", "## Rare classes in detail", ""]
    for c in report.rare:
        name = report.classes[c]
        n_pos = report.n_test(name)
        lines += [f"### {name} ({images(int(report.train_counts[c]), 'real training')}, {images(n_pos, 'test')})", ""]
        rows = []
        for arm in report.arms:
            s = report.class_summary[(arm.name, name)]
            row = [arm.name, s["auroc"].text(), s["recall"].text(), s["precision"].text(), s["f1"].text()]
            if report.reference and arm.name != report.reference:
                d = report.class_diff[(arm.name, name)]
                row += [d["auroc"].text(signed=True), d["auroc"].noise_text(), _mde_text(d["auroc"]),
                        _p_text(d["auroc"]), report.verdict(d["auroc"]),
                        d["f1"].text(signed=True), report.verdict(d["f1"])]  # fmt: skip
            else:
                row += ["", "", "", "", "", "", ""]
            rows.append(row)
        header = ["arm", "AUROC", "recall", "precision", "F1", "Δ AUROC", "Δ AUROC: training noise only",
                  "detectable Δ AUROC", "p (unadj. / adj.)", "verdict", "Δ F1", "verdict"]  # fmt: skip
        lines += _table(header, rows)
        lines.append("")
    lines += [f"## Per-class test AUROC (mean [{conf} bootstrap interval], n={k} seeds)", ""]
    rows = []
    for name in report.classes:
        n_pos = report.n_test(name)
        rows.append([name, str(n_pos)] + [report.class_summary[(a.name, name)]["auroc"].text() for a in report.arms])
    lines += _table(["class", "test n", *(a.name for a in report.arms)], rows)
    if cfg.plots:
        lines += ["", "## Figures", ""]
        lines += [f"![{what}]({f})" for f, what in PLOTS.items()]
        lines += [f"![synthetic images used]({g})" for g in grids]
    lines += ["", "## Notes", ""]
    lines += [f"- {n}" for n in caveats(report)]
    lines += [
        "",
        "Files: results.csv (arm x seed x class), runs.csv (arm x seed), verdicts.csv (arm x rare class x metric, "
        "adjusted and unadjusted), results.json, runs/ (per-run records with their test predictions). "
        "`cxraug benchmark --report-only DIR` rebuilds this page from them.",
    ]
    return "\n".join(lines) + "\n"


def caveats(report: BenchmarkReport) -> list[str]:
    notes = list(report.notes)
    meta = report.plan.data.meta
    if not meta.get("real_data", True):
        notes.append("this dataset is NOT real data: the numbers test the pipeline, not a medical question")
    if len(report.seeds) < MIN_SEEDS:
        notes.append(f"only {len(report.seeds)} seed(s): no intervals and no verdicts; run {MIN_SEEDS} or more")
    elif len(report.seeds) < 5:
        notes.append(f"only {len(report.seeds)} seeds: the seed part of the intervals is rough; 5 or more are advised")
    compared = [v["diff"] for v in report.verdicts("auroc") if v["diff"].has_interval]
    noisy = [d for d in compared if d.t_high - d.t_low > d.high - d.low]
    if noisy:  # a resample of a few seeds understates their spread; the t interval does not
        notes.append(
            f"in {len(noisy)} of {len(compared)} rare-class AUROC comparisons the seeds disagree more than the "
            f"bootstrap interval allows for (training noise ± wider than half the interval): with "
            f"{len(report.seeds)} seeds the bootstrap understates training noise; run more seeds before relying "
            "on those verdicts"
        )
    for c in report.rare:
        name = report.classes[c]
        n_pos = report.n_test(name)
        if n_pos < 20:
            notes.append(f"{name} has {images(n_pos, 'test')}: its AUROC, recall and F1 move in large steps")
    notes.append(
        "recall, precision and F1 are one-vs-rest at validation-chosen thresholds; balanced accuracy and the "
        "confusion matrices use the top-1 prediction"
    )
    notes.append(f"{report.trained} runs trained now, {report.reused} reused from earlier runs in this folder")
    return notes


def verdict_frame(report: BenchmarkReport):
    """One row per rare class x arm x verdict metric: difference, interval, p, adjusted p, verdicts."""
    import pandas as pd

    rows = []
    for m in VERDICT_METRICS:
        for v in report.verdicts(m):
            d = v["diff"]
            rows.append(
                {"metric": m, "class": v["class"], "arm": v["arm"], "reference": report.reference,
                 "n_test_class": report.n_test(v["class"]), "n_test": report.n_test_images,
                 "n_test_patients": report.n_test_patients, "n_seeds": d.n, "diff": d.mean, "low": d.low,
                 "high": d.high, "t_low": d.t_low, "t_high": d.t_high, "bootstrap_sd": d.sd, "mde": d.mde,
                 "p": d.p, "p_adjusted": d.p_adjusted, "adjustment": report.plan.cfg.adjust,
                 "verdict": v["verdict"], "verdict_unadjusted": v["verdict_unadjusted"], "reason": d.reason}
            )  # fmt: skip
    return pd.DataFrame(rows)


def write_report(report: BenchmarkReport, out: Path) -> list[Path]:
    from cxraug.benchmark import plots
    from cxraug.grid import save_png

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
            written.append(out / f)
    results = {
        "dataset": {"path": str(report.plan.data.root.resolve()), "fingerprint": fingerprint(report.plan.data)},
        "config": cfg.model_dump(mode="json"),
        "arms": [
            {
                "name": a.name,
                "kind": a.kind,
                "synthetic": a.synthetic,
                "ratio": a.ratio.text if a.ratio else None,
                "description": a.describe(),
            }
            for a in report.arms
        ],
        "seeds": report.seeds,
        "classes": report.classes,
        "rare_classes": [report.classes[c] for c in report.rare],
        "rare_rule": report.rare_rule,
        "train_counts_real": dict(zip(report.classes, report.train_counts.tolist(), strict=True)),
        "reference": report.reference,
        "confidence": cfg.confidence,
        "statistics": {
            "interval": "bootstrap percentile: test patients resampled, seeds Dirichlet-weighted, paired across arms",
            "bootstrap_draws": cfg.bootstrap_draws,
            "bootstrap_seed": cfg.bootstrap_seed,
            "min_seeds": MIN_SEEDS,
            "test_patients": report.n_test_patients,
            "test_images": report.n_test_images,
            "secondary_interval": "t interval over seeds (t_low, t_high): training noise only",
            "adjustment": ADJUSTMENT_NAMES[cfg.adjust],
            "comparisons": report.families,
            "mde_power": MDE_POWER,
        },
        "summary": report.arm_summary,
        "paired_differences": report.arm_diff,
        "per_class_summary": [
            {"arm": a, "class": c, **est, "diff": report.class_diff.get((a, c), {})}
            for (a, c), est in report.class_summary.items()
        ],
        "verdicts": [{**v, "metric": m} for m in VERDICT_METRICS for v in report.verdicts(m)],
        "rows": per_class.to_dict(orient="records"),
        "runs": report.runs.to_dict(orient="records"),
        "notes": caveats(report),
    }
    write_json(out / "results.json", _clean(results))
    atomic_write_text(out / "summary.md", summary_markdown(report, grids))
    return [*written, out / "results.json", out / "summary.md"]
