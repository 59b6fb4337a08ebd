"""cxraug from Python: one function per command, the same work the command line does.

Each function takes a typed config object or keyword arguments (paths as ``str`` or ``Path``
alike), sets up threads and malloc as the CLI does (:func:`cxraug.runtime.configure`), and
returns a typed result; nothing is printed. ``cxraug.commands`` parse options, call these and
print. A mistake in the inputs raises :class:`cxraug.errors.UserError` (its message is the
CLI's one line). Warnings a user would want (a size no plugin trains, a class with very few
training images, a score that will take long) go to ``warn`` (default: :func:`warnings.warn`
with :class:`CxraugWarning`). The long ones (train_gen, score, compare, benchmark, study) build a plan
before their first step (what they will do, and how long it should take, from a few steps
timed here): it is on their result (``.plan``), its lines go to ``say`` as soon as it is built
(default: nowhere), and ``plan_only=True`` returns it without doing the work. A walk through
the whole study: docs/api.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from cxraug.benchmark.config import BenchmarkConfig
from cxraug.data.prepare import PrepareConfig, PrepareResult
from cxraug.errors import UserError
from cxraug.lock import output_lock, reading_scope
from cxraug.progress import Reporter
from cxraug.runtime import configure, configure_process
from cxraug.study.config import StudyConfig

if TYPE_CHECKING:
    import pandas as pd

    from cxraug.benchmark.aggregate import BenchmarkReport
    from cxraug.benchmark.forecast import BenchmarkForecast
    from cxraug.compare.core import CompareResult
    from cxraug.metrics.score import ScoreConfig, ScoreResult
    from cxraug.metrics.workplan import ExtractionPlan
    from cxraug.study.plan import StudyPlan
    from cxraug.study.runner import StudyResult
    from cxraug.synth import SynthConfig
    from cxraug.synthset import SyntheticSet
    from cxraug.train import RunSpec
    from cxraug.trainplan import TrainPlan

# Importing this module stays cheap (`cxraug prepare` and `report` never load torch): the
# configs of the torch-side modules are imported when first named.
_LAZY = {"ScoreConfig": "cxraug.metrics.score", "SynthConfig": "cxraug.synth", "StudyResult": "cxraug.study.runner"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'cxraug.api' has no attribute {name!r}")


__all__ = [
    "BenchmarkConfig", "BenchmarkResult", "CompareRun", "CxraugWarning", "PrepareConfig", "PrepareResult",
    "ScoreConfig", "Scores", "StudyConfig", "StudyResult", "SynthConfig", "TrainGenConfig", "TrainedRun",
    "benchmark", "compare", "prepare", "reduce", "report", "report_run", "score", "study", "study_config", "synth",
    "train_gen",
]  # fmt: skip

PathLike = str | Path
Warn = Callable[[str], None]
Say = Callable[[str], None]  # takes a plan's lines, one at a time (the CLI prints them)
C = TypeVar("C")

FEW_TRAINING_IMAGES = 10  # a class a generator saw fewer training images of: its samples say little
SLOW_SCORE_SECONDS = 180  # a score expected to take longer than this is said before it starts


class CxraugWarning(UserWarning):
    """Something a user would want to know before relying on a result (never an error)."""


FORCE_HINT = "pass --force to train anyway"  # from Python: force=True


class _PlanOnly(Exception):
    """Raised by a plan hook under ``plan_only``, once the plan is built: the work stops there."""


def _say(say: Say | None, lines: list[str]) -> None:
    for line in lines if say is not None else []:
        say(line)


def _default_warn(message: str) -> None:
    warnings.warn(message, CxraugWarning, stacklevel=4)  # the caller of the api function (past _scoped)


def _config(cls: type[C], config: C | None, kwargs: dict[str, Any]) -> C:
    """``config`` with ``kwargs`` replaced, or ``cls(**kwargs)``; an unknown key is a user error."""
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(kwargs) - names)
    if unknown:
        raise UserError(f"{cls.__name__} has no option {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    if config is None:
        return cls(**kwargs)
    return dataclasses.replace(config, **kwargs) if kwargs else config  # type: ignore[type-var]


def _path(p: PathLike | None, what: str = "a path") -> Path | None:
    """``p`` as a Path; anything but a str or path-like is one line, not pathlib's TypeError."""
    if p is None:
        return None
    if not isinstance(p, (str, os.PathLike)):
        raise UserError(f"{what} must be a str or Path (got {type(p).__name__} {p!r:.60})")
    return Path(p)


def _sets(values: Mapping[str, Any] | Sequence[str] | None) -> list[str]:
    """``--set`` items from a mapping (Python) or ``key=value`` strings (the CLI)."""
    if values is None:
        return []
    if isinstance(values, Mapping):
        import json

        return [f"{k}={v if isinstance(v, str) else json.dumps(v)}" for k, v in values.items()]
    if isinstance(values, str) or any(not isinstance(v, str) for v in values):
        raise UserError(f"sets: give a dict {{key: value}} or a list of 'key=value' strings (got {values!r:.60})")
    return list(values)


def _scoped(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Hold the inputs' shared locks for the whole call, as a command does (cxraug/lock.py)."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with reading_scope():
            return fn(*args, **kwargs)

    return wrapper


# --- prepare ---------------------------------------------------------------------------------


@_scoped
def prepare(
    config: PrepareConfig | None = None, /, *, reporter: Reporter | None = None, warn: Warn | None = None, **kwargs: Any
) -> PrepareResult:
    """Build a prepared dataset (``cxraug prepare``): ``prepare(source="sample", out="data/s")``
    or ``prepare(PrepareConfig(...))``. Returns its folder (``.out``) and dataset.json (``.meta``)."""
    from cxraug.data.prepare import prepare as run_prepare

    configure_process()
    cfg = _config(PrepareConfig, config, kwargs)
    result = run_prepare(cfg, reporter)
    # After the work: asking the plugins loads them (and torch), which the decoding pool, forked
    # during the work, should not inherit.
    size_warning = trainable_size_warning(cfg.size)
    if size_warning:
        (warn or _default_warn)(size_warning)
    return result


def trainable_size_warning(size: int) -> str | None:
    """A line when no installed generator plugin can train ``size`` px images, else None."""
    from cxraug import registry

    sizes = registry.trainable_sizes()
    if not sizes or any(size in s for s in sizes.values()):
        return None
    known = "; ".join(f"{name}: {', '.join(map(str, s))}" for name, s in sizes.items())
    return (
        f"no installed generator plugin trains {size} px images ({known} px); "
        "the dataset can be benchmarked, but train-gen will refuse it: prepare again with one of those --size values"
    )


def reduce(data: PathLike, out: PathLike, keep: Mapping[str, int], *, seed: int = 0, overwrite: bool = False) -> Path:
    """A copy of a prepared dataset with only ``keep[CLASS]`` training images of each named class,
    chosen by patient (val and test unchanged): a rare class made rare on purpose, to train a
    generator on (``cxraug benchmark --controlled-imbalance CLASS=N --export-reduced OUT``)."""
    from cxraug.benchmark import runner

    configure_process()
    cfg = benchmark_config(controlled_imbalance=keep, sets={"imbalance_seed": seed})
    with reading_scope():
        return runner.export_reduced(_path(data, "data"), cfg, _path(out, "out"), overwrite)


# --- train-gen -------------------------------------------------------------------------------


@dataclass
class TrainGenConfig:
    """``cxraug train-gen``'s inputs. Training keys left None come from the YAML ``config`` file,
    then the plugin's defaults (``cxraug train-gen --plugin P --data D --dry-run`` shows them)."""

    plugin: str | None = None
    data: Path | None = None
    out: Path = Path("runs")  # the folder of numbered run directories
    config: Path | None = None  # YAML: train:/model: sections or flat keys
    steps: int | None = None
    time_limit: float | None = None  # minutes of training steps
    batch_size: int | None = None
    seed: int | None = None
    mixed_precision: str | None = None
    sets: list[str] | dict[str, Any] = field(default_factory=list)  # key=value overrides (plugin model keys too)
    resume: Path | None = None  # continue this run exactly

    def __post_init__(self) -> None:
        self.data, self.config = _path(self.data, "data"), _path(self.config, "config")
        self.resume = _path(self.resume, "resume")
        self.out = _path(self.out, "out")  # type: ignore[assignment]

    def flags(self) -> dict[str, Any]:
        """The options that are training keys (None: not given)."""
        return {"steps": self.steps, "time_limit": self.time_limit, "batch_size": self.batch_size,
                "seed": self.seed, "mixed_precision": self.mixed_precision}  # fmt: skip


@dataclass
class TrainedRun:
    """A trained run: its folder (what synth and score take) and what the session did."""

    run: Path | None  # None: plan_only on a new run (no folder made)
    step: int  # the run's step at the end
    reason: str  # why it stopped: "steps" or "time_limit"; "plan": plan_only, nothing trained
    summary: dict[str, Any]  # losses, seconds, steps this session, training time so far ({} under plan_only)
    plan: TrainPlan | None = None  # the budget and its estimated duration (None on a process other than the main one)


def resolved_train_config(config: TrainGenConfig | None = None, /, **kwargs: Any) -> dict[str, Any]:
    """The plugin, training and model keys a new run would get (``train-gen --dry-run``)."""
    from cxraug import registry
    from cxraug.config import load_config_file, parse_sets, resolve
    from cxraug.data.prepared import open_prepared

    cfg = _config(TrainGenConfig, config, kwargs)
    if cfg.plugin is None or cfg.data is None:
        raise UserError("train-gen needs --plugin and --data (or --resume RUN_DIR)")
    cls = registry.get(cfg.plugin)
    open_prepared(cfg.data)  # a wrong folder is one line here too
    train_cfg, model_cfg = resolve(cls.Config, load_config_file(cfg.config), cfg.flags(), parse_sets(_sets(cfg.sets)))
    return {"plugin": cfg.plugin, "train": train_cfg.model_dump(), "model": model_cfg.model_dump()}


@_scoped
def train_gen(
    config: TrainGenConfig | None = None,
    /,
    *,
    reporter: Reporter | None = None,
    on_start: Callable[[Path], None] | None = None,
    plan_only: bool = False,
    say: Say | None = None,
    **kwargs: Any,
) -> TrainedRun:
    """Train a class-conditional generator (``cxraug train-gen``): a new numbered run in
    ``out``, or ``resume=RUN`` to continue one. Its plan (the budget in steps, images, passes
    and time, its duration from a few steps of a throwaway copy timed here) goes to ``say``
    before the first step; ``plan_only=True`` returns it having written nothing (no run folder,
    a resumed run's config unchanged). ``on_start(run)`` is called once the run folder exists,
    before the first step. Returns the run folder, how the session ended, and the plan."""
    configure()
    cfg = _config(TrainGenConfig, config, kwargs)
    with contextlib.ExitStack() as locks:  # one writer per run directory (cxraug/lock.py)
        return _train_gen_locked(locks, cfg, reporter, on_start, plan_only, say)


def _train_gen_locked(
    locks: contextlib.ExitStack,
    cfg: TrainGenConfig,
    reporter: Reporter | None,
    on_start: Callable[[Path], None] | None,
    plan_only: bool,
    say: Say | None,
) -> TrainedRun:
    from cxraug import registry, runs
    from cxraug.accel import process_state
    from cxraug.config import TrainConfig, load_config_file, parse_sets, resolve, validated
    from cxraug.data.prepared import open_prepared
    from cxraug.generator import DataSpec
    from cxraug.metrics.training import check_training_metrics, training_evaluation
    from cxraug.train import RunSpec, check_batch_memory, check_runtime, spec_from_run, start_run, train

    flags = cfg.flags()
    file_values, sets = load_config_file(cfg.config), parse_sets(_sets(cfg.sets))
    if cfg.resume is not None:
        run = cfg.resume
        runs.read_run_config(run)  # a clear line for a wrong folder, before any lock file appears
        changes = _resume_changes(run, cfg, file_values, flags, sets)
        if process_state().is_main_process:  # before its config.json may change
            locks.enter_context(output_lock(run, "run directory"))
        if plan_only:  # the changes applied in memory only: the plan writes nothing
            spec = spec_from_run(run)
            spec = dataclasses.replace(
                spec, train=validated(TrainConfig, {**spec.train.model_dump(), **changes}, "option")
            )
            plan = _train_plan(spec, run, say)
            return TrainedRun(run=run, step=plan.start if plan else 0, reason="plan", summary={}, plan=plan)
        spec = spec_from_run(run, changes)
        plan = _train_plan(spec, run, say)
        resume = True
    else:
        if cfg.plugin is None or cfg.data is None:
            raise UserError("train-gen needs --plugin and --data (or --resume RUN_DIR)")
        cls = registry.get(cfg.plugin)
        data = open_prepared(cfg.data)
        train_cfg, model_cfg = resolve(cls.Config, file_values, flags, sets)
        spec = RunSpec(cfg.plugin, train_cfg, model_cfg, data.root)
        check_runtime(train_cfg)
        check_batch_memory(train_cfg, data)
        check_training_metrics(train_cfg)
        cls(model_cfg, DataSpec(classes=tuple(data.classes), size=data.size))  # fail early on a bad model/size
        plan = _train_plan(spec, None, say)
        if plan_only:  # before any run folder
            return TrainedRun(run=None, step=0, reason="plan", summary={}, plan=plan)
        run = start_run(spec, cfg.out)
        if process_state().is_main_process:
            locks.enter_context(output_lock(run, "run directory"))
        resume = False
    state = process_state()
    if on_start is not None and state.is_main_process:
        on_start(run)
    check_runtime(spec.train)  # a resumed run's too, before a reference classifier may train
    evaluation = training_evaluation(spec.train, open_prepared(spec.data_path), state)
    summary = train(run, spec, reporter, resume=resume, evaluation=evaluation)
    return TrainedRun(run=run, step=int(summary["step"]), reason=str(summary["reason"]), summary=summary, plan=plan)


def _train_plan(spec: RunSpec, run: Path | None, say: Say | None) -> TrainPlan | None:
    """train-gen's plan (main process; None on the others): the budget and its duration, from a
    few steps timed here; a resumed ``run`` counts from its last checkpoint and the time spent."""
    from cxraug.accel import process_state
    from cxraug.data.prepared import open_prepared
    from cxraug.fsutil import read_jsonl
    from cxraug.runs import METRICS, checkpoints
    from cxraug.trainplan import train_plan

    state = process_state()
    if not state.is_main_process:
        return None
    found = checkpoints(run) if run is not None else []
    start = found[-1][0] if found else 0
    used = 0.0  # training seconds up to the checkpoint it resumes from, as the run logged them
    if run is not None and start and (run / METRICS).is_file():
        logged = [r for r in read_jsonl(run / METRICS) if isinstance(r.get("train_s"), int | float)]
        used = max((float(r["train_s"]) for r in logged if (r.get("step") or 0) <= start), default=0.0)
    plan = train_plan(spec, open_prepared(spec.data_path), state.num_processes, start, used)
    _say(say, plan.lines())
    return plan


def _resume_changes(run: Path, cfg: TrainGenConfig, file_values: dict, flags: dict, sets: dict) -> dict:
    """What a resume changes (steps, time limit); every other option it repeats must agree with
    the run's saved config, so the original command with --resume works."""
    from cxraug import registry
    from cxraug.config import explicit_values, resume_changes
    from cxraug.runs import read_run_config

    saved = read_run_config(run)
    if cfg.plugin is not None and cfg.plugin != saved["plugin"]:
        raise UserError(
            f"--resume {run.name}: the run's plugin is {saved['plugin']!r}, the command gives {cfg.plugin!r}; "
            "drop --plugin to continue the run, or start a new run"
        )
    if cfg.data is not None and cfg.data.resolve() != Path(saved["data"]["path"]).resolve():
        raise UserError(
            f"--resume {run.name}: the run trains on {saved['data']['path']}, the command gives --data "
            f"{cfg.data.resolve()}; drop --data to continue the run, or start a new run"
        )
    cls = registry.get(saved["plugin"])
    given_train, given_model = explicit_values(cls.Config, file_values, flags, sets)
    return resume_changes(run.name, saved, cls.Config, given_train, given_model)


# --- synth -----------------------------------------------------------------------------------


@_scoped
def synth(
    config: SynthConfig | None = None, /, *, reporter: Reporter | None = None, warn: Warn | None = None, **kwargs: Any
) -> SyntheticSet:
    """Write ``n`` synthetic images per class from a trained run (``cxraug synth``):
    ``synth(run="runs/00001-cgan-x", classes=["No Finding"], n=100)``. Returns the set (its
    folder ``.root``, its ``.provenance``), which score, benchmark and report take."""
    from cxraug.synth import SynthConfig
    from cxraug.synth import synth as run_synth
    from cxraug.synthset import open_synthetic

    configure()
    cfg = _config(SynthConfig, config, kwargs)
    syn = open_synthetic(run_synth(cfg, reporter))
    few = few_training_images(syn.provenance)
    if few:  # after the work: a refused synth gets its one error line alone
        (warn or _default_warn)(few)
    return syn


def few_training_images(provenance: Mapping[str, Any], what: str = "") -> str | None:
    """One line naming the classes of a synthetic set whose generator saw fewer than 10 training
    images of them (from the set's provenance), or None. Classes it saw none of are refused or
    left out by synth itself."""
    data = provenance.get("data")
    counts = data.get("counts_train") if isinstance(data, dict) else None
    if not isinstance(counts, dict):
        return None  # a set written before the counts were recorded
    requested = provenance.get("requested") or []
    low = [
        f"{c} ({counts[c]})"
        for c in requested
        if isinstance(counts.get(c), int) and 0 < counts[c] < FEW_TRAINING_IMAGES
    ]
    if not low:
        return None
    return (
        f"{what}the generator saw fewer than {FEW_TRAINING_IMAGES} training images of {', '.join(low)}; "
        "its samples of those can be little more than copies of them, and a benchmark on them says little"
    )


# --- score -----------------------------------------------------------------------------------


@dataclass
class Scores:
    """A score folder: where it is, the per-class table (scores.csv as a DataFrame), the result,
    and the plan said before the work (under ``plan_only``, the plan alone: the rest is None)."""

    out: Path | None
    table: pd.DataFrame | None
    result: ScoreResult | None
    plan: ExtractionPlan | None = None


FASTEST_IMG_PER_S_PER_THREAD = 50.0  # Inception on a fast CPU core, generously: below this bound, no need to time it


def measure_img_per_s(extractor: Any, size: int, n: int = 8) -> float:
    """The extractor's speed here and now: one warm-up image, then ``n`` timed (a few seconds
    on a busy CPU), so the estimate reflects this machine's load and threads."""
    import numpy as np

    blank = np.zeros((n, size, size), np.uint8)
    extractor.extract(blank[:1], batch_size=1)
    t0 = time.perf_counter()
    extractor.extract(blank, batch_size=n)
    return n / max(time.perf_counter() - t0, 1e-9)


def slow_score_warning(n: int, classes: int, n_real: int, img_per_s: float) -> str | None:
    """A line when reading the default ``n`` per class (and the real side) takes more than a few minutes."""
    seconds = (n * classes + n_real) / img_per_s
    if seconds <= SLOW_SCORE_SECONDS:
        return None
    return (
        f"scoring samples {n:,} images per class x {classes} class(es), and reads {n_real:,} real ones: about "
        f"{seconds / 60:.0f} minutes of the FID network alone at the {img_per_s:.0f} img/s measured here; "
        "lower it with --n (e.g. --n 200) or --classes"
    )


@_scoped
def score(
    config: ScoreConfig | None = None,
    /,
    *,
    run: PathLike | None = None,
    images: PathLike | None = None,
    data: PathLike | None = None,
    out: PathLike | None = None,
    overwrite: bool = False,
    device: str = "auto",
    inception_weights: PathLike | None = None,
    sample_options: Mapping[str, Any] | Sequence[str] | None = None,
    allow_different_data: bool = False,
    reporter: Reporter | None = None,
    warn: Warn | None = None,
    plan_only: bool = False,
    say: Say | None = None,
    **kwargs: Any,
) -> Scores:
    """FID / KID and more per class (``cxraug score``) of a run's generator (``run=``) or a
    synthetic set (``images=``) against real images of ``data`` (default: the data the generator
    was trained on). Options of :class:`ScoreConfig` (split, n, classes, metrics, ...) as a config
    or keywords. Its plan (images to draw and extract, the time measured on a few) goes to
    ``say`` before any image is drawn; ``plan_only=True`` returns it, writing nothing. Returns
    the score folder, its table and the plan."""
    import pandas as pd

    from cxraug.data.prepared import check_trained_on, dataset_files, open_prepared
    from cxraug.fsutil import check_appendable, check_output
    from cxraug.metrics.features import load_feature_extractor, resolve_device
    from cxraug.metrics.inception import locate_inception_weights
    from cxraug.metrics.report import default_out_dir, write_outputs
    from cxraug.metrics.score import ScoreConfig
    from cxraug.metrics.score import score as run_score
    from cxraug.metrics.workplan import extraction_plan

    configure()
    cfg = _config(ScoreConfig, config, kwargs)
    default_n = cfg.n == ScoreConfig.n  # an n the user chose is theirs; the default one is said
    if (run is None) == (images is None):
        raise UserError("pass either --run RUN (sample its generator) or --images DIR (a `cxraug synth` set)")
    cfg.validate()  # every option before loading anything slow or touching an image
    resolve_device(device)
    with contextlib.ExitStack() as locks:  # one writer per score folder
        weights = locate_inception_weights(_path(inception_weights))  # missing weights: fail before sampling
        source, owner, trained, inputs, step = _score_source(run, images, cfg, device, _sets(sample_options))
        if data is None and not trained.get("path"):
            raise UserError("the generator's training data is not recorded; pass --data DATA")
        prepared = open_prepared(data or trained["path"])
        if not allow_different_data:  # as compare does: a number on other data is not this run's
            check_trained_on(prepared, {owner.name: trained}, "pass --allow-different-data to score on it anyway")
        planned: list[ExtractionPlan] = []

        def before_work(classes: list[str]) -> None:  # every check passed, no image drawn yet
            plan = extraction_plan("score", prepared, classes, cfg, {owner.name: source}, extractor)
            planned.append(plan)
            _say(say, plan.lines())
            if plan_only:
                raise _PlanOnly

        if plan_only:  # before any output folder or lock
            extractor = load_feature_extractor(weights, device)
            with contextlib.suppress(_PlanOnly):
                run_score(prepared, source, cfg, extractor, before_work=before_work)
            return Scores(out=None, table=None, result=None, plan=planned[0])
        where = _path(out, "out") if out is not None else default_out_dir(owner, cfg.split, step)
        check_output(where, "score folder", "scores.json", [*inputs, *dataset_files(prepared.root)], overwrite)
        locks.enter_context(output_lock(where, "score folder"))  # also fails now, not after the work, if unwritable
        check_appendable(owner / "metrics.jsonl")  # the run's log takes the result's line after the work
        extractor = load_feature_extractor(weights, device)
        slow = _slow_score(prepared, cfg, extractor) if run is not None and default_n else None
        if slow:  # sampling a run at the default n: the one case that can take an hour unannounced
            (warn or _default_warn)(slow)
        result = run_score(prepared, source, cfg, extractor, reporter, before_work=before_work)
        write_outputs(result, where, owner / "metrics.jsonl", overwrite=overwrite)
    return Scores(out=where, table=pd.read_csv(where / "scores.csv"), result=result, plan=planned[0])


def _slow_score(prepared: Any, cfg: ScoreConfig, extractor: Any) -> str | None:
    """The warning for the images a score will read, if they take more than a few minutes."""
    from cxraug.classes import resolve_classes
    from cxraug.runtime import thread_count

    counts = prepared.counts(cfg.split)
    present = [c for c, k in counts.items() if k]
    try:
        classes = resolve_classes(cfg.classes, present) if cfg.classes else present
    except ValueError:
        return None  # score names the bad class itself
    n_real = sum(counts.get(c, 0) for c in classes)
    optimistic = FASTEST_IMG_PER_S_PER_THREAD * thread_count()
    if slow_score_warning(cfg.n, len(classes), n_real, optimistic) is None:
        return None  # fast enough even at the best speed: not worth timing
    return slow_score_warning(cfg.n, len(classes), n_real, measure_img_per_s(extractor, prepared.size))


def _score_source(
    run: PathLike | None, images: PathLike | None, cfg: ScoreConfig, device: str, sets: list[str]
) -> tuple[Any, Path, dict, list[Path], Any]:
    """The synthetic images, the folder that owns the results, the generator's training data
    as its run recorded it (path, fingerprint, identity), the files read, and the generator's step."""
    from cxraug.metrics.sources import generator_source, images_source

    if images is not None:
        from cxraug.synthset import open_synthetic, set_files

        syn = open_synthetic(images)
        if sets:
            raise UserError("--set applies to --run (sampling now); a synthetic set is already sampled")
        trained = syn.provenance.get("data")
        trained = trained if isinstance(trained, dict) else {}
        return images_source(syn), _path(images, "images"), trained, set_files(syn.root), syn.provenance.get("step")
    from cxraug.config import parse_sets
    from cxraug.metrics.features import resolve_device
    from cxraug.runs import load_generator, run_inputs

    assert run is not None
    gen, meta = load_generator(_path(run, "run"))
    options = gen.parse_sample_options(parse_sets(sets))
    gen.to(resolve_device(device))
    info = {"run": str(_path(run, "run").resolve()), "step": meta.get("step"), "plugin": meta.get("plugin")}
    source = generator_source(gen, seed=cfg.seed, batch_size=cfg.batch_size, options=options, info=info)
    return source, _path(run, "run"), meta.get("data") or {}, run_inputs(_path(run, "run")), meta.get("step")


# --- compare ---------------------------------------------------------------------------------


@dataclass
class CompareRun:
    """A compare folder: where it is, the quality table (compare.csv as a DataFrame), the result,
    and the plan said before the work (under ``plan_only``, the plan alone: the rest is None)."""

    out: Path | None
    table: pd.DataFrame | None
    result: CompareResult | None
    plan: ExtractionPlan | None = None


@_scoped
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

    from cxraug.compare.bootstrap import BootstrapConfig
    from cxraug.compare.core import CompareConfig
    from cxraug.compare.core import compare as run_compare
    from cxraug.compare.output import write_outputs
    from cxraug.compare.replicated import ArmSpec
    from cxraug.config import parse_sets
    from cxraug.data.prepared import dataset_files
    from cxraug.fsutil import check_output
    from cxraug.metrics.features import load_feature_extractor, resolve_device
    from cxraug.metrics.inception import locate_inception_weights
    from cxraug.metrics.score import ScoreConfig
    from cxraug.metrics.workplan import extraction_plan
    from cxraug.replicates import parse_arm
    from cxraug.runs import run_inputs

    configure()
    sc = _config(ScoreConfig, config, kwargs)
    if isinstance(runs, (str, os.PathLike)):  # one str would be read letter by letter
        raise UserError(f"compare takes a list of runs, e.g. [run_a, run_b] (got one: {str(runs)!r:.80})")
    specs = [parse_arm(str(_path(a, "each run"))) for a in runs]
    arms = [ArmSpec(name, tuple(Path(p) for p in parts)) for name, parts in specs]
    cfg = CompareConfig(
        runs=[r for a in arms for r in a.runs],
        arms=arms if any(name or len(parts) > 1 for name, parts in specs) else [], score=sc, data=_path(data, "data"),
        allow_different_data=allow_different_data,
        bootstrap=BootstrapConfig(resamples=bootstrap, confidence=confidence, seed=sc.seed),
        speed_images=speed_images, grid_columns=grid, benchmark=_path(benchmark),
        sample_values=parse_sets(_sets(sample_options)),
    )  # fmt: skip
    cfg.validate()  # every option before loading anything slow or touching an image
    resolve_device(device)
    planned: list[ExtractionPlan] = []

    def before_work(data: Any, classes: list[str], sources: dict[str, Any]) -> None:  # checked, nothing drawn
        plan = extraction_plan("compare", data, classes, sc, sources, extractor)
        planned.append(plan)
        _say(say, plan.lines())
        if plan_only:
            raise _PlanOnly

    if plan_only:  # before any output folder or lock
        extractor = load_feature_extractor(locate_inception_weights(_path(inception_weights)), device)
        with contextlib.suppress(_PlanOnly):
            run_compare(cfg, extractor, device, before_work=before_work)
        return CompareRun(out=None, table=None, result=None, plan=planned[0])
    where = _path(out, "out") if out is not None else _compare_out(cfg)
    inputs = [p for r in cfg.runs for p in run_inputs(r)]
    inputs += [*(dataset_files(cfg.data) if cfg.data else []), *([cfg.benchmark] if cfg.benchmark else [])]
    check_output(where, "compare folder", "compare.json", inputs, overwrite)  # before the work, not after it
    with output_lock(where, "compare folder"):
        weights = locate_inception_weights(_path(inception_weights))  # missing weights: fail before sampling
        extractor = load_feature_extractor(weights, device)
        result = run_compare(cfg, extractor, device, reporter, before_work=before_work)
        write_outputs(result, where, overwrite=overwrite)
    return CompareRun(out=where, table=pd.read_csv(where / "compare.csv"), result=result, plan=planned[0])


def _compare_out(cfg: Any) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    base = Path(cfg.runs[0]).resolve().parent / "compare" / f"{cfg.score.split}-{stamp}"
    out, k = base, 1
    while out.exists():
        k += 1
        out = base.with_name(f"{base.name}-{k}")
    return out


# --- benchmark -------------------------------------------------------------------------------


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
    return build_config(_path(config_file), options, _sets(sets))


@_scoped
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
        (warn or _default_warn)(line)
    where = _path(out, "out") if out is not None else Path("runs") / f"benchmark-{_path(data, 'data').name}"
    if plan_only:
        plan = _benchmark_plan(_path(data, "data"), config, where, overwrite)
        _say(say, plan.lines())
        if why := plan.unreachable():
            _say(say, [f"this benchmark would stop here: {why}; {FORCE_HINT}"])
        return BenchmarkResult(out=where, report=None, plan=plan)
    import os

    main = int(os.environ.get("RANK", "0")) == 0  # under `accelerate launch` every process runs this
    planned: list[BenchmarkForecast] = []

    def before_training(plan: Any, rare: list[int], rule: str, pending: int) -> None:
        """On every process, checks passed, nothing written: say the plan (main process), and
        stop every process alike when no verdict is reachable and not ``force``."""
        fc = forecast(plan, rare, rule, pending, measure(plan) if main and pending else None)
        if main:
            planned.append(fc)
            _say(say, fc.lines())
        why = fc.unreachable()
        if why and pending and not force:
            raise UserError(f"{why}: nothing trained; {FORCE_HINT}")

    with output_lock(where, "benchmark folder") if main else contextlib.nullcontext():
        report = run_benchmark(
            _path(data, "data"), config, where, overwrite=overwrite, reporter=reporter, spread=mode,
            before_training=before_training,
        )  # fmt: skip
    return BenchmarkResult(out=where, report=report, plan=planned[0] if planned else None)


def _benchmark_plan(data: Path, config: BenchmarkConfig, out: Path, overwrite: bool) -> BenchmarkForecast:
    """The plan alone, from the dataset, the sets and a few timed steps (runs stored in ``out``
    are not counted as to train, unless ``overwrite``); trains and writes nothing."""
    from cxraug.benchmark.forecast import forecast, measure
    from cxraug.benchmark.plan import rare_classes
    from cxraug.benchmark.runner import RESULT, make_plan, run_dir

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


# --- study -----------------------------------------------------------------------------------


def study_config(config: StudyConfig | PathLike | None = None, **kwargs: Any) -> StudyConfig:
    """The study's options: a :class:`StudyConfig`, or a YAML file of them (``str`` or
    ``Path``), with ``kwargs`` over it (None values ignored, dicts merged)."""
    from cxraug.study.config import build_config, key_dict

    if isinstance(config, StudyConfig):
        return build_config(None, {**key_dict(config), **kwargs}) if kwargs else config
    return build_config(_path(config), kwargs)


@_scoped
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
        _say(say, plan.lines())
        if plan_only:
            raise _PlanOnly

    try:
        return run_study(cfg, _path(out, "out"), reporter=reporter, shard=shard, before_work=before_work)
    except _PlanOnly:
        where = _path(out, "out") if out is not None else planned[0].out
        return StudyResult(where, cfg, [], complete=False, plan=planned[0])


# --- report ----------------------------------------------------------------------------------


@_scoped
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
        benchmark=_path(benchmark, "benchmark"), out=_path(out, "out"), compare=_path(compare, "compare"),
        note=note, columns=columns,
        overwrite=overwrite,
    )  # fmt: skip
    return write_study_page(cfg)


@_scoped
def report_run(run: PathLike) -> Path:
    """Rebuild a train-gen run's own page, ``RUN/run.html`` (``cxraug report --run RUN``): loss
    curves, training-time FID, sample grids over time, the budget used. Returns its path."""
    from cxraug.runpage import rebuild
    from cxraug.runs import read_run_config

    configure_process()
    read_run_config(_path(run, "run"))  # one line for a folder that is not a run, before its lock file appears
    with output_lock(_path(run, "run"), "run directory"):  # a training run rewrites it at each checkpoint itself
        return rebuild(_path(run, "run"))
