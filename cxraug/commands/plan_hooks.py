"""The plan a long command prints before its first step (``--plan`` prints it alone and exits 0),
on stdout (stderr keeps an error to its one line; under score's and compare's --json, stdout
keeps its one JSON object, and the plan goes to stderr):
the commands call these hooks, the plans themselves are built below the interface
(cxraug.benchmark.forecast, cxraug.metrics.workplan, cxraug.trainplan)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from cxraug.errors import UserError

if TYPE_CHECKING:
    from cxraug.benchmark.config import BenchmarkConfig
    from cxraug.benchmark.plan import Plan
    from cxraug.data.prepared import PreparedData
    from cxraug.metrics.score import ScoreConfig
    from cxraug.metrics.sources import FakeSource
    from cxraug.train import RunSpec

FORCE_HINT = "pass --force to train anyway"


class PlanShown(Exception):
    """Raised by a --plan hook once the plan is printed: the command stops there, exit 0."""


def print_lines(lines: list[str], console: Console) -> None:
    for line in lines:
        console.print(line)


def benchmark_plan_only(data: Path, cfg: BenchmarkConfig, out: Path, overwrite: bool, console: Console) -> None:
    """``benchmark --plan``: the plan, from the dataset, the sets and a few timed steps; trains nothing."""
    from cxraug.benchmark.forecast import forecast, measure
    from cxraug.benchmark.plan import rare_classes
    from cxraug.benchmark.runner import RESULT, make_plan, run_dir

    plan = make_plan(Path(data), cfg)
    rare, rule = rare_classes(plan)
    jobs = [(a.name, s) for a in plan.arms for s in plan.seeds]
    stored = 0 if overwrite else sum((run_dir(out, a, s) / RESULT).is_file() for a, s in jobs)
    fc = forecast(plan, rare, rule, len(jobs) - stored, measure(plan))
    print_lines(fc.lines(), console)
    if why := fc.unreachable():
        console.print(f"this benchmark would stop here: {why}; {FORCE_HINT}")


def benchmark_gate(force: bool, console: Console, main: bool) -> Callable[[Plan, list[int], str, int], None]:
    """What run_benchmark calls once its checks pass: print the plan (main process), and stop
    every process alike, before training, when no verdict is reachable and not ``force``."""

    def before_training(plan: Plan, rare: list[int], rule: str, pending: int) -> None:
        from cxraug.benchmark.forecast import forecast, measure

        fc = forecast(plan, rare, rule, pending, measure(plan) if main and pending else None)
        if main:
            print_lines(fc.lines(), console)
        why = fc.unreachable()
        if why and pending and not force:
            raise UserError(f"{why}: nothing trained; {FORCE_HINT}")

    return before_training


def score_hook(
    console: Console, only: bool, data: PreparedData, source: FakeSource, label: str, cfg: ScoreConfig, extractor
) -> Callable[[list[str]], None]:
    """What score calls before drawing any image: print its plan; with ``only`` (--plan), stop."""
    from cxraug.metrics.workplan import extraction_plan

    def before_work(classes: list[str]) -> None:
        print_lines(extraction_plan("score", data, classes, cfg, {label: source}, extractor).lines(), console)
        if only:
            raise PlanShown

    return before_work


def compare_hook(
    console: Console, only: bool, score: ScoreConfig, extractor
) -> Callable[[PreparedData, list[str], dict[str, FakeSource]], None]:
    """What compare calls before drawing any image: print its plan; with ``only`` (--plan), stop."""
    from cxraug.metrics.workplan import extraction_plan

    def before_work(data: PreparedData, classes: list[str], sources: dict[str, FakeSource]) -> None:
        print_lines(extraction_plan("compare", data, classes, score, sources, extractor).lines(), console)
        if only:
            raise PlanShown

    return before_work


def print_train_plan(spec: RunSpec, run: Path | None, console: Console) -> None:
    """train-gen's plan (main process): the budget and its duration, from a few steps timed here."""
    from cxraug.accel import process_state
    from cxraug.data.prepared import open_prepared
    from cxraug.fsutil import read_jsonl
    from cxraug.runs import METRICS, checkpoints
    from cxraug.trainplan import train_plan

    state = process_state()
    if not state.is_main_process:
        return
    found = checkpoints(run) if run is not None else []
    start = found[-1][0] if found else 0
    used = 0.0  # training seconds up to the checkpoint it resumes from, as the run logged them
    if start and (run / METRICS).is_file():
        logged = [r for r in read_jsonl(run / METRICS) if isinstance(r.get("train_s"), int | float)]
        used = max((float(r["train_s"]) for r in logged if (r.get("step") or 0) <= start), default=0.0)
    plan = train_plan(spec, open_prepared(spec.data_path), state.num_processes, start, used)
    print_lines(plan.lines(), console)
