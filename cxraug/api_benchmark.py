"""``cxraug benchmark`` from Python: its options built as the command builds them, its plan said
(and a benchmark with no reachable verdict stopped) before anything is trained."""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cxraug.api_generators import few_training_images
from cxraug.api_support import FORCE_HINT, PathLike, Say, Warn, as_path, default_warn, say_lines, scoped, set_items
from cxraug.benchmark.config import BenchmarkConfig
from cxraug.errors import UserError
from cxraug.lock import output_lock
from cxraug.progress import Reporter
from cxraug.runtime import configure

if TYPE_CHECKING:
    from cxraug.benchmark.aggregate import BenchmarkReport
    from cxraug.benchmark.forecast import BenchmarkForecast
    from cxraug.benchmark.plan import Plan


@dataclass
class BenchmarkResult:
    """A benchmark folder, its report (None on a process other than the main one, and under
    ``plan_only``), and the plan said before training (None on a process other than the main one)."""

    out: Path
    report: BenchmarkReport | None
    plan: BenchmarkForecast | None = None


def benchmark_config(
    config_file: PathLike | None = None,
    *,
    synthetic: Mapping[str, PathLike | Sequence[PathLike]] | None = None,
    arms: Sequence[str] | None = None,
    seeds: int | Sequence[int] | None = None,
    ratios: Sequence[str] | None = None,
    controlled_imbalance: Mapping[str, int] | None = None,
    controls: bool | None = None,
    sets: Mapping[str, Any] | Sequence[str] | None = None,
) -> BenchmarkConfig:
    """The benchmark's options: defaults < YAML file < these arguments < ``sets``. A synthetic
    set's value is a folder, or several (generator replicates)."""
    from cxraug.benchmark.config import build_config

    syn = {
        name: ",".join(str(p) for p in ([v] if isinstance(v, (str, Path)) else v))
        for name, v in (synthetic or {}).items()
    }
    options = {
        "synthetic": syn or None, "arms": list(arms) if arms else None,
        "seeds": seeds if seeds is None or isinstance(seeds, int) else list(seeds),
        "ratios": list(ratios) if ratios else None,
        "controlled_imbalance": dict(controlled_imbalance) if controlled_imbalance else None, "controls": controls,
    }  # fmt: skip
    return build_config(as_path(config_file), options, set_items(sets))


@scoped
def benchmark(
    data: PathLike,
    config: BenchmarkConfig | None = None,
    /,
    *,
    out: PathLike | None = None,
    overwrite: bool = False,
    spread: str = "auto",
    reporter: Reporter | None = None,
    warn: Warn | None = None,
    plan_only: bool = False,
    force: bool = False,
    say: Say | None = None,
    **kwargs: Any,
) -> BenchmarkResult:
    """Train one classifier under several arms and seeds and answer whether the synthetic images
    help (``cxraug benchmark``). ``config``: a :class:`BenchmarkConfig` (or the keywords of
    :func:`benchmark_config`). Output: ``out`` (default runs/benchmark-<data>).

    Once every check has passed and before anything is trained or written, its plan (the rare
    classes and why, what each synthetic set adds, whether each class can get a verdict and the
    ΔAUROC its test images could detect, the runs and their time from a few timed steps) goes
    to ``say``; when no verdict is reachable it stops there with a UserError unless
    ``force=True``. ``plan_only=True`` returns the plan, training and writing nothing."""
    from cxraug.benchmark.forecast import forecast, measure
    from cxraug.benchmark.runner import run_benchmark
    from cxraug.benchmark.spread import check_spread

    mode = check_spread(spread)
    if config is None:
        config = benchmark_config(**kwargs)
    elif kwargs:
        raise UserError("give the benchmark's options as a BenchmarkConfig or as keywords, not both")
    configure()
    for line in _few_in_synthetic(config):
        (warn or default_warn)(line)
    where = as_path(out, "out") if out is not None else Path("runs") / f"benchmark-{as_path(data, 'data').name}"
    if plan_only:
        plan = _benchmark_plan(as_path(data, "data"), config, where, overwrite)
        say_lines(say, plan.lines())
        if why := plan.unreachable():
            say_lines(say, [f"this benchmark would stop here: {why}; {FORCE_HINT}"])
        return BenchmarkResult(out=where, report=None, plan=plan)
    import os

    main = int(os.environ.get("RANK", "0")) == 0  # under `accelerate launch` every process runs this
    planned: list[BenchmarkForecast] = []

    def before_training(plan: Plan, rare: list[int], rule: str, pending: int) -> None:
        """On every process, checks passed, nothing written: say the plan (main process), and
        stop every process alike when no verdict is reachable and not ``force``."""
        fc = forecast(plan, rare, rule, pending, measure(plan) if main and pending else None)
        if main:
            planned.append(fc)
            say_lines(say, fc.lines())
        why = fc.unreachable()
        if why and pending and not force:
            raise UserError(f"{why}: nothing trained; {FORCE_HINT}")

    with output_lock(where, "benchmark folder") if main else contextlib.nullcontext():
        report = run_benchmark(
            as_path(data, "data"), config, where, overwrite=overwrite, reporter=reporter, spread=mode,
            before_training=before_training,
        )  # fmt: skip
    return BenchmarkResult(out=where, report=report, plan=planned[0] if planned else None)


def _benchmark_plan(data: Path, config: BenchmarkConfig, out: Path, overwrite: bool) -> BenchmarkForecast:
    """The plan alone, from the dataset, the sets and a few timed steps (runs stored in ``out``
    are not counted as to train, unless ``overwrite``); trains and writes nothing."""
    from cxraug.benchmark.forecast import forecast, measure
    from cxraug.benchmark.outfolder import RESULT, run_dir
    from cxraug.benchmark.plan import rare_classes
    from cxraug.benchmark.planning import make_plan

    plan = make_plan(data, config)
    rare, rule = rare_classes(plan)
    jobs = [(a.name, s) for a in plan.arms for s in plan.seeds]
    stored = 0 if overwrite else sum((run_dir(out, a, s) / RESULT).is_file() for a, s in jobs)
    return forecast(plan, rare, rule, len(jobs) - stored, measure(plan))


def _few_in_synthetic(config: BenchmarkConfig) -> list[str]:
    """Warnings for the classes a synthetic set adds whose generator saw fewer than 10 images."""
    from cxraug.synthset import open_synthetic

    lines = []
    for name, first in config.synthetic.items():
        for d in config.synthetic_replicates.get(name) or [first]:
            try:
                line = few_training_images(open_synthetic(d).provenance, f"--synthetic {name}: ")
            except UserError:
                continue  # the benchmark refuses it in its own words
            if line:
                lines.append(line)
    return lines
