"""``cxraug train-gen`` and ``cxraug synth`` from Python: train a generator run (or resume one)
with its plan said before the first step, and write a synthetic set from a run."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cxraug.api_support import Say, Warn, as_path, default_warn, say_lines, scoped, set_items, with_options
from cxraug.errors import UserError
from cxraug.lock import output_lock
from cxraug.progress import Reporter
from cxraug.runtime import configure

if TYPE_CHECKING:
    from cxraug.runspec import RunSpec
    from cxraug.synth import SynthConfig
    from cxraug.synthset import SyntheticSet
    from cxraug.trainplan import TrainPlan

FEW_TRAINING_IMAGES = 10  # a class a generator saw fewer training images of: its samples say little


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
        self.data, self.config = as_path(self.data, "data"), as_path(self.config, "config")
        self.resume = as_path(self.resume, "resume")
        self.out = as_path(self.out, "out")  # type: ignore[assignment]

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

    cfg = with_options(TrainGenConfig, config, kwargs)
    if cfg.plugin is None or cfg.data is None:
        raise UserError("train-gen needs --plugin and --data (or --resume RUN_DIR)")
    cls = registry.get(cfg.plugin)
    open_prepared(cfg.data)  # a wrong folder is one line here too
    train_cfg, model_cfg = resolve(
        cls.Config, load_config_file(cfg.config), cfg.flags(), parse_sets(set_items(cfg.sets))
    )
    return {"plugin": cfg.plugin, "train": train_cfg.model_dump(), "model": model_cfg.model_dump()}


@scoped
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
    cfg = with_options(TrainGenConfig, config, kwargs)
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
    from cxraug.runspec import RunSpec, spec_from_run, start_run
    from cxraug.train import train
    from cxraug.trainchecks import check_batch_memory, check_runtime

    flags = cfg.flags()
    file_values, sets = load_config_file(cfg.config), parse_sets(set_items(cfg.sets))
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
    say_lines(say, plan.lines())
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


@scoped
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
    cfg = with_options(SynthConfig, config, kwargs)
    syn = open_synthetic(run_synth(cfg, reporter))
    few = few_training_images(syn.provenance)
    if few:  # after the work: a refused synth gets its one error line alone
        (warn or default_warn)(few)
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
