"""``cxraug score``: FID/KID (+ precision/recall, density/coverage, memorization, and with the
reference classifier label fidelity and FD in chest-X-ray features) per class."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from cxraug.commands.common import (
    CLASSES_HELP,
    err_console,
    out_console,
    rich_line,
    rich_table,
    sayer,
    styled,
    user_errors,
    warner,
)
from cxraug.commands.options import (
    AsJson,
    BatchSize,
    CacheDir,
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
    Split,
    UseCache,
)
from cxraug.metric_names import split_label
from cxraug.metrics import registry
from cxraug.metrics.reference import ReferenceConfig
from cxraug.metrics.scoring import OVERALL
from cxraug.tables import Cell, ReportTable, TableColumn, cells

if TYPE_CHECKING:
    from cxraug.metrics.score import ScoreResult


def score(
    run: Annotated[Optional[Path], typer.Option(help="Run directory: sample its exported generator.")] = None,
    images: Annotated[
        Optional[Path], typer.Option(help="A synthetic set written by `cxraug synth` (instead of --run).")
    ] = None,
    data: Annotated[
        Optional[Path], typer.Option(help="Prepared dataset.", show_default="the one the generator was trained on")
    ] = None,
    split: Split = "val",
    n: Annotated[
        int, typer.Option("--n", "-n", help="Synthetic images per class (a warning says when it will take long).")
    ] = 1000,
    classes: Annotated[
        Optional[str],
        typer.Option("--classes", "--class", help=CLASSES_HELP, show_default="every class both sides have"),
    ] = None,
    metrics: Metrics = None,
    reference_model: ReferenceModel = ReferenceConfig.model,
    reference_epochs: ReferenceEpochs = ReferenceConfig.epochs,
    memorization: Memorization = True,
    as_json: AsJson = False,
    batch_size: BatchSize = 64,
    device: Device = "auto",
    inception_weights: InceptionWeights = None,
    seed: Annotated[int, typer.Option(help="Seed of the generator noise and of KID's subsets.")] = 0,
    min_images: MinImages = 20,
    kid_subsets: KidSubsets = 100,
    cache_dir: CacheDir = None,
    cache: UseCache = True,
    set_: Annotated[
        Optional[list[str]], typer.Option("--set", help="Sampling option key=value (plugin-specific).")
    ] = None,
    out: Annotated[
        Optional[Path], typer.Option(help="Output folder.", show_default="RUN/scores/SPLIT-stepS-TIME")
    ] = None,
    overwrite: Overwrite = False,
    allow_different_data: Annotated[
        bool,
        typer.Option(
            "--allow-different-data", help="Score on a --data other than the one the generator was trained on."
        ),
    ] = False,
    plan: Annotated[
        bool,
        typer.Option(
            "--plan", help="Print the images to draw and extract and the estimated time, and exit; nothing is written."
        ),
    ] = False,
) -> None:
    """Score synthetic images against real ones with the standard FID network, per class and overall.
    Give --run or --images. The plan is printed first."""
    scoring = ScoreOptions(
        split=split, n=n, classes=classes, metrics=metrics, reference_model=reference_model,
        reference_epochs=reference_epochs, memorization=memorization, batch_size=batch_size, seed=seed,
        min_images=min_images, kid_subsets=kid_subsets, cache_dir=cache_dir, cache=cache,
    )  # fmt: skip
    _score(
        ScoreArgs(scoring=scoring, run=run, images=images, data=data, as_json=as_json, device=device,
                  inception_weights=inception_weights, sets=set_ or [], out=out, overwrite=overwrite,
                  allow_different_data=allow_different_data, plan=plan)
    )  # fmt: skip


@dataclass(frozen=True)
class ScoreArgs:
    """`cxraug score`'s options, as typed."""

    scoring: ScoreOptions
    run: Path | None
    images: Path | None
    data: Path | None
    as_json: bool
    device: str
    inception_weights: Path | None
    sets: list[str]
    out: Path | None
    overwrite: bool
    allow_different_data: bool = False
    plan: bool = False


@user_errors
def _score(args: ScoreArgs) -> None:
    from cxraug import api
    from cxraug.progress import RichReporter

    console = out_console()
    scores = api.score(
        args.scoring.config(), run=args.run, images=args.images, data=args.data, out=args.out,
        overwrite=args.overwrite, device=args.device, inception_weights=args.inception_weights,
        sample_options=args.sets, allow_different_data=args.allow_different_data,
        reporter=RichReporter(err_console()),  # stderr: under --json, stdout stays one JSON object
        warn=warner(),
        plan_only=args.plan,
        say=sayer(err_console() if args.as_json else console),  # under --json, stdout is one JSON object
    )  # fmt: skip
    result, out = scores.result, scores.out
    if result is None or out is None:  # --plan: said, nothing else done
        if args.as_json and scores.plan is not None:
            print(json.dumps(scores.plan.to_json()))
        return
    if args.as_json:
        print(json.dumps({**result.to_json(), "outputs": str(out)}, default=str))
        return
    console.print(score_table(result, console))
    for line in notes(result, out):
        console.print(line)


def _fmt(v: Any, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def score_table(result: ScoreResult, console: Console) -> Table:
    """The scores, as wide as the terminal allows: at 80 columns the less central columns go
    (the caption names them; scores.csv has them all)."""
    ctx = result.context
    cols = ctx["metrics"]
    caption = rich_line(
        f"split {split_label(ctx['split'])}, {ctx['size']}px, up to {ctx['n_per_class']} synthetic images/class (seed {ctx['seed']}); "
        f"{ctx['extractor']} weights sha256 {str(ctx['weights_sha256'])[:12]}",
        "" if ctx.get("weights_reference") else (" (not a known reference file)", "yellow"),
        f"; real-feature cache {ctx['cache']['hits']} hit(s), {ctx['cache']['misses']} miss(es)"
        + (f", {ctx['cache']['damaged_rebuilt']} damaged and rebuilt" if ctx["cache"].get("damaged_rebuilt") else "")
        + (f", {ctx['cache']['not_stored']} not stored (cache not writable)" if ctx["cache"].get("not_stored") else "")
        + ".",
    )
    ref = ctx.get("reference")
    if ref:
        caption += (
            f" Fidelity / FD cxr: reference {ref['model']} (weights sha256 {ref['weights_sha256'][:12]}), "
            "not comparable across datasets or reference settings."
        )
    if not ctx["data"]["real_data"]:
        caption = rich_line(("dataset is NOT real data", "bold yellow"), "\n", caption)
    table = ReportTable(f"cxraug score: {ctx['data']['name']} ({split_label(ctx['split'])})", [
        TableColumn("class", align="left", number=False), TableColumn("n real"), TableColumn("n fake")])  # fmt: skip
    # Each metric's columns as the registry defines them; rows of too few images leave the
    # Inception ones empty (fidelity and fd_cxr say so themselves).
    columns = {m: registry.METRICS[m].table_columns() for m in cols}
    inception = [m for m in cols if registry.METRICS[m].space == "inception"]
    for m in cols:
        table.columns += [TableColumn(c.head, drop=c.drop) for c in columns[m]]
    mem = result.memorization is not None
    if mem:
        table.columns.append(TableColumn("copy-like\npx/feat", drop=2))
    sections = []
    for row in result.rows:
        if row["class"] == OVERALL:
            sections.append(len(table.rows))
        out = [
            Cell(row["class"], style="bold" if row["class"] == OVERALL else ""),
            *cells(str(row["n_real"]), str(row["n_fake"])),
        ]
        for m in cols:
            if m in inception and row["status"] != "ok":
                out += cells(*("too few" if m == inception[0] and i == 0 else "" for i in range(len(columns[m]))))
            else:
                out += [Cell(c.text(row), c.note(row) if c.note else "") for c in columns[m]]
        if mem:
            sp, sf = row.get("mem_share_pixels"), row.get("mem_share_features")
            out += cells("-" if sp is None else f"{sp:.0%} / {sf:.0%}")
        table.rows.append(out)
    return rich_table(table, console, caption=caption, full_in="scores.csv", sections=sections)


def notes(result: ScoreResult, out: Path) -> list[str | Text]:
    ctx, lines = result.context, []
    if ctx.get("warning"):
        lines.append(styled(ctx["warning"], "bold yellow"))
    few = [r for r in result.rows if r["status"] != "ok"]
    if few:
        lines.append(
            f"{len(few)} row(s) without numbers, too few images (< {ctx['min_images']} on a side): "
            + ", ".join(f"{r['class']} ({r['n_real']} real)" for r in few)
        )
    lines += reference_notes(ctx)
    m = result.memorization
    if m is not None:
        if m.threshold_px is not None:
            lines.append(
                f"memorization: share of synthetic images closer to a training image than the closest "
                f"{m.config.quantile:.0%} of real {m.n_calibration} val images are (pixels rms < {m.threshold_px:.4f}, "
                f"features < {m.threshold_feat:.2f}); about {m.config.quantile:.0%} expected"
            )
        if m.note:
            lines.append(f"memorization: {m.note}")
        if m.flagged:
            ov = m.overall
            lines.append(
                rich_line(
                    ("memorization suspected", "bold red"),
                    f": {ov['near_copies']} near-copies of training images; "
                    f"{_pct(ov['share_below_pixels'])} / {_pct(ov['share_below_features'])} below the thresholds "
                    f"(alarm above {m.config.alarm_share:.0%}); see closest_pairs.png",
                )
            )
    files = ", ".join(
        ["scores.json", "scores.csv", *(["memorization.csv", "closest_pairs.png"] if m else []), *result.files]
    )
    lines.append(f"wrote {out} ({files})")
    return lines


WEAK_RECALL = 0.5  # a reference that finds fewer real val images of a class than this is a weak judge of it
FEW_VAL = 10  # ... as is one whose val recall of the class rests on fewer images


def reference_notes(ctx: dict[str, Any]) -> list[str | Text]:
    """Where the reference came from, and the classes it judges weakly (from its own val recall)."""
    ref = ctx.get("reference")
    if not ref:
        return []
    how = "reused from the cache" if ref["cache"].get("reused") else f"trained in {ref['seconds_to_train']:.0f} s"
    auroc = ref["val_macro_auroc"]
    lines = [
        f"reference classifier: {ref['model']}, {ref['settings']['epochs']} epochs on {ref['trained_on']['n']} train "
        f"images, selected on {ref['selected_on']['n']} val images (epoch {ref['selected_on']['best_epoch']}, val macro "
        f"AUROC {_fmt(auroc, 3)}), test split never read; {how}"
    ]
    scored = set(ctx["classes"])
    weak = [
        r for r in ref["val_per_class"]
        if r["class"] in scored and (r["recall_top1"] is None or r["recall_top1"] < WEAK_RECALL or r["n_val"] < FEW_VAL)
    ]  # fmt: skip
    if weak:
        lines.append(
            rich_line(
                ("weak judge", "yellow"),
                f" (val recall < {WEAK_RECALL:.0%} or under {FEW_VAL} val images) of: "
                + ", ".join(f"{r['class']} (recall {_pct(r['recall_top1'])} of {r['n_val']})" for r in weak),
            )
        )
    return lines


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.0%}"
