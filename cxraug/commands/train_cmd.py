"""``cxraug train-gen`` and ``cxraug plugins``."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from cxraug.commands.common import EnvironmentFault, environment_message, out_console, sayer, user_errors
from cxraug.config import DEFAULT_STEPS, TrainConfig
from cxraug.errors import UserError

EPILOG = (
    "Defaults computed: a key left out comes from --config, then the plugin's defaults; "
    "`--dry-run` prints every resolved training and model key."
)


def _train_default(key: str) -> str:
    """A training key's default, as train-gen resolves it when neither --config nor --set gives it."""
    return f"{TrainConfig.model_fields[key].default}, or --config's"


def train_gen(
    plugin: Annotated[
        Optional[str], typer.Option(help="Generator plugin (see `cxraug plugins`). Required unless --resume.")
    ] = None,
    data: Annotated[
        Optional[Path], typer.Option(help="Prepared dataset (from `cxraug prepare`). Required unless --resume.")
    ] = None,
    out: Annotated[Path, typer.Option(help="Folder of numbered run directories.")] = Path("runs"),
    config: Annotated[Optional[Path], typer.Option(help="YAML config: train:/model: sections or flat keys.")] = None,
    steps: Annotated[
        Optional[int],
        typer.Option(help="Total optimisation steps.", show_default=f"{DEFAULT_STEPS}; with --time-limit: no cap"),
    ] = None,
    time_limit: Annotated[
        Optional[float],
        typer.Option(help="Minutes of training steps; the run then ends as at --steps (with it alone: no step cap)."),
    ] = None,
    batch_size: Annotated[
        Optional[int], typer.Option(help="Images per step and process.", show_default=_train_default("batch_size"))
    ] = None,
    seed: Annotated[
        Optional[int], typer.Option(help="Seed of weights, noise and data order.", show_default=_train_default("seed"))
    ] = None,
    seeds: Annotated[
        Optional[str],
        typer.Option(help="Train replicates, one run folder per seed, one after another (e.g. 0,1,2)."),
    ] = None,
    mixed_precision: Annotated[
        Optional[str], typer.Option(help="no | fp16 | bf16 (GPU only).", show_default=_train_default("mixed_precision"))
    ] = None,
    sets: Annotated[Optional[list[str]], typer.Option("--set", help="key=value override (repeatable).")] = None,
    resume: Annotated[
        Optional[Path],
        typer.Option(
            help="Continue this run exactly; other flags must agree with its config (--steps/--time-limit may change)."
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the resolved config and exit.")] = False,
    plan: Annotated[
        bool,
        typer.Option(
            "--plan",
            help="Print the budget and its estimated duration (a few steps timed), and exit; nothing is written.",
        ),
    ] = False,
) -> None:
    """Train a class-conditional generator on the training patients (Accelerate loop).
    The plan is printed before the first step."""
    args = TrainGenArgs(
        plugin=plugin, data=data, out=out, config=config, steps=steps, time_limit=time_limit, batch_size=batch_size,
        seed=seed, mixed_precision=mixed_precision, sets=sets or [], resume=resume, dry_run=dry_run, plan=plan,
    )  # fmt: skip
    if seeds is None:
        _train_gen(args)
    else:
        _train_replicates(args, seeds)


@dataclass(frozen=True, kw_only=True)
class TrainGenArgs:
    """`cxraug train-gen`'s options, as typed."""

    plugin: str | None
    data: Path | None
    out: Path
    config: Path | None
    steps: int | None
    time_limit: float | None
    batch_size: int | None
    seed: int | None
    mixed_precision: str | None
    sets: list[str]
    resume: Path | None
    dry_run: bool
    plan: bool = False

    def flags(self) -> dict[str, Any]:
        """The flags that are training keys (None: not given)."""
        return {"steps": self.steps, "time_limit": self.time_limit, "batch_size": self.batch_size,
                "seed": self.seed, "mixed_precision": self.mixed_precision}  # fmt: skip


@user_errors
def _train_replicates(args: TrainGenArgs, seeds: str) -> None:
    """--seeds 0,1,2: the same method trained once per seed, sequentially, each in its own run
    folder (replicates for `compare NAME=RUN1,RUN2,...` and `benchmark --synthetic NAME=...`)."""
    from dataclasses import replace

    from cxraug.errors import UserError

    if args.seed is not None or args.resume is not None:
        raise UserError("--seeds trains new runs, one per seed: give it without --seed and --resume")
    values = _parse_seeds(seeds)
    for s in values:
        _train_gen(replace(args, seed=s))  # each trains (or fails) like one train-gen call


def _parse_seeds(text: str) -> list[int]:
    from cxraug.config import check_option
    from cxraug.errors import UserError
    from cxraug.fsutil import short

    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        raise UserError(
            f"--seeds: expected integers separated by commas, like 0,1,2 (got {short(text, 60)!r})"
        ) from None
    for v in values:
        check_option("--seeds", v, "seed")
    if len(set(values)) != len(values):
        raise UserError(f"--seeds: a seed given twice ({short(text, 60)}) would train the same run twice")
    return values


@user_errors
def _train_gen(args: TrainGenArgs) -> None:
    from cxraug import api
    from cxraug.accel import process_state
    from cxraug.progress import RichReporter

    cfg = api.TrainGenConfig(
        plugin=args.plugin, data=args.data, out=args.out, config=args.config, sets=args.sets, resume=args.resume,
        **args.flags(),
    )  # fmt: skip
    if args.dry_run:
        if args.resume is not None:
            raise UserError("--dry-run starts no run; it does not combine with --resume")
        print(json.dumps(api.resolved_train_config(cfg), indent=2))
        return
    console = out_console()
    main = process_state().is_main_process
    started: list[Path] = []

    def on_start(run: Path) -> None:
        started.append(run)
        console.print(f"run directory: {run}")

    try:
        trained = api.train_gen(
            cfg, reporter=RichReporter(console, disable=not main), on_start=on_start, plan_only=args.plan,
            say=sayer(console),
        )  # fmt: skip
    except OSError as e:  # a full disk: the run continues with --resume (the same command would start a new one)
        if not started or environment_message(e) is None:
            raise
        raise EnvironmentFault(e, f"continue the run with `cxraug train-gen --resume {started[0]}`") from None
    if main and trained.run is not None and trained.reason != "plan":
        summary, train_cfg = trained.summary, _saved_train(trained.run)
        losses = ", ".join(f"{k} {v:.4g}" for k, v in summary["losses"].items())
        why = {"time_limit": f"time limit {train_cfg.get('time_limit')} min reached", "steps": "step cap reached"}
        console.print(
            f"done: step {summary['step']} ({why.get(summary['reason'], 'stopped')}; "
            f"{summary['step'] - summary['start']} steps this session, {summary['seconds']:.0f}s); "
            f"training steps so far {summary['train_s'] / 60:.1f} {'CPU-' if train_cfg.get('clock') == 'cpu' else ''}min; "
            f"last losses: {losses or 'none'}"
        )
        console.print(f"run directory: {trained.run}")


def _saved_train(run: Path) -> dict[str, Any]:
    from cxraug.runs import read_run_config

    return read_run_config(run)["train"]


def plugins() -> None:
    """List the registered generator plugins."""
    from cxraug import registry

    t = Table(title="generator plugins (entry-point group cxraug.generators)")
    t.add_column("name")
    t.add_column("target")
    t.add_column("description")
    for name, target, desc in registry.describe():
        t.add_row(name, target, desc)
    out_console().print(t)
