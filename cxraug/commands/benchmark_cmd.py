"""``cxraug benchmark``: train the shared classifier under several arms and seeds, report."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from cxraug.benchmark.statistics import ADJUSTMENT_NAMES, MIN_SEEDS, PRIOR_DEPENDENT
from cxraug.commands.common import (
    err_console,
    out_console,
    parse_list,
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


def parse_pairs(items: list[str] | None, option: str, example: str) -> dict[str, str]:
    """``NAME=VALUE`` items -> dict; a malformed or repeated name is a user error."""
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip() or not value.strip():
            raise UserError(f"{option} {item!r} is not NAME=VALUE; e.g. {option} {example}")
        if name.strip() in out:
            raise UserError(f"{option} names {name.strip()!r} twice")
        out[name.strip()] = value.strip()
    return out


def parse_seeds(text: str | None) -> int | list[int] | None:
    """``3`` -> three seeds 0, 1, 2; ``0,5,9`` -> those seeds."""
    if text is None:
        return None
    try:
        if "," in text:
            return [int(s) for s in text.split(",") if s.strip()]
        return int(text)
    except ValueError:
        raise UserError(f"--seeds {text!r}: give a count (e.g. 5) or a list (e.g. 0,1,2)") from None


def cli_options(
    synthetic: list[str] | None,
    arms: str | None,
    seeds: str | None,
    ratio: str | None,
    controlled_imbalance: list[str] | None,
) -> dict[str, Any]:
    counts: dict[str, int] = {}
    for name, n in parse_pairs(controlled_imbalance, "--controlled-imbalance", '"No Finding=50"').items():
        if not n.isdigit() or int(n) < 1:
            raise UserError(f"--controlled-imbalance {name}={n}: N must be a whole number of images, at least 1")
        counts[name] = int(n)
    syn = dict(parse_pairs(synthetic, "--synthetic", "cgan=runs/00001-cgan/synth/x"))  # DIR1,DIR2: replicates
    return {
        "synthetic": syn or None,
        "arms": parse_list(arms),
        "seeds": parse_seeds(seeds),
        "ratios": parse_list(ratio),
        "controlled_imbalance": counts or None,
    }


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


TRAINING_KEYS = ("model", "epochs", "batch_size", "lr", "weight_decay", "rare_threshold", "min_test_patients")


def _default(key: str) -> str:
    """A BenchmarkConfig default as the help shows it (lists comma-separated)."""
    from cxraug.benchmark.config import BenchmarkConfig

    field = BenchmarkConfig.model_fields[key]
    value = field.get_default(call_default_factory=True)
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)


def epilog() -> str:
    """The training and reporting defaults that --set changes, computed from BenchmarkConfig."""
    keys = ", ".join(f"{k}={_default(k)}" for k in TRAINING_KEYS)
    return f"Defaults of --set (every key: docs/benchmark.md): {keys}."


def benchmark(
    data: Annotated[
        Optional[Path],
        typer.Option(
            help="Prepared dataset (from `cxraug prepare`). Required, except with --report-only (the stored one)."
        ),
    ] = None,
    synthetic: Annotated[
        Optional[list[str]],
        typer.Option(
            metavar="NAME=DIR[,DIR...]",
            help="A synthetic set from `cxraug synth` (repeatable); several, comma-separated: one per generator "
            "replicate (runs trained with other seeds).",
        ),
    ] = None,
    arms: Annotated[
        Optional[str],
        typer.Option(
            help="Comma-separated arms: real, reweight, oversample, classic, logit-adjust, NAME, NAME@RATIO, "
            "NAME+classic, NAME-only (copy and noise controls are added for every synthetic arm).",
            show_default="the five baselines, NAME and NAME+classic",
        ),
    ] = None,
    controls: Annotated[
        Optional[bool],
        typer.Option(
            "--controls/--no-controls",
            help="Add the copy and noise controls beside every synthetic arm.",
            show_default="--controls",
        ),
    ] = None,
    seeds: Annotated[
        Optional[str],
        typer.Option(help="Number of seeds (e.g. 5), or a list (e.g. 0,1,2).", show_default=_default("seeds")),
    ] = None,
    ratio: Annotated[
        Optional[str],
        typer.Option(
            help="Synthetic ratios, comma-separated: all (every image of the set), fill, xK, +N.",
            show_default=_default("ratios"),
        ),
    ] = None,
    out: Annotated[Optional[Path], typer.Option(help="Output folder.", show_default="runs/benchmark-DATA")] = None,
    config: Annotated[Optional[Path], typer.Option(help="YAML file of options (see docs/benchmark.md).")] = None,
    set_: Annotated[
        Optional[list[str]],
        typer.Option("--set", metavar="KEY=VALUE", help="An option, e.g. epochs=20 or model=densenet121 (repeatable)."),
    ] = None,
    controlled_imbalance: Annotated[
        Optional[list[str]],
        typer.Option(metavar="CLASS=N", help="Keep N training images of CLASS, chosen by patient (repeatable)."),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Delete earlier runs in --out and start again.")
    ] = False,
    export_reduced: Annotated[
        Optional[Path],
        typer.Option(
            help="Only write the --controlled-imbalance training set (same val/test) as a prepared "
            "dataset here, to train a generator on, and exit."
        ),
    ] = None,
    report_only: Annotated[
        Optional[Path],
        typer.Option(
            metavar="DIR",
            help="Rebuild every table, plot and verdict of a benchmark folder from its stored predictions "
            "(reporting options may change with --set; nothing is trained).",
        ),
    ] = None,
    spread: Annotated[
        Optional[str],
        typer.Option(
            metavar="auto|runs|ddp",
            help="Under `accelerate launch` / torchrun: runs = each process trains whole arm x seed runs "
            "on its own device; ddp = every run on all processes; auto = runs unless there are "
            "fewer runs than processes.",
            show_default="auto",
        ),
    ] = None,
    plan: Annotated[
        bool,
        typer.Option(
            "--plan",
            help="Print the plan (rare classes, reachable verdicts, runs, estimated time) and exit; "
            "nothing is trained or written.",
        ),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Train even when the plan says no verdict is reachable (else: exit 2 before training)."
        ),
    ] = False,
) -> None:
    """Train one classifier under several arms and seeds; report whether synthetic data helps.
    The plan is printed first."""
    if report_only is not None:
        others = [synthetic, arms, seeds, ratio, out, controlled_imbalance, spread, controls is not None, plan, force]
        _report_only(report_only, data, config, set_, others)
        return
    _benchmark(
        data, synthetic, arms, seeds, ratio, out, config, set_, controlled_imbalance, overwrite, export_reduced, spread,
        controls, plan, force,
    )  # fmt: skip


@user_errors
def _report_only(folder: Path, data: Path | None, config: Path | None, sets: list[str] | None, others: list) -> None:
    if any(o for o in others):
        raise UserError(
            "--report-only takes only --data, --config and --set (reporting options); "
            "the arms, seeds, ratios and synthetic sets are the stored ones"
        )
    from cxraug.benchmark.runner import report_only
    from cxraug.progress import RichReporter

    with output_lock(folder, "benchmark folder"):  # it rewrites the folder's tables and plots
        report = report_only(folder, sets, config, data, reporter=RichReporter(err_console()))
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
def _benchmark(
    data: Path | None,
    synthetic: list[str] | None,
    arms: str | None,
    seeds: str | None,
    ratio: str | None,
    out: Path | None,
    config: Path | None,
    sets: list[str] | None,
    controlled_imbalance: list[str] | None,
    overwrite: bool,
    export_reduced: Path | None = None,
    spread: str | None = None,
    controls: bool | None = None,
    plan: bool = False,
    force: bool = False,
) -> None:
    from cxraug.benchmark.config import build_config
    from cxraug.benchmark.spread import check_spread

    if spread is not None and export_reduced is not None:
        raise UserError("--spread says how processes share training runs; --export-reduced trains nothing: drop one")
    mode = spread or "auto"
    check_spread(mode)
    if data is None:
        raise UserError("--data DIR is needed: a prepared dataset (from `cxraug prepare`)")
    options = cli_options(synthetic, arms, seeds, ratio, controlled_imbalance) | {"controls": controls}
    cfg = build_config(config, options, sets)
    if plan and export_reduced is not None:
        raise UserError("--plan prints what a benchmark would train; --export-reduced trains nothing: drop one")
    if force and export_reduced is not None:  # silently ignored until now
        raise UserError("--force trains past an unreachable verdict; --export-reduced trains nothing: drop one")
    if export_reduced is not None:
        from cxraug.benchmark import runner
        from cxraug.data.prepared import open_prepared

        written = open_prepared(runner.export_reduced(data, cfg, export_reduced, overwrite))
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
        out=out,
        overwrite=overwrite,
        reporter=reporter,
        spread=mode,
        warn=warner() if main else lambda _: None,
        plan_only=plan,
        force=force,
        say=sayer() if main else None,
    )
    if done.report is not None:  # the main process's
        print_report(done.report, done.out, out_console())
