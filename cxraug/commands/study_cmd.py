"""``cxraug study``: the whole question in one command (cxraug/study/), answered as a curve."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional

import typer

from cxraug.commands.common import err_console, out_console, parse_list, rich_table, sayer, user_errors
from cxraug.errors import UserError

# The command's options, one alias each: the command's signature names them, its body stays short.
DataOption = Annotated[
    Optional[Path],
    typer.Option(help="Prepared dataset (from `cxraug prepare`). Required unless --config gives it."),
]
RareOption = Annotated[
    Optional[str], typer.Option(help='The class made rare, e.g. "No Finding". Required unless --config gives it.')
]
SizesOption = Annotated[
    Optional[str],
    typer.Option(
        help="Its training images kept (by patient), comma-separated, e.g. 10,25,50. Required unless --config gives it."
    ),
]
GeneratorsOption = Annotated[
    Optional[str], typer.Option(help="Generator plugins, comma-separated.", show_default="cgan,diffusion")
]
GenSeedsOption = Annotated[
    Optional[str],
    typer.Option(help="Generator replicates: a count (e.g. 3) or training seeds (0,1,2).", show_default="0"),
]
SeedsOption = Annotated[
    Optional[str], typer.Option(help="Classifier seeds of every benchmark: a count or a list.", show_default="3")
]
TimeLimitOption = Annotated[
    Optional[float], typer.Option(help="Minutes of training steps per generator run (or --gen-steps).")
]
GenStepsOption = Annotated[
    Optional[str],
    typer.Option(
        metavar="N|PLUGIN=N,...",
        help="Optimiser steps per generator run, reproducible (or --time-limit); one per plugin: cgan=1000,diffusion=120.",
    ),
]
ClockOption = Annotated[
    Optional[str], typer.Option(metavar="wall|cpu", help="What --time-limit counts.", show_default="wall")
]
RatiosOption = Annotated[
    Optional[str],
    typer.Option(help="Synthetic ratios: fill, xK, +N; several are chosen between on validation.", show_default="fill"),
]
OutOption = Annotated[
    Optional[Path], typer.Option(help="Study folder (continued if it exists). Required unless --config gives it.")
]
ConfigOption = Annotated[Optional[Path], typer.Option(help="YAML file of these options (see docs/study.md).")]
BenchSetsOption = Annotated[
    Optional[list[str]],
    typer.Option("--set", metavar="KEY=VALUE", help="A benchmark option, e.g. epochs=3 (repeatable)."),
]
GenSetsOption = Annotated[
    Optional[list[str]],
    typer.Option(
        "--set-gen", metavar="PLUGIN:KEY=VALUE", help="A train-gen option of one plugin, e.g. cgan:batch_size=32."
    ),
]
SampleSetsOption = Annotated[
    Optional[list[str]],
    typer.Option(
        "--set-sample", metavar="PLUGIN:KEY=VALUE", help="A sampling option of one plugin (synth and compare)."
    ),
]
CompareNOption = Annotated[
    Optional[int], typer.Option(help="Synthetic images per generator in compare.", show_default="200")
]
MaxHoursOption = Annotated[
    Optional[float], typer.Option(help="Refuse a grid estimated to take longer (hours).", show_default="48")
]
ForceOption = Annotated[bool, typer.Option("--force", help="Run a grid over the time or disk limit anyway.")]
PlanOption = Annotated[
    bool,
    typer.Option(
        "--plan",
        help="Print the plan (the grid, cells done or to make, estimated time and disk, reachable verdicts) "
        "and exit; nothing is made or written.",
    ),
]
ShardOption = Annotated[
    Optional[str],
    typer.Option(metavar="I/K", help="Do sizes I, I+K, ... only (a Slurm array task; see docs/study.md)."),
]


@dataclass(frozen=True, kw_only=True)
class StudyOptions:
    """The command's options as given on the command line (parsed further by the work)."""

    data: Path | None
    rare: str | None
    sizes: str | None
    generators: str | None
    gen_seeds: str | None
    seeds: str | None
    time_limit: float | None
    gen_steps: str | None
    clock: str | None
    ratios: str | None
    out: Path | None
    config: Path | None
    bench_sets: list[str] | None
    gen_sets: list[str] | None
    sample_sets: list[str] | None
    compare_n: int | None
    max_hours: float | None
    force: bool
    plan: bool
    shard: str | None


def study(
    data: DataOption = None,
    rare: RareOption = None,
    sizes: SizesOption = None,
    generators: GeneratorsOption = None,
    gen_seeds: GenSeedsOption = None,
    seeds: SeedsOption = None,
    time_limit: TimeLimitOption = None,
    gen_steps: GenStepsOption = None,
    clock: ClockOption = None,
    ratios: RatiosOption = None,
    out: OutOption = None,
    config: ConfigOption = None,
    bench_sets: BenchSetsOption = None,
    gen_sets: GenSetsOption = None,
    sample_sets: SampleSetsOption = None,
    compare_n: CompareNOption = None,
    max_hours: MaxHoursOption = None,
    force: ForceOption = False,
    plan: PlanOption = False,
    shard: ShardOption = None,
) -> None:
    """Run the study: for each size N of the rare class, generators trained on it alone, their
    images benchmarked against the copy control and the best baseline; one page, the answer first.
    The plan is printed first."""
    _study(
        StudyOptions(
            data=data, rare=rare, sizes=sizes, generators=generators, gen_seeds=gen_seeds, seeds=seeds,
            time_limit=time_limit, gen_steps=gen_steps, clock=clock, ratios=ratios, out=out, config=config, bench_sets=bench_sets,
            gen_sets=gen_sets, sample_sets=sample_sets, compare_n=compare_n, max_hours=max_hours, force=force, plan=plan,
            shard=shard,
        )
    )  # fmt: skip


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


def _sizes(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--sizes {text!r}: give whole numbers of images, e.g. 10,25,50") from None


@user_errors
def _study(opts: StudyOptions) -> None:
    from cxraug import api
    from cxraug.progress import RichReporter
    from cxraug.study.config import parse_key_values, parse_plugin_sets

    options = {
        "data": opts.data, "rare": opts.rare, "sizes": _sizes(opts.sizes), "generators": parse_list(opts.generators),
        "gen_seeds": _ints("--gen-seeds", opts.gen_seeds), "seeds": _ints("--seeds", opts.seeds),
        "time_limit": opts.time_limit, "gen_steps": _steps(opts.gen_steps), "clock": opts.clock,
        "ratios": parse_list(opts.ratios), "compare_n": opts.compare_n, "max_hours": opts.max_hours,
        "force": opts.force or None, "out": opts.out, "bench_sets": parse_key_values(opts.bench_sets, "--set"),
        "gen_sets": parse_plugin_sets(opts.gen_sets, "--set-gen"),
        "sample_sets": parse_plugin_sets(opts.sample_sets, "--set-sample"),
    }  # fmt: skip
    console = out_console()
    result = api.study(opts.config, shard=opts.shard, reporter=RichReporter(err_console()), plan_only=opts.plan,
                       say=sayer(console), **options)  # fmt: skip
    if opts.plan:
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
