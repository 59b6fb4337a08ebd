"""``cxraug benchmark``: train the shared classifier under several arms and seeds, report."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table

from cxraug.benchmark.statistics import ADJUSTMENT_NAMES, MIN_SEEDS, PRIOR_DEPENDENT
from cxraug.commands.benchmark_options import (
    ArmsOption,
    BenchmarkOptions,
    ConfigOption,
    ControlledImbalanceOption,
    ControlsOption,
    DataOption,
    ExportReducedOption,
    ForceOption,
    OutOption,
    OverwriteOption,
    PlanOption,
    RatiosOption,
    ReportOnlyOption,
    SeedsOption,
    SetsOption,
    SpreadOption,
    SyntheticOption,
    cli_options,
)
from cxraug.commands.benchmark_options import epilog as epilog  # cli.py gives it to the command
from cxraug.commands.common import (
    err_console,
    out_console,
    rich_line,
    rich_table,
    sayer,
    user_errors,
    warner,
)
from cxraug.errors import UserError
from cxraug.lock import output_lock
from cxraug.significance import format_p
from cxraug.tables import Cell, ReportTable, TableColumn, cells

if TYPE_CHECKING:
    from cxraug.benchmark.aggregate import BenchmarkReport


def _no_interval_note(report: BenchmarkReport) -> str:
    k = len(report.seeds)
    return f"No intervals: {k} seed(s), {MIN_SEEDS} needed." if k < MIN_SEEDS else ""


def results_table(report: BenchmarkReport, console: Console) -> Table:
    from cxraug.benchmark.aggregate import NOT_CHANGED
    from cxraug.benchmark.answer import stat_cell

    conf = f"{report.plan.cfg.confidence:.0%}"
    k = len(report.seeds)
    title = (
        f"benchmark on {report.plan.data.name}: test split, n={report.n_test_images} images "
        f"({report.n_test_patients} patients), {k} seeds; mean and {conf} bootstrap interval"
    )
    caption = (
        f"rare: {', '.join(report.classes[c] for c in report.rare) or 'none'} ({report.rare_rule}). "
        f"{report.plan.steps} steps of batch {report.plan.cfg.batch_size} for every arm. † {PRIOR_DEPENDENT}. "
        + _no_interval_note(report)
    )
    metrics = {"macro_auroc": ("macro AUROC", 0), "rare_auroc": ("rare AUROC", 1), "macro_f1": ("macro F1 †", 4),
               "balanced_accuracy": ("bal. acc. †", 5)}  # fmt: skip
    t = ReportTable(title, [TableColumn("arm", align="left", number=False), TableColumn("seeds")])
    t.columns += [TableColumn(label, drop=drop) for label, drop in metrics.values()]
    t.columns.append(TableColumn("macro AUROC\ntraining noise\nonly (t)", drop=3))
    if report.reference:
        t.columns.append(TableColumn(f"Δ rare AUROC\nvs {report.reference}", drop=2))
    for arm in report.arms:
        s = report.arm_summary[arm.name]
        row = [*cells(arm.name, str(s["macro_auroc"].n)), *(stat_cell(s[m]) for m in metrics)]
        row += cells(s["macro_auroc"].noise_text())
        if report.reference:
            d = report.arm_diff[arm.name]["rare_auroc"]
            if arm.name == report.reference:
                row.append(Cell(""))
            else:  # an arm that adds no image of a rare class has no rare difference to report
                row.append(stat_cell(d, signed=True) if report.changes_rare(arm.name) else Cell(NOT_CHANGED))
        t.rows.append(row)
    return rich_table(t, console, caption=caption.strip(), full_in="summary.md", sections=[], interval_style="dim")


def verdict_table(report: BenchmarkReport, console: Console) -> Table | None:
    """The primary comparisons: each synthetic arm vs its copy control and the best baseline."""
    if not report.primary:
        return None
    from cxraug.benchmark.answer import no_verdicts_reason, stat_cell
    from cxraug.benchmark.primary import comparison_word

    cfg = report.plan.cfg
    why = no_verdicts_reason(report)
    verdicts = (
        f"no verdicts ({why})"
        if why
        else f"{ADJUSTMENT_NAMES[cfg.adjust]}-adjusted over the m = {report.family_size} primary comparisons declared "
        "before training"
    )
    title = f"the question: test AUROC of each synthetic arm vs its copy control and the best baseline; {verdicts}"
    if report.post_hoc:
        title = "POST HOC (the question changed after the test results were seen): " + title
    t = ReportTable(title, [
        TableColumn("class\n(test patients)", align="left", number=False), TableColumn("arm", align="left", number=False),
        TableColumn("against", align="left", number=False), TableColumn("Δ AUROC"),
        TableColumn("adjusted\np", drop=1), TableColumn("training\nnoise only", drop=2),
        TableColumn("verdict", align="left", number=False)])  # fmt: skip
    style = {"helped": "green", "hurt": "red"}
    for c in report.primary:
        d = c.diff
        word = comparison_word(c.verdict)
        t.rows.append(
            [
                *cells(f"{c.class_name} ({report.class_patients.get(c.class_name, 0)})", c.arm, c.other or "-"),
                stat_cell(d, signed=True),
                *cells(format_p(d.p_adjusted), d.noise_text()),
                Cell("no verdict") if why else Cell(word, style=style.get(c.verdict, "")),
            ]
        )
    answers = "; ".join(f"{arm} on {cls}: {v}" for (cls, arm), v in report.answers.items())
    caption = f"answer: {answers}. Exploratory differences: verdicts.csv. " + _no_interval_note(report)
    return rich_table(t, console, caption=caption.strip(), full_in="summary.md", sections=[], interval_style="dim")


def benchmark(
    data: DataOption = None,
    synthetic: SyntheticOption = None,
    arms: ArmsOption = None,
    controls: ControlsOption = None,
    seeds: SeedsOption = None,
    ratios: RatiosOption = None,
    out: OutOption = None,
    config: ConfigOption = None,
    sets: SetsOption = None,
    controlled_imbalance: ControlledImbalanceOption = None,
    overwrite: OverwriteOption = False,
    export_reduced: ExportReducedOption = None,
    report_only: ReportOnlyOption = None,
    spread: SpreadOption = None,
    plan: PlanOption = False,
    force: ForceOption = False,
) -> None:
    """Train one classifier under several arms and seeds; report whether synthetic data helps.
    The plan is printed first."""
    opts = BenchmarkOptions(
        data=data,
        synthetic=synthetic,
        arms=arms,
        controls=controls,
        seeds=seeds,
        ratios=ratios,
        out=out,
        config=config,
        sets=sets,
        controlled_imbalance=controlled_imbalance,
        overwrite=overwrite,
        export_reduced=export_reduced,
        report_only=report_only,
        spread=spread,
        plan=plan,
        force=force,
    )
    if opts.report_only is not None:
        _report_only(opts)
        return
    _benchmark(opts)


@user_errors
def _report_only(opts: BenchmarkOptions) -> None:
    others = [opts.synthetic, opts.arms, opts.seeds, opts.ratios, opts.out, opts.controlled_imbalance, opts.spread,
              opts.controls is not None, opts.plan, opts.force]  # fmt: skip
    if any(o for o in others):
        raise UserError(
            "--report-only takes only --data, --config and --set (reporting options); "
            "the arms, seeds, ratios and synthetic sets are the stored ones"
        )
    from cxraug.benchmark.reportonly import report_only
    from cxraug.progress import RichReporter

    folder = opts.report_only
    assert folder is not None
    with output_lock(folder, "benchmark folder"):  # it rewrites the folder's tables and plots
        report = report_only(folder, opts.sets, opts.config, opts.data, reporter=RichReporter(err_console()))
    print_report(report, folder, out_console())


def print_report(report: BenchmarkReport, out: Path, console: Console) -> None:
    console.print(results_table(report, console))
    vt = verdict_table(report, console)
    if vt is not None:
        console.print(vt)
    for note in report.notes:
        console.print(rich_line(("note:", "yellow"), f" {note}"))
    console.print(
        f"{report.trained} runs trained, {report.reused} reused; report: {out / 'summary.md'}, {out / 'summary.html'}"
    )


@user_errors
def _benchmark(opts: BenchmarkOptions) -> None:
    from cxraug.benchmark.config import build_config
    from cxraug.benchmark.spread import check_spread

    if opts.spread is not None and opts.export_reduced is not None:
        raise UserError("--spread says how processes share training runs; --export-reduced trains nothing: drop one")
    mode = opts.spread or "auto"
    check_spread(mode)
    data = opts.data
    if data is None:
        raise UserError("--data DIR is needed: a prepared dataset (from `cxraug prepare`)")
    cfg = build_config(opts.config, cli_options(opts), opts.sets)
    if opts.plan and opts.export_reduced is not None:
        raise UserError("--plan prints what a benchmark would train; --export-reduced trains nothing: drop one")
    if opts.force and opts.export_reduced is not None:  # silently ignored until now
        raise UserError("--force trains past an unreachable verdict; --export-reduced trains nothing: drop one")
    if opts.export_reduced is not None:
        from cxraug.benchmark.reduced import export_reduced as write_reduced_set
        from cxraug.data.prepared import open_prepared

        written = open_prepared(write_reduced_set(data, cfg, opts.export_reduced, opts.overwrite))
        counts = ", ".join(f"{c} {n}" for c, n in written.counts("train").items())
        out_console().print(
            f"wrote {written.root}: train {counts} (val and test as in {data}); "
            f"train a generator on it with `cxraug train-gen --data {written.root}`"
        )
        return
    from cxraug import api
    from cxraug.progress import RichReporter

    main = int(os.environ.get("RANK", "0")) == 0  # under `accelerate launch` only rank 0 draws and prints
    reporter = RichReporter(err_console(), disable=not main)  # progress on stderr: stdout stays the report
    done = api.benchmark(
        data,
        cfg,
        out=opts.out,
        overwrite=opts.overwrite,
        reporter=reporter,
        spread=mode,
        warn=warner() if main else lambda _: None,
        plan_only=opts.plan,
        force=opts.force,
        say=sayer() if main else None,
    )
    if done.report is not None:  # the main process's
        print_report(done.report, done.out, out_console())
