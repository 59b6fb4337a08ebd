"""``cxraug compare``: generator runs side by side on the same real images, with cost."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from cxraug.commands.common import (
    CLASSES_HELP,
    err_console,
    out_console,
    rich_line,
    rich_table,
    sayer,
    styled,
    user_errors,
)
from cxraug.commands.options import (
    AsJson,
    BatchSize,
    CacheDir,
    CompareSplit,
    Device,
    InceptionWeights,
    KidSubsets,
    Memorization,
    Metrics,
    MinImages,
    Overwrite,
    ReferenceEpochs,
    ReferenceModel,
    ScoreOptions,
    UseCache,
)
from cxraug.metrics.reference import ReferenceConfig

if TYPE_CHECKING:
    from cxraug.compare.core import CompareResult


def compare(
    runs: Annotated[
        list[str],
        typer.Argument(
            help="Run directories to compare (two or more), or arms of replicated runs: NAME=RUN1,RUN2,... "
            "(the same method trained with other seeds; NAME optional).",
            metavar="RUN|NAME=RUN1,RUN2...",
        ),
    ],
    data: Annotated[
        Optional[Path],
        typer.Option(help="Prepared dataset to compare on.", show_default="the one the runs were trained on"),
    ] = None,
    split: CompareSplit = "val",
    n: Annotated[int, typer.Option("--n", "-n", help="Synthetic images per class and run.")] = 1000,
    classes: Annotated[
        Optional[str], typer.Option("--classes", "--class", help=CLASSES_HELP, show_default="every class in common")
    ] = None,
    metrics: Metrics = None,
    reference_model: ReferenceModel = ReferenceConfig.model,
    reference_epochs: ReferenceEpochs = ReferenceConfig.epochs,
    memorization: Memorization = True,
    benchmark: Annotated[
        Optional[Path], typer.Option(help="A `cxraug benchmark` folder: per-class deltas of the arms from these runs.")
    ] = None,
    bootstrap: Annotated[
        int, typer.Option(help="Bootstrap resamples of real patients and synthetic images (0: no intervals).")
    ] = 1000,
    confidence: Annotated[float, typer.Option(help="Interval level.")] = 0.95,
    allow_different_data: Annotated[
        bool,
        typer.Option(
            "--allow-different-data", help="Compare runs trained on different datasets, on the one --data names."
        ),
    ] = False,
    as_json: AsJson = False,
    batch_size: BatchSize = 64,
    speed_images: Annotated[int, typer.Option(help="Images timed for sampling img/s (after a warm-up batch).")] = 128,
    grid: Annotated[int, typer.Option(help="Samples per run in each class's side-by-side image.")] = 8,
    device: Device = "auto",
    inception_weights: InceptionWeights = None,
    seed: Annotated[int, typer.Option(help="Seed of the generator noise, KID subsets and the bootstrap.")] = 0,
    min_images: MinImages = 20,
    kid_subsets: KidSubsets = 100,
    cache_dir: CacheDir = None,
    cache: UseCache = True,
    out: Annotated[
        Optional[Path], typer.Option(help="Output folder.", show_default="the first run's parent/compare/SPLIT-TIME")
    ] = None,
    overwrite: Overwrite = False,
    set_: Annotated[
        Optional[list[str]],
        typer.Option(
            "--set",
            help="Sampling option key=value, applied to every run whose plugin has it (e.g. guidance=2).",
        ),
    ] = None,
    plan: Annotated[
        bool,
        typer.Option(
            "--plan", help="Print the images to draw and extract and the estimated time, and exit; nothing is written."
        ),
    ] = False,
) -> None:
    """Compare generator runs on the same real images, n, noise seed and network, with what each cost.
    The plan is printed first."""
    scoring = ScoreOptions(
        split=split, n=n, classes=classes, metrics=metrics, reference_model=reference_model,
        reference_epochs=reference_epochs, memorization=memorization, batch_size=batch_size, seed=seed,
        min_images=min_images, kid_subsets=kid_subsets, cache_dir=cache_dir, cache=cache,
    )  # fmt: skip
    _compare(
        CompareArgs(scoring=scoring, runs=list(runs), data=data, benchmark=benchmark, bootstrap=bootstrap,
                    confidence=confidence, allow_different_data=allow_different_data, as_json=as_json,
                    speed_images=speed_images, grid=grid, device=device, inception_weights=inception_weights,
                    out=out, overwrite=overwrite, sets=set_ or [], plan=plan)
    )  # fmt: skip


@dataclass(frozen=True)
class CompareArgs:
    """`cxraug compare`'s options, as typed."""

    scoring: ScoreOptions
    runs: list[str]  # RUN, or [NAME=]RUN1,RUN2,...
    data: Path | None
    benchmark: Path | None
    bootstrap: int
    confidence: float
    allow_different_data: bool
    as_json: bool
    speed_images: int
    grid: int
    device: str
    inception_weights: Path | None
    out: Path | None
    overwrite: bool
    sets: list[str]
    plan: bool = False


@user_errors
def _compare(args: CompareArgs) -> None:
    from cxraug import api
    from cxraug.compare.report import lead_line, verdict_lines
    from cxraug.progress import RichReporter

    console = out_console()
    compared = api.compare(
        args.runs, args.scoring.config(), data=args.data, benchmark=args.benchmark, bootstrap=args.bootstrap,
        confidence=args.confidence, allow_different_data=args.allow_different_data, speed_images=args.speed_images,
        grid=args.grid, device=args.device, inception_weights=args.inception_weights, out=args.out,
        overwrite=args.overwrite, sample_options=args.sets,
        reporter=RichReporter(err_console()),  # stderr: under --json, stdout stays one JSON object
        plan_only=args.plan, say=sayer(err_console() if args.as_json and not args.plan else console),
    )  # fmt: skip
    result, out = compared.result, compared.out
    if result is None or out is None:  # --plan: printed, nothing else done
        return
    if args.as_json:
        print(json.dumps({**result.to_json(), "outputs": str(out)}, default=str))
        return
    for t in (cost_table(result, console), quality_table(result, console)):
        console.print(t)
    if result.context.get("warning"):
        console.print(styled(result.context["warning"], "bold yellow"))
    console.print(lead_line(result), markup=False)
    for line in verdict_lines(result):
        console.print(line, markup=False)
    for line in result.context.get("notes") or []:
        console.print(line, markup=False)
    console.print(f"wrote {out} (compare.md, compare.html, compare.json, compare.csv, images)", markup=False)


def cost_table(result: CompareResult, console: Console) -> Table:
    from cxraug.compare import report

    caption = (
        f"sampling on {result.runs[0]['sampling']['device']}; peak = {result.runs[0]['sampling']['memory_measure']}"
    )
    return rich_table(report.cost_table(result), console, "cxraug compare: cost", caption, "compare.md", sections=[])


def quality_table(result: CompareResult, console: Console) -> Table:
    from cxraug.compare import report

    ctx = result.context
    conf = ctx["bootstrap"]["confidence"]
    caption = (
        f"split {ctx['split']}, {ctx['size']}px, {ctx['n_per_class']} synthetic images/class/run (seed {ctx['seed']}); "
        f"[{conf:.0%} bootstrap interval], {ctx['bootstrap']['resamples']} resamples; "
        f"{ctx['extractor']} weights sha256 {str(ctx['weights_sha256'])[:12]}."
    )
    if not ctx["data"]["real_data"]:
        caption = rich_line(("dataset is NOT real data", "bold yellow"), "\n", caption)
    title = f"cxraug compare: {ctx['data']['name']} ({ctx['split']})"
    return rich_table(report.quality_table(result), console, title, caption, "compare.csv")
