"""``cxraug study``: the whole question in one command (cxraug/study/), answered as a curve."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from cxraug.commands.common import err_console, out_console, parse_list, rich_table, sayer, user_errors
from cxraug.errors import UserError


def study(
    data: Annotated[
        Optional[Path],
        typer.Option(help="Prepared dataset (from `cxraug prepare`). Required unless --config gives it."),
    ] = None,
    rare: Annotated[
        Optional[str], typer.Option(help='The class made rare, e.g. "No Finding". Required unless --config gives it.')
    ] = None,
    sizes: Annotated[
        Optional[str],
        typer.Option(
            help="Its training images kept (by patient), comma-separated, e.g. 10,25,50. Required unless --config gives it."
        ),
    ] = None,
    generators: Annotated[
        Optional[str], typer.Option(help="Generator plugins, comma-separated.", show_default="cgan,diffusion")
    ] = None,
    gen_seeds: Annotated[
        Optional[str],
        typer.Option(help="Generator replicates: a count (e.g. 3) or training seeds (0,1,2).", show_default="0"),
    ] = None,
    seeds: Annotated[
        Optional[str], typer.Option(help="Classifier seeds of every benchmark: a count or a list.", show_default="3")
    ] = None,
    time_limit: Annotated[
        Optional[float], typer.Option(help="Minutes of training steps per generator run (or --gen-steps).")
    ] = None,
    gen_steps: Annotated[
        Optional[str],
        typer.Option(
            metavar="N|PLUGIN=N,...",
            help="Optimiser steps per generator run, reproducible (or --time-limit); one per plugin: cgan=1000,diffusion=120.",
        ),
    ] = None,
    clock: Annotated[
        Optional[str], typer.Option(metavar="wall|cpu", help="What --time-limit counts.", show_default="wall")
    ] = None,
    ratios: Annotated[
        Optional[str],
        typer.Option(
            help="Synthetic ratios: fill, xK, +N; several are chosen between on validation.", show_default="fill"
        ),
    ] = None,
    out: Annotated[
        Optional[Path], typer.Option(help="Study folder (continued if it exists). Required unless --config gives it.")
    ] = None,
    config: Annotated[Optional[Path], typer.Option(help="YAML file of these options (see docs/study.md).")] = None,
    set_: Annotated[
        Optional[list[str]],
        typer.Option("--set", metavar="KEY=VALUE", help="A benchmark option, e.g. epochs=3 (repeatable)."),
    ] = None,
    set_gen: Annotated[
        Optional[list[str]],
        typer.Option(metavar="PLUGIN:KEY=VALUE", help="A train-gen option of one plugin, e.g. cgan:batch_size=32."),
    ] = None,
    set_sample: Annotated[
        Optional[list[str]],
        typer.Option(metavar="PLUGIN:KEY=VALUE", help="A sampling option of one plugin (synth and compare)."),
    ] = None,
    compare_n: Annotated[
        Optional[int], typer.Option(help="Synthetic images per generator in compare.", show_default="200")
    ] = None,
    max_hours: Annotated[
        Optional[float], typer.Option(help="Refuse a grid estimated to take longer (hours).", show_default="48")
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Run a grid over the time or disk limit anyway.")] = False,
    plan: Annotated[
        bool,
        typer.Option(
            "--plan",
            help="Print the plan (the grid, cells done or to make, estimated time and disk, reachable verdicts) "
            "and exit; nothing is made or written.",
        ),
    ] = False,
    shard: Annotated[
        Optional[str],
        typer.Option(metavar="I/K", help="Do sizes I, I+K, ... only (a Slurm array task; see docs/study.md)."),
    ] = None,
) -> None:
    """Run the study: for each size N of the rare class, generators trained on it alone, their
    images benchmarked against the copy control and the best baseline; one page, the answer first.
    The plan is printed first."""
    _study(data, rare, sizes, generators, gen_seeds, seeds, time_limit, gen_steps, clock, ratios, out, config,
           set_, set_gen, set_sample, compare_n, max_hours, force, shard, plan)  # fmt: skip


def _ints(option: str, text: str | None) -> int | list[int] | None:
    if text is None:
        return None
    try:
        return [int(s) for s in text.split(",") if s.strip()] if "," in text else int(text)
    except ValueError:
        raise UserError(f"{option} {text!r}: give a count (e.g. 3) or a list (e.g. 0,1,2)") from None


def _steps(text: str | None) -> int | dict[str, int] | None:
    if text is None:
        return None
    try:
        if "=" not in text:
            return int(text)
        pairs = [part.split("=", 1) for part in text.split(",") if part.strip()]
        return {name.strip(): int(n) for name, n in pairs}
    except ValueError:
        raise UserError(
            f"--gen-steps {text!r}: give steps (e.g. 2000) or steps per plugin (cgan=1000,diffusion=120)"
        ) from None


@user_errors
def _study(data, rare, sizes, generators, gen_seeds, seeds, time_limit, gen_steps, clock, ratios, out, config,
           sets, set_gen, set_sample, compare_n, max_hours, force, shard, plan) -> None:  # fmt: skip
    from cxraug import api
    from cxraug.progress import RichReporter
    from cxraug.study.config import parse_key_values, parse_plugin_sets

    if sizes is not None:
        try:
            size_list: list[int] | None = [int(s) for s in sizes.split(",") if s.strip()]
        except ValueError:
            raise UserError(f"--sizes {sizes!r}: give whole numbers of images, e.g. 10,25,50") from None
    else:
        size_list = None
    options = {
        "data": data, "rare": rare, "sizes": size_list, "generators": parse_list(generators),
        "gen_seeds": _ints("--gen-seeds", gen_seeds), "seeds": _ints("--seeds", seeds), "time_limit": time_limit,
        "gen_steps": _steps(gen_steps), "clock": clock, "ratios": parse_list(ratios), "compare_n": compare_n,
        "max_hours": max_hours, "force": force or None, "out": out,
        "bench_sets": parse_key_values(sets, "--set"), "gen_sets": parse_plugin_sets(set_gen, "--set-gen"),
        "sample_sets": parse_plugin_sets(set_sample, "--set-sample"),
    }  # fmt: skip
    console = out_console()
    result = api.study(config, shard=shard, reporter=RichReporter(err_console()), plan_only=plan,
                       say=sayer(console), **options)  # fmt: skip
    if plan:
        return
    cfg, out = result.config, result.out
    if not result.complete:
        console.print(
            f"this process's cells are done ({result.trained} made, {result.reused} reused); the page is written "
            f"by the process that finishes the last size, or by `cxraug study` with the same options on {out}"
        )
        return
    from cxraug.study.page import answer_sentence, report_table, study_rows

    rows = study_rows(cfg, result.sizes)
    console.print(rich_table(report_table(cfg, rows), console, full_in="study.csv", interval_style="dim"))
    console.print(answer_sentence(cfg, rows).replace("**", ""), markup=False)
    console.print(f"{result.trained} cells made, {result.reused} reused; page: {result.page}", markup=False)
    console.print(f"open {Path(result.page).resolve()}", markup=False)
