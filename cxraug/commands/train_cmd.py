"""``cxraug train-gen`` and ``cxraug plugins``."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from cxraug.commands.common import configure_threads, out_console, user_errors
from cxraug.lock import output_lock


def train_gen(
    plugin: Annotated[Optional[str], typer.Option(help="Generator plugin (see `cxraug plugins`).")] = None,
    data: Annotated[Optional[Path], typer.Option(help="Prepared dataset (from `cxraug prepare`).")] = None,
    out: Annotated[Path, typer.Option(help="Folder of numbered run directories.")] = Path("runs"),
    config: Annotated[Optional[Path], typer.Option(help="YAML config: train:/model: sections or flat keys.")] = None,
    steps: Annotated[Optional[int], typer.Option(help="Total optimisation steps.")] = None,
    batch_size: Annotated[Optional[int], typer.Option(help="Images per step and process.")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Seed of weights, noise and data order.")] = None,
    mixed_precision: Annotated[Optional[str], typer.Option(help="no | fp16 | bf16 (GPU only).")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="key=value override (repeatable).")] = None,
    resume: Annotated[Optional[Path], typer.Option(help="Continue this run directory exactly.")] = None,
    dry_run: Annotated[bool, typer.Option(help="Print the resolved config and exit.")] = False,
) -> None:
    """Train a class-conditional generator on the training patients (Accelerate loop)."""
    _train_gen(**locals())


@user_errors
def _train_gen(**kw) -> None:
    with contextlib.ExitStack() as locks:  # one writer per run directory (cxraug/lock.py)
        _train_gen_locked(locks, **kw)


def _train_gen_locked(locks: contextlib.ExitStack, **kw) -> None:
    from cxraug import registry, runs
    from cxraug.config import load_config_file, parse_sets, resolve
    from cxraug.data.prepared import open_prepared
    from cxraug.errors import UserError
    from cxraug.progress import RichReporter
    from cxraug.train import RunSpec, check_runtime, process_state, spec_from_run, start_run, train

    configure_threads()
    console = out_console()
    if kw["resume"] is not None:
        others = [k for k in ("plugin", "data", "config", "batch_size", "seed", "mixed_precision", "set_") if kw[k]]
        if others:
            raise UserError(
                f"--resume continues a run with its saved config; drop --{others[0].rstrip('_').replace('_', '-')} "
                "(only --steps may change)"
            )
        run = Path(kw["resume"])
        runs.read_run_config(run)  # a clear line for a wrong folder, before any lock file appears
        if process_state().is_main_process:  # before its config.json may change
            locks.enter_context(output_lock(run, "run directory"))
        spec = spec_from_run(run, kw["steps"])
        resume = True
    else:
        if kw["plugin"] is None or kw["data"] is None:
            raise UserError("train-gen needs --plugin and --data (or --resume RUN_DIR)")
        cls = registry.get(kw["plugin"])
        data = open_prepared(kw["data"])
        flags = {k: kw[k] for k in ("steps", "batch_size", "seed", "mixed_precision")}
        train_cfg, model_cfg = resolve(cls.Config, load_config_file(kw["config"]), flags, parse_sets(kw["set_"] or []))
        spec = RunSpec(kw["plugin"], train_cfg, model_cfg, data.root)
        if kw["dry_run"]:
            print(
                json.dumps(
                    {"plugin": spec.plugin, "train": train_cfg.model_dump(), "model": model_cfg.model_dump()}, indent=2
                )
            )
            return
        check_runtime(train_cfg)
        cls(model_cfg, _spec_of(data))  # build once to fail early on a bad model/size combination
        run = start_run(spec, kw["out"])
        if process_state().is_main_process:
            locks.enter_context(output_lock(run, "run directory"))
        resume = False

    main = process_state().is_main_process
    if main:
        console.print(f"run directory: {run}")
    summary = train(run, spec, RichReporter(console, disable=not main), resume=resume)
    if main:
        losses = ", ".join(f"{k} {v:.4g}" for k, v in summary["losses"].items())
        console.print(f"done: {spec.train.steps} steps in {summary['seconds']:.0f}s; last losses: {losses}")
        console.print(f"run directory: {run}")


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
