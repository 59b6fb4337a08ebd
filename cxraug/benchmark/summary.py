"""The benchmark's page, summary.md and summary.html from the same blocks: the answer first,
then how it was measured, the tables, the figures and the notes. Every number says what it
was computed on; a number without an interval says why once, not in every cell."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from cxraug.benchmark.aggregate import MDE_POWER, NOT_CHANGED, images, patients
from cxraug.benchmark.answer import class_lines, class_reason, lead, no_verdicts_reason, shared_reason, stat_cell
from cxraug.benchmark.metrics import RUN_METRICS
from cxraug.benchmark.primary import comparison_word
from cxraug.benchmark.question import BASELINE_RULE
from cxraug.benchmark.statistics import ADJUSTMENT_NAMES, HELPED, HURT, MIN_SEEDS, PRIOR_DEPENDENT, Stat
from cxraug.data.prepared import fingerprint
from cxraug.page import Block, Box, Bullets, Heading, Image, Para
from cxraug.significance import T_REFERENCE_BELOW, format_p, per_test_level
from cxraug.tables import Cell, ReportTable, TableColumn, cells, page_block

if TYPE_CHECKING:
    from cxraug.benchmark.aggregate import BenchmarkReport

RUN_LABELS = {
    "macro_auroc": "macro AUROC",
    "macro_f1": "macro F1 †",
    "balanced_accuracy": "balanced acc. †",
    "rare_auroc": "rare AUROC",
    "rare_f1": "rare F1 †",
    "rare_recall": "rare recall †",
}
DAGGER = f"† {PRIOR_DEPENDENT} (secondary metrics; AUROC is the primary one)."
PLOTS = {
    "class_auroc.png": "per-class test AUROC per arm (mean, bootstrap interval)",
    "roc_curves.png": "ROC curves",
    "confusion_matrices.png": "confusion matrices",
}


def page_title(report: BenchmarkReport) -> str:
    return f"cxraug benchmark: {report.plan.data.name}"


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
    why = no_verdicts_reason(report)
    if why:
        return f"No verdicts ({why}), so nothing to adjust."
    n = report.family_size
    alpha = 1 - cfg.confidence
    k = len(report.seeds)
    ref = (
        f"a t reference ({k} seeds, fewer than {T_REFERENCE_BELOW}: the normal would overstate), its degrees of "
        f"freedom by Satterthwaite from the seeds' share of the variance ({k - 1} when the seeds dominate)"
        if k < T_REFERENCE_BELOW
        else "the normal reference"
    )
    return (
        f"Verdicts are {ADJUSTMENT_NAMES[cfg.adjust]}-adjusted over the primary family only, m = {n} comparisons; "
        f"each p is from z = Δ / bootstrap sd with {ref}; the strictest step needs a p below "
        f"{per_test_level(alpha, n):.2g}. The verdict rests on that adjusted p, not on the intervals, which are "
        "unadjusted bootstrap intervals: with few seeds or many comparisons an interval can exclude zero without a "
        "verdict. Every other difference on this page is exploratory: an interval and a raw p, no verdict."
    )


def answer_blocks(report: BenchmarkReport) -> list[Block]:
    inner: list[Block] = [Para(lead(report))]
    for header, lines in class_lines(report):
        inner += [Para(header), Bullets(lines)] if lines else [Bullets([header])]
    return [Heading(2, "The answer: do the synthetic images help beyond their controls and the best baseline?"),
            Box(inner)]  # fmt: skip


def question_blocks(report: BenchmarkReport) -> list[Block]:
    """The declared question, what 'helped' means, and the primary comparisons as a table."""
    cfg = report.plan.cfg
    q = report.question
    rare = ", ".join(q.get("rare_classes", [])) or "none"
    baselines = ", ".join(q.get("baselines", [])) or "none"
    items = [
        f"Declared before training (benchmark.json): for each rare class ({rare}), does each synthetic arm that "
        f"adds images of it beat (a) its copy control and (b) the best baseline ({baselines}); {BASELINE_RULE}. "
        "Primary metric: test AUROC of the class.",
        "'helped' means better than both, each at the family's adjusted level; 'hurt', worse than either; otherwise "
        "there is no evidence it helps (which is not evidence that it does not: the interval says what it rules out).",
        "Controls: copy = the class's own real training images repeated to the same count; noise = phase-"
        "randomised real training images of every class (same histogram and about the same spectrum, no "
        "anatomy), labelled like the synthetic images. Every arm and seed trains the same number of steps.",
        adjustment_line(report),
        f"A class with fewer than {cfg.min_test_patients} test patients gets numbers but no interval and no "
        f"verdict. Detectable differences: {MDE_POWER:.0%} power at the unadjusted level, (z + z_power) x the "
        "bootstrap sd of the difference.",
    ]
    if report.post_hoc:
        items.insert(
            0, f"**Post hoc**: the question changed after the test results were seen: {'; '.join(report.post_hoc)}."
        )
    rows = []
    for c in report.primary:
        d = c.diff
        ceiling = f"{d.high:+.3f}" if d.has_interval else "-"
        rows.append([*cells(c.class_name, c.arm, c.against, c.other or "-"), stat_cell(d, signed=True),
                     *cells(_p_text(d), _verdict_cell(c.verdict, d), ceiling)])  # fmt: skip
    header = [
        "class",
        "arm",
        "against",
        "other arm",
        "Δ test AUROC",
        "p (raw / adj.)",
        "verdict",
        "rules out a gain above",
    ]
    out: list[Block] = [Heading(2, "The question and its primary comparisons"), Bullets(items)]
    if rows:
        out += [Heading(3, "Primary comparisons"), page_block(_table("Primary comparisons", header, rows))]
    if report.best_baseline:
        chosen = "; ".join(f"{k}: {a} (val AUROC {v:.3f})" for k, (a, v) in report.best_baseline.items())
        out.append(Para(f"Best baseline per rare class, chosen on the validation split: {chosen}.", css="note"))
    return out


def setup_blocks(report: BenchmarkReport) -> list[Block]:
    cfg, plan = report.plan.cfg, report.plan
    n_test = report.n_test_images
    weights = f"weights from {cfg.weights}" if cfg.weights else "trained from scratch"
    device = report.runs["device"].iloc[0] if len(report.runs) else "?"
    items = [
        f"Data: {dataset_line(report)}",
        f"Classifier: {cfg.model}, 1 channel, {weights}; **{plan.steps} optimiser steps of batch {cfg.batch_size} "
        f"for every arm and seed** ({_budget_words(report)}), cosine schedule, AdamW lr {cfg.lr:g}, weight decay "
        f"{cfg.weight_decay:g}, mixed precision {cfg.mixed_precision}; device {device}",
        f"Selection: of {plan.evaluations} validation checks evenly spaced over the steps, the one with the best "
        "validation macro AUROC; per-class thresholds maximise validation F1; the test split "
        f"({n_test} images) is predicted once per trained model.",
        f"Seeds: {', '.join(map(str, report.seeds))} (n={len(report.seeds)}), the same for every arm (paired). "
        + interval_line(report),
        f"Rare classes: {', '.join(report.classes[c] for c in report.rare) or 'none'} ({report.rare_rule}).",
    ]
    if plan.controlled:
        kept = ", ".join(f"{plan.classes[c]}={n}" for c, n in plan.controlled.items())
        items.append(
            f"Controlled imbalance: kept {kept} training images, chosen by patient (seed {cfg.imbalance_seed})."
        )
    return [Heading(2, "How it was measured"), Bullets(items)]


def _budget_words(report: BenchmarkReport) -> str:
    cfg, plan = report.plan.cfg, report.plan
    if cfg.steps:
        return "set with option steps"
    largest = max(plan.arm_sizes.values(), default=0)
    return f"{cfg.epochs} passes over the largest arm's {largest} training images"


def _no_interval_caption(report: BenchmarkReport) -> str:
    shared = shared_reason(report)
    return f"No intervals: {shared}." if shared else ""


def _table(title: str, header: list[str], rows: list[list[Cell]]) -> ReportTable:
    """A page-only table: its columns are named by ``header``."""
    return ReportTable(title, [TableColumn(h) for h in header], rows)


def _blocks(t: ReportTable, caption: str = "") -> list[Block]:
    """The table under its title as a level-2 heading."""
    return [Heading(2, t.title), page_block(t, caption)]


def arm_blocks(report: BenchmarkReport) -> list[Block]:
    conf, k = f"{report.plan.cfg.confidence:.0%}", len(report.seeds)
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
        steps = sorted(set(report.runs.loc[report.runs["arm"] == arm.name, "steps"])) if len(report.runs) else []
        rows.append(
            cells(arm.name, arm.describe(), str(real), f"{synth}" + (f" ({per})" if per else ""),
                  "/".join(map(str, steps)) or "-", f"{secs.mean:.1f}s")
        )  # fmt: skip
    arms = _table("Arms and their training sets",
                  ["arm", "what", "real images", "added images", "steps", "time per run"], rows)  # fmt: skip
    header = ["arm", *(RUN_LABELS[m] for m in RUN_METRICS), "macro AUROC: training noise only"]
    rows = [
        [Cell(arm.name), *(stat_cell(report.arm_summary[arm.name][m]) for m in RUN_METRICS),
         Cell(report.arm_summary[arm.name]["macro_auroc"].noise_text())]
        for arm in report.arms
    ]  # fmt: skip
    title = f"Test results (test n={report.n_test_images} images; mean [{conf} bootstrap interval], n={k} seeds)"
    results = _table(title, header, rows)
    out: list[Block] = [*_blocks(arms), *_blocks(results, (_no_interval_caption(report) + " " + DAGGER).strip())]
    if report.reference:

        def diff_cell(arm: str, m: str) -> Cell:
            if m.startswith("rare_") and not report.changes_rare(arm):
                return Cell(NOT_CHANGED)
            return stat_cell(report.arm_diff[arm][m], signed=True)

        rows = [
            [Cell(arm.name), *(diff_cell(arm.name, m) for m in RUN_METRICS),
             Cell(report.arm_diff[arm.name]["rare_auroc"].noise_text() if report.changes_rare(arm.name) else "")]
            for arm in report.arms
            if arm.name != report.reference
        ]  # fmt: skip
        header = ["arm", *(f"Δ {RUN_LABELS[m]}" for m in RUN_METRICS), "Δ rare AUROC: training noise only"]
        title = f"Exploratory: paired differences from {report.reference} (same test patients and seeds)"
        out += _blocks(_table(title, header, rows), DAGGER)
    return out


def _mde_text(d: Stat) -> str:
    return "-" if d.mde is None or math.isnan(d.mde) else f"{d.mde:.3f}"


def _p_text(d: Stat) -> str:
    if d.p is None:
        return "-"
    return f"{format_p(d.p)} / {format_p(d.p_adjusted)}"


def _verdict_cell(verdict: str, d: Stat) -> str:
    if d.reason:  # the reason is said once, above the table or in the caption
        return "no verdict"
    return f"**{comparison_word(verdict)}**" if verdict in (HELPED, HURT) else verdict


def rare_blocks(report: BenchmarkReport) -> list[Block]:
    out: list[Block] = [Heading(2, "Rare classes in detail (exploratory)")]
    header = ["arm", "AUROC", "recall †", "precision †", "F1 †", "Δ AUROC", "Δ AUROC: training noise only",
              "detectable Δ AUROC", "raw p", "Δ F1 †"]  # fmt: skip
    ref = report.reference
    for c in report.rare:
        name = report.classes[c]
        train = images(int(report.train_counts[c]), "real training")
        test = f"{images(report.n_test(name), 'test')} of {patients(report.class_patients.get(name, 0))}"
        out.append(Heading(3, f"{name} ({train}, {test})"))
        if reason := class_reason(report, name):
            out.append(Para(f"No intervals and no verdicts for {name}: {reason}.", css="note"))
        rows = []
        for arm in report.arms:
            s = report.class_summary[(arm.name, name)]
            row = [Cell(arm.name), *(stat_cell(s[m]) for m in ("auroc", "recall", "precision", "f1"))]
            if ref and arm.name != ref and not arm.changes_class(c):
                row += cells(NOT_CHANGED, "", "", "", "")
            elif ref and arm.name != ref:
                d = report.class_diff[(arm.name, name)]
                row += [stat_cell(d["auroc"], signed=True),
                        *cells(d["auroc"].noise_text(), _mde_text(d["auroc"]), format_p(d["auroc"].p)),
                        stat_cell(d["f1"], signed=True)]  # fmt: skip
            else:
                row += cells("", "", "", "", "")
            rows.append(row)
        caption = f"Δ: paired difference from {ref}, exploratory (no verdict). {DAGGER}" if ref else DAGGER
        out.append(page_block(_table(name, header, rows), caption))
    return out


def class_auroc_blocks(report: BenchmarkReport) -> list[Block]:
    conf, k = f"{report.plan.cfg.confidence:.0%}", len(report.seeds)
    rows, why = [], []
    for name in report.classes:
        rows.append(
            [
                *cells(name, str(report.n_test(name))),
                *(stat_cell(report.class_summary[(a.name, name)]["auroc"]) for a in report.arms),
            ]
        )
        if class_reason(report, name):
            why.append(f"{name} ({report.class_patients.get(name, 0)})")
    caption = _no_interval_caption(report)
    if why:
        min_n = report.plan.cfg.min_test_patients
        caption += (" " if caption else "") + (f"No interval, fewer than {min_n} test patients: {', '.join(why)}.")
    title = f"Per-class test AUROC (mean [{conf} bootstrap interval], n={k} seeds)"
    return _blocks(_table(title, ["class", "test n", *(a.name for a in report.arms)], rows), caption)


def caveats(report: BenchmarkReport) -> list[str]:
    notes = list(report.notes)
    meta = report.plan.data.meta
    if not meta.get("real_data", True):
        notes.append("this dataset is NOT real data: the numbers test the pipeline, not a medical question")
    if len(report.seeds) < MIN_SEEDS:
        notes.append(f"only {len(report.seeds)} seed(s): no intervals and no verdicts; run {MIN_SEEDS} or more")
    elif len(report.seeds) < 5:
        notes.append(f"only {len(report.seeds)} seeds: the seed part of the intervals is rough; 5 or more are advised")
    compared = [c.diff for c in report.primary if c.diff.has_interval]
    noisy = [d for d in compared if d.t_high - d.t_low > d.high - d.low]
    if noisy:  # a resample of a few seeds understates their spread; the t interval does not
        notes.append(
            f"in {len(noisy)} of {len(compared)} primary comparisons the seeds disagree more than the "
            f"bootstrap interval allows for (training noise ± wider than half the interval): with "
            f"{len(report.seeds)} seeds the bootstrap understates training noise; run more seeds before relying "
            "on those verdicts"
        )
    notes += replicate_notes(report)
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


def summary_blocks(report: BenchmarkReport, grids: list[str]) -> list[Block]:
    """The whole page; ``grids`` are the synthetic sample grids written beside it."""
    blocks: list[Block] = []
    meta = report.plan.data.meta
    if not meta.get("real_data", True):
        blocks.append(Para(f"**{meta.get('note') or 'NOT REAL DATA'}**"))
    blocks += answer_blocks(report)
    blocks += question_blocks(report)
    blocks += setup_blocks(report)
    blocks += arm_blocks(report)
    blocks += rare_blocks(report)
    blocks += class_auroc_blocks(report)
    if report.plan.cfg.plots and len(report.runs):
        blocks.append(Heading(2, "Figures"))
        blocks += [Image(f, what) for f, what in PLOTS.items()]
        blocks += [Image(g, "synthetic images used") for g in grids]
    blocks += [Heading(2, "Notes"), Bullets(caveats(report))]
    blocks.append(
        Para(
            "Files: results.csv (arm x seed x class), runs.csv (arm x seed, with its optimiser steps), verdicts.csv "
            "(the primary comparisons with their verdicts, and the exploratory ones, each row saying its family), results.json, runs/ (per-run records with their test predictions), "
            "summary.html (this page with its figures inside). `cxraug benchmark --report-only DIR` rebuilds it "
            "from them."
        )
    )
    return blocks


def replicate_notes(report: BenchmarkReport) -> list[str]:
    """Whether each synthetic arm's intervals include its generator's training randomness: with
    replicates (--synthetic NAME=DIR1,DIR2,...) they do; with one set they cover one trained
    generator only."""
    plan = report.plan
    names = sorted({a.synthetic for a in report.arms if a.synthetic is not None})
    one = [n for n in names if plan.n_replicates(n) == 1]
    several = [n for n in names if plan.n_replicates(n) > 1]
    out = []
    if several:
        out.append(
            "the intervals of "
            + ", ".join(f"{n} ({plan.n_replicates(n)} generator replicates)" for n in several)
            + " cover generator replicates (each classifier seed trained with one in turn; resampled first), "
            "classifier seeds and test patients"
            + (f"; with {min(plan.n_replicates(n) for n in several)} replicates the generator spread is rough" if
               min(plan.n_replicates(n) for n in several) < 5 else "")
        )  # fmt: skip
    if one:
        out.append(
            f"the intervals of {', '.join(one)} cover test patients and classifier seeds of one trained generator only: "
            "another training run of the same generator could land elsewhere; give replicates "
            "(--synthetic NAME=DIR1,DIR2,DIR3 from `cxraug train-gen --seeds 0,1,2`) to include it"
        )
    return out
