"""``cxraug compare`` from Python: generator runs side by side on the same real images, n, seed
and network, with what each cost; its plan said before any image is drawn."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cxraug.api_support import PathLike, PlanOnly, Say, as_path, say_lines, scoped, set_items, with_options
from cxraug.errors import UserError
from cxraug.lock import output_lock
from cxraug.progress import Reporter
from cxraug.runtime import configure

if TYPE_CHECKING:
    import pandas as pd

    from cxraug.compare.core import CompareConfig, CompareResult
    from cxraug.data.prepared import PreparedData
    from cxraug.metrics.score import ScoreConfig
    from cxraug.metrics.sources import FakeSource
    from cxraug.metrics.workplan import ExtractionPlan


@dataclass
class CompareRun:
    """A compare folder: where it is, the quality table (compare.csv as a DataFrame), the result,
    and the plan said before the work (under ``plan_only``, the plan alone: the rest is None)."""

    out: Path | None
    table: pd.DataFrame | None
    result: CompareResult | None
    plan: ExtractionPlan | None = None


@scoped
def compare(
    runs: Sequence[PathLike],
    config: ScoreConfig | None = None,
    /,
    *,
    data: PathLike | None = None,
    benchmark: PathLike | None = None,
    bootstrap: int = 1000,
    confidence: float = 0.95,
    allow_different_data: bool = False,
    speed_images: int = 128,
    grid: int = 8,
    device: str = "auto",
    inception_weights: PathLike | None = None,
    out: PathLike | None = None,
    overwrite: bool = False,
    sample_options: Mapping[str, Any] | Sequence[str] | None = None,
    reporter: Reporter | None = None,
    plan_only: bool = False,
    say: Say | None = None,
    **kwargs: Any,
) -> CompareRun:
    """Generator runs side by side on the same real images, n, seed and network, with what each
    cost (``cxraug compare``). ``runs``: run folders, or ``"NAME=RUN1,RUN2"`` for replicates.
    Options of :class:`ScoreConfig` as a config or keywords. Its plan (images to draw and
    extract, the time measured on a few) goes to ``say`` before any image is drawn;
    ``plan_only=True`` returns it, writing nothing. Returns the folder, its table and the plan."""
    import pandas as pd

    from cxraug.compare.core import compare as run_compare
    from cxraug.compare.output import write_outputs
    from cxraug.fsutil import check_output
    from cxraug.metrics.features import load_feature_extractor, resolve_device
    from cxraug.metrics.inception import locate_inception_weights
    from cxraug.metrics.score import ScoreConfig
    from cxraug.metrics.workplan import extraction_plan

    configure()
    sc = with_options(ScoreConfig, config, kwargs)
    cfg = _compare_config(
        runs, sc, data=data, benchmark=benchmark, bootstrap=bootstrap, confidence=confidence,
        allow_different_data=allow_different_data, speed_images=speed_images, grid=grid,
        sample_options=sample_options,
    )  # fmt: skip
    cfg.validate()  # every option before loading anything slow or touching an image
    resolve_device(device)
    planned: list[ExtractionPlan] = []

    def before_work(data: PreparedData, classes: list[str], sources: dict[str, FakeSource]) -> None:  # nothing drawn
        plan = extraction_plan("compare", data, classes, sc, sources, extractor)
        planned.append(plan)
        say_lines(say, plan.lines())
        if plan_only:
            raise PlanOnly

    if plan_only:  # before any output folder or lock
        extractor = load_feature_extractor(locate_inception_weights(as_path(inception_weights)), device)
        with contextlib.suppress(PlanOnly):
            run_compare(cfg, extractor, device, before_work=before_work)
        return CompareRun(out=None, table=None, result=None, plan=planned[0])
    where = as_path(out, "out") if out is not None else _compare_out(cfg)
    # before the work, not after it
    check_output(where, "compare folder", "compare.json", _compare_inputs(cfg), overwrite)
    with output_lock(where, "compare folder"):
        weights = locate_inception_weights(as_path(inception_weights))  # missing weights: fail before sampling
        extractor = load_feature_extractor(weights, device)
        result = run_compare(cfg, extractor, device, reporter, before_work=before_work)
        write_outputs(result, where, overwrite=overwrite)
    return CompareRun(out=where, table=pd.read_csv(where / "compare.csv"), result=result, plan=planned[0])


def _compare_config(
    runs: Sequence[PathLike],
    sc: ScoreConfig,
    *,
    data: PathLike | None,
    benchmark: PathLike | None,
    bootstrap: int,
    confidence: float,
    allow_different_data: bool,
    speed_images: int,
    grid: int,
    sample_options: Mapping[str, Any] | Sequence[str] | None,
) -> CompareConfig:
    """compare's options as the one config its work takes (runs parsed into arms)."""
    from cxraug.compare.bootstrap import BootstrapConfig
    from cxraug.compare.core import CompareConfig
    from cxraug.compare.replicated import ArmSpec
    from cxraug.config import parse_sets
    from cxraug.replicates import parse_arm

    if isinstance(runs, (str, os.PathLike)):  # one str would be read letter by letter
        raise UserError(f"compare takes a list of runs, e.g. [run_a, run_b] (got one: {str(runs)!r:.80})")
    specs = [parse_arm(str(as_path(a, "each run"))) for a in runs]
    arms = [ArmSpec(name, tuple(Path(p) for p in parts)) for name, parts in specs]
    return CompareConfig(
        runs=[r for a in arms for r in a.runs],
        arms=arms if any(name or len(parts) > 1 for name, parts in specs) else [], score=sc, data=as_path(data, "data"),
        allow_different_data=allow_different_data,
        bootstrap=BootstrapConfig(resamples=bootstrap, confidence=confidence, seed=sc.seed),
        speed_images=speed_images, grid_columns=grid, benchmark=as_path(benchmark),
        sample_values=parse_sets(set_items(sample_options)),
    )  # fmt: skip


def _compare_inputs(cfg: CompareConfig) -> list[Path]:
    """What a compare reads: each run's files, the dataset's and the benchmark folder given."""
    from cxraug.data.prepared import dataset_files
    from cxraug.runs import run_inputs

    inputs = [p for r in cfg.runs for p in run_inputs(r)]
    return [*inputs, *(dataset_files(cfg.data) if cfg.data else []), *([cfg.benchmark] if cfg.benchmark else [])]


def _compare_out(cfg: CompareConfig) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    base = Path(cfg.runs[0]).resolve().parent / "compare" / f"{cfg.score.split}-{stamp}"
    out, k = base, 1
    while out.exists():
        k += 1
        out = base.with_name(f"{base.name}-{k}")
    return out
