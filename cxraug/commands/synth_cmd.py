"""``cxraug synth``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cxraug.commands.common import configure_threads, out_console, user_errors


def synth(
    run: Annotated[Path, typer.Option(help="Run directory of a trained generator.")],
    class_: Annotated[list[str], typer.Option("--class", help="Class name(s), comma-separated or repeated, or all.")],
    n: Annotated[int, typer.Option("-n", "--n", help="Images per class.")] = 100,
    out: Annotated[
        Optional[Path], typer.Option(help="Output folder (default RUN/synth/<classes>-n<N>-seed<S>).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed: the same seed gives the same images.")] = 0,
    batch_size: Annotated[int, typer.Option(help="Images per generator call.")] = 64,
    set_: Annotated[
        Optional[list[str]], typer.Option("--set", help="Sampling option key=value (plugin-specific).")
    ] = None,
    device: Annotated[Optional[str], typer.Option(help="cpu, cuda, cuda:1 (default: Accelerate's choice).")] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace an existing output folder.")] = False,
    allow_unseen: Annotated[
        bool, typer.Option(help="Also sample classes with no training image ('all' leaves them out).")
    ] = False,
) -> None:
    """Write synthetic images of the chosen classes as 8-bit PNGs with a manifest and provenance."""
    _synth(
        run=run, classes=class_, n=n, out=out, seed=seed, batch_size=batch_size, overwrite=overwrite,
        sets=set_ or [], device=device, allow_unseen=allow_unseen,
    )  # fmt: skip


@user_errors
def _synth(
    *, run: Path, classes: list[str], n: int, out: Path | None, seed: int, batch_size: int, overwrite: bool,
    sets: list[str], device: str | None, allow_unseen: bool,
) -> None:  # fmt: skip
    """The options, validated into a SynthConfig here (inside user_errors: a bad value is one line)."""
    from cxraug.accel import process_state
    from cxraug.config import parse_sets
    from cxraug.progress import RichReporter
    from cxraug.synth import SynthConfig
    from cxraug.synth import synth as run_synth
    from cxraug.synthset import open_synthetic

    configure_threads()
    console = out_console()
    main = process_state().is_main_process
    cfg = SynthConfig(
        run=run, classes=classes, n=n, out=out, seed=seed, batch_size=batch_size, overwrite=overwrite,
        options=parse_sets(sets), device=device, allow_unseen=allow_unseen,
    )  # fmt: skip
    out = run_synth(cfg, RichReporter(console, disable=not main))
    if main:
        prov = open_synthetic(out).provenance
        console.print(
            f"wrote {prov['n_images']} images ({len(prov['requested'])} class(es) x {prov['n_per_class']}, "
            f"{prov['size']}px, {prov['plugin']} step {prov['step']}) in {prov['seconds']:.1f}s to {out}"
        )
        if prov.get("skipped_unseen"):
            console.print(f"left out (no training image): {', '.join(prov['skipped_unseen'])}")
