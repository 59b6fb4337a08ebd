"""``cxraug synth``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer

from cxraug.commands.common import out_console, user_errors, warner


def synth(
    run: Annotated[
        list[str],
        typer.Option(
            help="Run directory of a trained generator; several (comma-separated or repeated: replicates) "
            "write one set each."
        ),
    ],
    classes: Annotated[
        list[str],
        typer.Option(
            "--classes",
            "--class",
            help="Class names, comma-separated or repeated, or all (--class is the same option).",
        ),
    ],
    n: Annotated[int, typer.Option("-n", "--n", help="Images per class.")] = 100,
    out: Annotated[
        Optional[Path],
        typer.Option(
            help="Output folder (several runs: one set in OUT/<run folder> each).",
            show_default="RUN/synth/CLASSES-nN-seedS",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same images.")] = 0,
    batch_size: Annotated[int, typer.Option(help="Images per generator call.")] = 64,
    sets: Annotated[
        Optional[list[str]], typer.Option("--set", help="Sampling option key=value (plugin-specific).")
    ] = None,
    device: Annotated[
        Optional[str], typer.Option(help="cpu, cuda, cuda:1.", show_default="Accelerate's choice")
    ] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing output folder.")] = False,
    allow_unseen: Annotated[
        bool, typer.Option("--allow-unseen", help="Also sample classes with no training image ('all' leaves them out).")
    ] = False,
) -> None:
    """Write synthetic images of the chosen classes as 8-bit PNGs with a manifest and provenance."""
    _synth_runs(
        SynthOptions(
            run=run, classes=classes, n=n, out=out, seed=seed, batch_size=batch_size, sets=sets or [], device=device,
            overwrite=overwrite, allow_unseen=allow_unseen,
        )
    )  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class SynthOptions:
    """``cxraug synth``'s options as given (``run``: one or more run folders, comma-separated too)."""

    run: list[str]
    classes: list[str]
    n: int
    out: Path | None
    seed: int
    batch_size: int
    sets: list[str]
    device: str | None
    overwrite: bool
    allow_unseen: bool


@user_errors
def _synth_runs(opts: SynthOptions) -> None:
    """One set per run, one after another; every run is checked before the first is sampled."""
    from cxraug.errors import UserError
    from cxraug.runs import read_run_config

    out = opts.out
    paths = [Path(p) for text in opts.run for p in text.split(",") if p]
    if not paths:
        raise UserError("--run needs a run directory")
    for p in paths:
        read_run_config(p)
    names = [p.resolve().name for p in paths]
    if len(paths) > 1 and len(set(names)) < len(names):
        raise UserError(f"--run: two runs share a folder name ({', '.join(names)}); their sets would collide")
    for p in paths:
        _synth(opts, run=p, out=out / p.resolve().name if out is not None and len(paths) > 1 else out)


def _synth(opts: SynthOptions, *, run: Path, out: Path | None) -> None:
    """The options, validated into a SynthConfig here (inside user_errors: a bad value is one line)."""
    from cxraug import api
    from cxraug.accel import process_state
    from cxraug.config import parse_sets
    from cxraug.progress import RichReporter
    from cxraug.synth import SynthConfig

    console = out_console()
    main = process_state().is_main_process
    cfg = SynthConfig(
        run=run, classes=opts.classes, n=opts.n, out=out, seed=opts.seed, batch_size=opts.batch_size,
        overwrite=opts.overwrite, options=parse_sets(opts.sets), device=opts.device, allow_unseen=opts.allow_unseen,
    )  # fmt: skip
    syn = api.synth(cfg, reporter=RichReporter(console, disable=not main), warn=warner() if main else lambda _: None)
    if main:
        out, prov = syn.root, syn.provenance
        console.print(
            f"wrote {prov['n_images']} images ({len(prov['requested'])} class(es) x {prov['n_per_class']}, "
            f"{prov['size']}px, {prov['plugin']} step {prov['step']}) in {prov['seconds']:.1f}s to {out}"
        )
        if prov.get("skipped_unseen"):
            console.print(f"left out (no training image): {', '.join(prov['skipped_unseen'])}")
