"""``cxraug train-gen`` and ``cxraug plugins``."""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from cxraug.commands.common import EnvironmentFault, configure_threads, environment_message, out_console, user_errors
from cxraug.lock import output_lock


def train_gen(
    plugin: Annotated[Optional[str], typer.Option(help="Generator plugin (see `cxraug plugins`).")] = None,
    data: Annotated[Optional[Path], typer.Option(help="Prepared dataset (from `cxraug prepare`).")] = None,
    out: Annotated[Path, typer.Option(help="Folder of numbered run directories.")] = Path("runs"),
    config: Annotated[Optional[Path], typer.Option(help="YAML config: train:/model: sections or flat keys.")] = None,
    steps: Annotated[Optional[int], typer.Option(help="Total optimisation steps (default 2000).")] = None,
    time_limit: Annotated[
        Optional[float],
        typer.Option(help="Minutes of training steps; the run then ends as at --steps (with it alone: no step cap)."),
    ] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Images per step and process.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed of weights, noise and data order.")] = None,
    seeds: Annotated[
        Optional[str],
        typer.Option(help="Train replicates, one run folder per seed, one after another (e.g. 0,1,2)."),
    ] = None,
    mixed_precision: Annotated[Optional[str], typer.Option(help="no | fp16 | bf16 (GPU only).")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="key=value override (repeatable).")] = None,
    resume: Annotated[
        Optional[Path],
        typer.Option(
            help="Continue this run exactly; other flags must agree with its config (--steps/--time-limit may change)."
        ),
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Print the resolved config and exit.")] = False,
    plan: Annotated[
        bool, typer.Option("--plan", help="Print the budget and the estimated duration (a few steps timed), and exit.")
    ] = False,
) -> None:
    """Train a class-conditional generator on the training patients (Accelerate loop)."""
    args = TrainGenArgs(
        plugin, data, out, config, steps, time_limit, batch_size, seed, mixed_precision, set_ or [], resume, dry_run,
        plan,
    )  # fmt: skip
    if seeds is None:
        _train_gen(args)
    else:
        _train_replicates(args, seeds)


@dataclass(frozen=True)
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
    with contextlib.ExitStack() as locks:  # one writer per run directory (cxraug/lock.py)
        _train_gen_locked(locks, args)


def _train_gen_locked(locks: contextlib.ExitStack, args: TrainGenArgs) -> None:
    from cxraug import registry, runs
    from cxraug.accel import process_state
    from cxraug.commands.plan_hooks import print_train_plan
    from cxraug.config import load_config_file, parse_sets, resolve
    from cxraug.data.prepared import open_prepared
    from cxraug.errors import UserError
    from cxraug.metrics.training import check_training_metrics, training_evaluation
    from cxraug.progress import RichReporter
    from cxraug.train import RunSpec, check_batch_memory, check_runtime, spec_from_run, start_run, train

    configure_threads()
    console = out_console()
    flags = args.flags()
    file_values, sets = load_config_file(args.config), parse_sets(args.sets)
    if args.resume is not None:
        run = Path(args.resume)
        runs.read_run_config(run)  # a clear line for a wrong folder, before any lock file appears
        changes = _resume_changes(run, args, file_values, flags, sets)
        if process_state().is_main_process:  # before its config.json may change
            locks.enter_context(output_lock(run, "run directory"))
        if args.plan:  # the changes applied in memory only: --plan writes nothing
            from dataclasses import replace

            from cxraug.config import TrainConfig, validated

            spec = spec_from_run(run)
            spec = replace(spec, train=validated(TrainConfig, {**spec.train.model_dump(), **changes}, "option"))
            print_train_plan(spec, run, out_console())
            return
        spec = spec_from_run(run, changes)
        print_train_plan(spec, run, out_console())
        resume = True
    else:
        if args.plugin is None or args.data is None:
            raise UserError("train-gen needs --plugin and --data (or --resume RUN_DIR)")
        cls = registry.get(args.plugin)
        data = open_prepared(args.data)
        train_cfg, model_cfg = resolve(cls.Config, file_values, flags, sets)
        spec = RunSpec(args.plugin, train_cfg, model_cfg, data.root)
        if args.dry_run:
            print(
                json.dumps(
                    {"plugin": spec.plugin, "train": train_cfg.model_dump(), "model": model_cfg.model_dump()}, indent=2
                )
            )
            return
        check_runtime(train_cfg)
        check_batch_memory(train_cfg, data)
        check_training_metrics(train_cfg)
        cls(model_cfg, _spec_of(data))  # build once to fail early on a bad model/size combination
        print_train_plan(spec, None, out_console())
        if args.plan:  # before any run folder
            return
        run = start_run(spec, args.out)
        if process_state().is_main_process:
            locks.enter_context(output_lock(run, "run directory"))
        resume = False

    state = process_state()
    main = state.is_main_process
    if main:
        console.print(f"run directory: {run}")
    try:
        check_runtime(spec.train)  # a resumed run's too, before a reference classifier may train
        evaluation = training_evaluation(spec.train, open_prepared(spec.data_path), state)
        summary = train(run, spec, RichReporter(console, disable=not main), resume=resume, evaluation=evaluation)
    except OSError as e:  # a full disk: the run continues with --resume (the same command would start a new one)
        if environment_message(e) is None:
            raise
        raise EnvironmentFault(e, f"continue the run with `cxraug train-gen --resume {run}`") from None
    if main:
        losses = ", ".join(f"{k} {v:.4g}" for k, v in summary["losses"].items())
        why = {"time_limit": f"time limit {spec.train.time_limit} min reached", "steps": "step cap reached"}
        console.print(
            f"done: step {summary['step']} ({why.get(summary['reason'], 'stopped')}; "
            f"{summary['step'] - summary['start']} steps this session, {summary['seconds']:.0f}s); "
            f"training steps so far {summary['train_s'] / 60:.1f} {'CPU-' if spec.train.clock == 'cpu' else ''}min; "
            f"last losses: {losses or 'none'}"
        )
        console.print(f"run directory: {run}")


def _resume_changes(run: Path, args: TrainGenArgs, file_values: dict, flags: dict, sets: dict) -> dict:
    """What a ``--resume`` command changes (steps, time limit); every other flag it repeats
    must agree with the run's saved config, so the original command with --resume works."""
    from cxraug import registry
    from cxraug.config import explicit_values, resume_changes
    from cxraug.errors import UserError
    from cxraug.runs import read_run_config

    saved = read_run_config(run)
    if args.plugin is not None and args.plugin != saved["plugin"]:
        raise UserError(
            f"--resume {run.name}: the run's plugin is {saved['plugin']!r}, the command gives {args.plugin!r}; "
            "drop --plugin to continue the run, or start a new run"
        )
    if args.data is not None and Path(args.data).resolve() != Path(saved["data"]["path"]).resolve():
        raise UserError(
            f"--resume {run.name}: the run trains on {saved['data']['path']}, the command gives --data "
            f"{Path(args.data).resolve()}; drop --data to continue the run, or start a new run"
        )
    if args.dry_run:
        raise UserError("--dry-run starts no run; it does not combine with --resume")
    cls = registry.get(saved["plugin"])
    given_train, given_model = explicit_values(cls.Config, file_values, flags, sets)
    return resume_changes(run.name, saved, cls.Config, given_train, given_model)


def _spec_of(data):
    from cxraug.generator import DataSpec

    return DataSpec(classes=tuple(data.classes), size=data.size)


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
