"""``cxraug study`` and ``cxraug report`` from Python: the study's grid of cells with its plan,
and the pages built from finished folders."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from cxraug.api_support import PathLike, PlanOnly, Say, as_path, say_lines, scoped
from cxraug.errors import UserError
from cxraug.lock import output_lock
from cxraug.progress import Reporter
from cxraug.runtime import configure_process
from cxraug.study.config import StudyConfig

if TYPE_CHECKING:
    from cxraug.study.plan import StudyPlan
    from cxraug.study.runner import StudyResult


def study_config(config: StudyConfig | PathLike | None = None, **kwargs: Any) -> StudyConfig:
    """The study's options: a :class:`StudyConfig`, or a YAML file of them (``str`` or
    ``Path``), with ``kwargs`` over it (None values ignored, dicts merged)."""
    from cxraug.study.config import build_config, key_dict

    if isinstance(config, StudyConfig):
        return build_config(None, {**key_dict(config), **kwargs}) if kwargs else config
    return build_config(as_path(config), kwargs)


@scoped
def study(
    config: StudyConfig | PathLike | None = None,
    /,
    *,
    out: PathLike | None = None,
    shard: str | None = None,
    reporter: Reporter | None = None,
    plan_only: bool = False,
    say: Say | None = None,
    **kwargs: Any,
) -> StudyResult:
    """For each rare-class size, generators trained on it alone, their images benchmarked
    against the copy control and the best baseline; one page (``cxraug study``). ``config``: a
    :class:`StudyConfig` or its YAML file, and/or its fields as keywords (``data=``, ``rare=``,
    ``sizes=``, ``gen_steps=`` or ``time_limit=``, ...). ``out`` (or the config's): the study
    folder, continued if it exists. ``shard``: ``"I/K"``, this process's share of the sizes.

    Once the options are checked and before anything is written, its plan (the grid, each cell
    done, started or to make, the estimated time and disk, whether verdicts are reachable) goes
    to ``say``; ``plan_only=True`` returns it (``.plan``) and writes nothing. A grid over the
    time or disk limit is refused then unless ``force=True``. Returns the study's result: its
    folder, its sizes' cells and page once every cell is done (``complete``)."""
    from cxraug.runtime import thread_count
    from cxraug.study.runner import StudyResult, run_study

    cfg = study_config(config, **kwargs)
    # The cells run as `cxraug` processes of their own, which set their threads as a command does;
    # this process only reads the cells' records, so it gets the process settings they inherit.
    configure_process()
    thread_count()  # a bad CXRAUG_THREADS: one line now, not a failed first cell
    planned: list[StudyPlan] = []

    def before_work(plan: StudyPlan) -> None:
        planned.append(plan)
        say_lines(say, plan.lines())
        if plan_only:
            raise PlanOnly

    try:
        return run_study(cfg, as_path(out, "out"), reporter=reporter, shard=shard, before_work=before_work)
    except PlanOnly:
        where = as_path(out, "out") if out is not None else planned[0].out
        return StudyResult(where, cfg, [], complete=False, plan=planned[0])


@scoped
def report(
    benchmark: PathLike,
    out: PathLike,
    *,
    compare: PathLike | None = None,
    note: str = "",
    columns: int = 10,
    overwrite: bool = False,
) -> Path:
    """The study's front page (``cxraug report``) from a benchmark folder (and a compare
    folder); returns the HTML file written."""
    from cxraug.studypage import StudyPageConfig, write_study_page

    configure_process()
    if benchmark is None or out is None:
        raise UserError("report needs a benchmark folder and the page to write: api.report(BENCH, 'index.html')")
    cfg = StudyPageConfig(
        benchmark=as_path(benchmark, "benchmark"), out=as_path(out, "out"), compare=as_path(compare, "compare"),
        note=note, columns=columns,
        overwrite=overwrite,
    )  # fmt: skip
    return write_study_page(cfg)


@scoped
def report_run(run: PathLike) -> Path:
    """Rebuild a train-gen run's own page, ``RUN/run.html`` (``cxraug report --run RUN``): loss
    curves, training-time FID, sample grids over time, the budget used. Returns its path."""
    from cxraug.runpage import rebuild
    from cxraug.runs import read_run_config

    configure_process()
    read_run_config(as_path(run, "run"))  # one line for a folder that is not a run, before its lock file appears
    with output_lock(as_path(run, "run"), "run directory"):  # a training run rewrites it at each checkpoint itself
        return rebuild(as_path(run, "run"))
