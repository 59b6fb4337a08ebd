"""``cxraug benchmark``: train the shared classifier under several arms and seeds, report."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer
from rich.table import Table

from cxraug.commands.common import configure_threads, out_console, parse_list, user_errors
from cxraug.errors import UserError
from cxraug.lock import output_lock

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
    syn = {k: Path(v) for k, v in parse_pairs(synthetic, "--synthetic", "cgan=runs/00001-cgan/synth/x").items()}
    return {
        "synthetic": syn or None,
        "arms": parse_list(arms),
        "seeds": parse_seeds(seeds),
        "ratios": parse_list(ratio),
        "controlled_imbalance": counts or None,
    }


def _cell(e) -> str:
    if e.n < 2 or e.low != e.low:  # NaN: one seed or none
        return e.text()
    return f"{e.mean:.3f}\n[dim][{e.low:.3f}, {e.high:.3f}][/]"


def results_table(report: BenchmarkReport) -> Table:
    n_test = int(report.runs["n_test"].iloc[0]) if len(report.runs) else 0
    conf = f"{report.plan.cfg.confidence:.0%}"
    t = Table(
        title=f"benchmark on {report.plan.data.name}: test split, n={n_test} images; mean and {conf} CI over seeds",
        caption=f"rare: {', '.join(report.classes[c] for c in report.rare) or 'none'} ({report.rare_rule}); "
        "full tables in summary.md",
    )
    metrics = {"macro_auroc": "macro AUROC", "macro_f1": "macro F1", "balanced_accuracy": "bal. acc.",
               "rare_auroc": "rare AUROC"}  # fmt: skip
    t.add_column("arm")
    t.add_column("seeds", justify="right")
    for label in metrics.values():
        t.add_column(label, justify="right")
    if report.reference:
        t.add_column(f"Δ rare AUROC vs {report.reference}", justify="right")
    for arm in report.arms:
        s = report.arm_summary[arm.name]
        row = [arm.name, str(s["macro_auroc"].n), *(_cell(s[m]) for m in metrics)]
        if report.reference:
            d = report.arm_diff[arm.name]["rare_auroc"]
            row.append("" if arm.name == report.reference else _cell(d).replace(f"{d.mean:.3f}", f"{d.mean:+.3f}", 1))
        t.add_row(*row)
    return t


def verdict_table(report: BenchmarkReport) -> Table | None:
    rows = report.verdicts("auroc")
    if not rows:
        return None
    t = Table(title=f"rare classes: paired difference in test AUROC vs {report.reference}")
    for col in ("class", "arm", "Δ AUROC [CI] (n seeds)", "verdict"):
        t.add_column(col)
    style = {"helped": "[green]", "hurt": "[red]"}
    for v in sorted(rows, key=lambda v: (v["class"], not v["synthetic"])):
        name = f"{v['class']} (test n={report.n_test(v['class'])})"
        t.add_row(name, v["arm"], v["diff"].text(signed=True), style.get(v["verdict"], "") + v["verdict"])
    return t


def benchmark(
    data: Annotated[Path, typer.Option(help="Prepared dataset (from `cxraug prepare`).")],
    synthetic: Annotated[
        Optional[list[str]], typer.Option(metavar="NAME=DIR", help="A synthetic set from `cxraug synth` (repeatable).")
    ] = None,
    arms: Annotated[
        Optional[str],
        typer.Option(help="Comma-separated arms: real, reweight, oversample, classic, NAME, NAME@RATIO, NAME-only."),
    ] = None,
    seeds: Annotated[Optional[str], typer.Option(help="Number of seeds (e.g. 5), or a list (e.g. 0,1,2).")] = None,
    ratio: Annotated[
        Optional[str], typer.Option(help="Synthetic ratios, comma-separated: fill, xK (e.g. x2), +N (e.g. +500).")
    ] = None,
    out: Annotated[Optional[Path], typer.Option(help="Output folder (default runs/benchmark-<data>).")] = None,
    config: Annotated[Optional[Path], typer.Option(help="YAML file of options (see docs/benchmark.md).")] = None,
    set_: Annotated[
        Optional[list[str]],
        typer.Option("--set", metavar="KEY=VALUE", help="An option, e.g. epochs=20 or model=densenet121 (repeatable)."),
    ] = None,
    controlled_imbalance: Annotated[
        Optional[list[str]],
        typer.Option(metavar="CLASS=N", help="Keep N training images of CLASS, chosen by patient (repeatable)."),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Delete earlier runs in --out and start again.")] = False,
    export_reduced: Annotated[
        Optional[Path],
        typer.Option(
            help="Only write the --controlled-imbalance training set (same val/test) as a prepared "
            "dataset here, to train a generator on, and exit."
        ),
    ] = None,
) -> None:
    """Train one classifier under several arms and seeds; report whether synthetic data helps."""
    _benchmark(data, synthetic, arms, seeds, ratio, out, config, set_, controlled_imbalance, overwrite, export_reduced)


@user_errors
def _benchmark(
    data: Path,
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
) -> None:
    from cxraug.benchmark.config import build_config

    cfg = build_config(config, cli_options(synthetic, arms, seeds, ratio, controlled_imbalance), sets)
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
    configure_threads()
    from cxraug.benchmark.runner import run_benchmark
    from cxraug.progress import RichReporter

    out = out or Path("runs") / f"benchmark-{Path(data).name}"
    console = out_console()
    # Under `accelerate launch` every process runs this; only rank 0 draws and prints.
    main = int(os.environ.get("RANK", "0")) == 0
    with output_lock(out, "benchmark folder") if main else contextlib.nullcontext():
        report = run_benchmark(data, cfg, out, overwrite=overwrite, reporter=RichReporter(console, disable=not main))
    if not main:
        return
    console.print(results_table(report))
    vt = verdict_table(report)
    if vt is not None:
        console.print(vt)
    for note in report.notes:
        console.print(f"[yellow]note:[/] {note}")
    console.print(f"{report.trained} runs trained, {report.reused} reused; report: {out / 'summary.md'}")
