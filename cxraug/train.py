"""The one training loop, for every generator plugin, on Accelerate.

The same code runs on the CPU, on one GPU with mixed precision, and on several GPUs or
machines under ``accelerate launch`` / ``torchrun`` (DDP through Accelerate). Batches are a
pure function of (seed, step, process), so a resumed run draws exactly the batches a
straight run would have; with the plugin's own RNG in its checkpointed state, and the global
RNG (dropout) seeded per step (cxraug.rng), 2N straight steps and N + resume + N steps give
identical weights.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from cxraug import __version__, registry, runs
from cxraug.accel import RunAccelerator, make_accelerator
from cxraug.batches import IndexStream
from cxraug.checkpoint import load_latest as load_latest_checkpoint
from cxraug.config import UNTIL_TIME_LIMIT, TrainConfig
from cxraug.data.dataset import to_model_range, to_uint8
from cxraug.data.prepared import PreparedData, open_prepared
from cxraug.errors import UserError
from cxraug.fsutil import append_jsonl, atomic_write_text, read_jsonl
from cxraug.generator import DataSpec, Generator
from cxraug.grid import class_grid, save_png
from cxraug.progress import NullReporter, Reporter
from cxraug.rng import derive_seed, step_rng
from cxraug.runpage import write_run_page
from cxraug.runspec import RunSpec, check_supported_size, data_provenance
from cxraug.runspec import spec_from_run as spec_from_run  # the loop's entry points, named here as before
from cxraug.runspec import start_run as start_run
from cxraug.trainchecks import TrainingDiverged, check_runtime, divergence_advice, out_of_time, step_flags
from cxraug.trainclock import Clock, resumed_clock


def make_run_accelerator(train: TrainConfig, run: Path) -> RunAccelerator:
    check_runtime(train)
    return make_accelerator(mixed_precision=train.mixed_precision, project_dir=run, tensorboard=train.tensorboard)


def build_generator(spec: RunSpec, data: PreparedData) -> Generator:
    check_supported_size(spec.plugin, data)
    cls = registry.get(spec.plugin)
    size = data.size
    torch.manual_seed(spec.train.seed)  # identical initial weights (and rng) on every process
    return cls(
        spec.model,
        DataSpec(classes=tuple(data.classes), size=size),
        seed=derive_seed(spec.train.seed, 0, scheme="affine", stride=7919),
    )


def save_grid(gen: Generator, data: PreparedData, train: TrainConfig, path: Path, step: int) -> None:
    k = train.grid_per_class
    labels = torch.arange(len(data.classes)).repeat_interleave(k)
    with torch.no_grad():
        imgs = to_uint8(
            gen.sample(labels, generator=torch.Generator().manual_seed(derive_seed(train.seed, 12345, scheme="affine")))
        )
    rows = [imgs[i * k : (i + 1) * k] for i in range(len(data.classes))]
    note = "" if data.meta.get("real_data", True) else " (trained on PHANTOM data, not real)"
    scale = max(1, 64 // data.size)
    save_png(class_grid(rows, data.classes, f"{gen.name} step {step}{note}", scale=scale), path)


def _truncate_metrics(run: Path, step: int) -> None:
    """Drop log lines past the checkpoint we resume from (written by the interrupted run), and
    any line it left torn."""
    import json

    path = run / runs.METRICS
    if not path.is_file():
        return
    keep = [rec for rec in read_jsonl(path) if (rec.get("step") or 0) <= step]
    atomic_write_text(path, "".join(json.dumps(rec, default=str) + "\n" for rec in keep))


def _save_checkpoint(gen: Generator, run: Path, step: int, keep: int, clock: Clock) -> None:
    from cxraug import checkpoint

    payload = {"step": step, "plugin": gen.state(), "clock": clock.state(), "cxraug_version": __version__}
    checkpoint.save(runs.checkpoint_path(run, step), payload)
    checkpoint.prune(run, keep)


def _export(gen: Generator, run: Path, step: int, provenance: dict[str, Any]) -> None:
    gen.export(run / runs.EXPORT_DIR, extra={"run": run.name, "step": step, "data": provenance})


@dataclass(frozen=True)
class PeriodicEvaluation:
    """What the command asks the loop to run every ``every`` steps and at the last one, on the
    main process (e.g. training-time FID: ``cxraug.metrics.training.training_evaluation``);
    the record it returns goes to metrics.jsonl as kind ``kind``."""

    every: int
    run: Callable[[Generator], dict[str, Any]]
    kind: str = "fid"


@dataclass
class _Loop:
    """One training session's state; :func:`train` calls its parts in order each step."""

    run: Path
    cfg: TrainConfig
    gen: Generator
    data: PreparedData
    accelerator: RunAccelerator
    clock: Clock
    timer: Callable[[], float]
    evaluation: PeriodicEvaluation | None
    provenance: dict[str, Any]
    images: np.ndarray
    labels: np.ndarray
    stream: IndexStream
    limit_s: float | None
    wall: Callable[[], float] = time.monotonic
    log_s: float = 0.0
    log_n: int = 0
    saved_at: float = 0.0  # wall reading at the last checkpoint (or the session's start)

    def __post_init__(self) -> None:
        self.saved_at = self.wall()

    def save_due(self) -> bool:
        """Whether this process's wall clock says a checkpoint is due (``checkpoint_minutes``)."""
        every_s = self.cfg.checkpoint_minutes * 60
        return every_s > 0 and self.wall() - self.saved_at >= every_s

    def step(self, step: int, last_good: int) -> tuple[dict[str, float], bool, bool]:
        """One optimisation step (batch + step, timed); returns its losses, whether the time
        budget is now spent and whether a checkpoint is due by the clock (both agreed by every
        process)."""
        acc, cfg = self.accelerator, self.cfg
        t_step = self.timer()
        idx = self.stream.indices(step - 1)
        x = to_model_range(self.images[idx]).to(acc.device)
        y = torch.as_tensor(self.labels[idx], device=acc.device)
        with step_rng(cfg.seed, step, acc.process_index, acc.device):
            losses = self.gen.train_step(x, y, acc)  # its .item() calls sync a GPU: the clock is right
        self.clock.train_s += self.timer() - t_step
        bad = ", ".join(f"{k} = {v}" for k, v in losses.items() if not math.isfinite(v))
        bad, over, due = step_flags(acc, self.clock, self.limit_s, bad, self.save_due())
        if bad:
            raise TrainingDiverged(divergence_advice(step, bad, last_good, self.run, type(self.gen)))
        self.clock.images += len(idx) * acc.num_processes
        return losses, over, due

    def log(self, step: int, losses: dict[str, float], final: bool) -> None:
        acc, clock = self.accelerator, self.clock
        if not (acc.is_main_process and (step % self.cfg.log_every == 0 or final)):
            return
        rec = {"step": step, "kind": "train", **{k: round(v, 6) for k, v in losses.items()}}
        rate = (clock.images - self.log_n) / max(clock.train_s - self.log_s, 1e-9)  # training steps only
        rec.update(img_per_s=round(rate, 2), num_processes=acc.num_processes)
        rec.update(train_s=round(clock.train_s, 2), elapsed_s=round(clock.train_s + clock.other_s, 2))
        append_jsonl(self.run / runs.METRICS, rec)
        if self.cfg.tensorboard:
            acc.log(losses, step=step)
        self.log_s, self.log_n = clock.train_s, clock.images

    def periodic(self, step: int, final: bool) -> None:
        """The sample grid and the command's evaluation, when due (main process)."""
        if not self.accelerator.is_main_process:
            return
        if final or _every(self.cfg.sample_every, step):
            save_grid(self.gen, self.data, self.cfg, self.run / runs.SAMPLES_DIR / f"step-{step:07d}.png", step)
        ev = self.evaluation
        if ev is not None and (final or _every(ev.every, step)):
            append_jsonl(self.run / runs.METRICS, {"step": step, "kind": ev.kind, **ev.run(self.gen)})

    def save(self, step: int) -> None:
        t_other = self.timer()
        self.accelerator.wait_for_everyone()
        if self.accelerator.is_main_process:  # export first: a crash between the two redoes the steps and rewrites both
            _export(self.gen, self.run, step, self.provenance)
            _save_checkpoint(self.gen, self.run, step, self.cfg.keep_checkpoints, self.clock)
            write_run_page(self.run)
        self.clock.other_s += self.timer() - t_other
        self.saved_at = self.wall()


def _every(k: int, step: int) -> bool:
    return bool(k) and step % k == 0


def _resume(run: Path, gen: Generator, main: bool) -> tuple[int, Clock]:
    """The step and clock of the run's latest checkpoint, its state loaded into ``gen`` (step 0
    and a new clock when there is none); the log lines past it are dropped (main process)."""
    found = load_latest_checkpoint(run)
    if not found:
        return 0, Clock()
    start, state = found
    gen.load_state(state["plugin"])
    clock = resumed_clock(run, start, Clock.from_state(state.get("clock")))
    if main:
        _truncate_metrics(run, start)
    return start, clock


def _write_stop(run: Path, step: int, reason: str, cfg: TrainConfig, clock: Clock) -> None:
    """The ``stop`` record of a session that trained: why it ended, and the clock's full count."""
    stop = {"step": step, "kind": "stop", "reason": reason, "time_limit_min": cfg.time_limit}
    stop.update(train_s=round(clock.train_s, 2), other_s=round(clock.other_s, 2), images_seen=clock.images)
    append_jsonl(run / runs.METRICS, stop)
    write_run_page(run)  # says the run finished, and why


def train(
    run: Path,
    spec: RunSpec,
    reporter: Reporter | None = None,
    resume: bool = False,
    timer: Callable[[], float] | None = None,
    evaluation: PeriodicEvaluation | None = None,
    wall: Callable[[], float] = time.monotonic,
) -> dict[str, Any]:
    """Train ``spec`` in ``run`` (already created, config saved); returns a summary.

    The run ends at ``steps`` or when its training-step seconds reach ``time_limit``
    minutes, whichever comes first; either way the last step gets a grid, a checkpoint and
    an export, and a ``stop`` record in metrics.jsonl says why it ended. ``timer``: the clock
    the seconds are read from (tests inject one); by default the config's ``clock``.
    ``evaluation``: what to score at intervals, built by the command (None: nothing).
    ``wall``: the clock ``checkpoint_minutes`` is read from (tests inject one).
    """
    reporter = reporter or NullReporter()
    train_cfg = spec.train
    timer = timer or (time.process_time if train_cfg.clock == "cpu" else time.perf_counter)
    data = open_prepared(spec.data_path)
    accelerator = make_run_accelerator(train_cfg, run)
    main = accelerator.is_main_process
    gen = build_generator(spec, data)
    gen.setup(accelerator)

    start, clock = _resume(run, gen, main) if resume else (0, Clock())
    if train_cfg.tensorboard:
        accelerator.init_trackers("cxraug")

    images, labels = data.images("train"), data.labels("train")
    if len(labels) == 0:
        raise UserError(f"{data.root} has no training images")
    stream = IndexStream(
        labels, train_cfg.batch_size, train_cfg.seed, train_cfg.balanced, accelerator.process_index,
        accelerator.num_processes,
    )  # fmt: skip
    steps = train_cfg.steps
    assert steps is not None  # filled by TrainConfig's validator
    limit_s = train_cfg.time_limit * 60 if train_cfg.time_limit else None
    loop = _Loop(
        run=run, cfg=train_cfg, gen=gen, data=data, accelerator=accelerator, clock=clock, timer=timer,
        evaluation=evaluation, provenance=data_provenance(data), images=images, labels=labels, stream=stream,
        limit_s=limit_s, wall=wall, log_s=clock.train_s, log_n=clock.images,
    )  # fmt: skip
    t0 = time.perf_counter()  # wall seconds of this session, whatever clock the budget counts
    last_good = done = start
    reason = "steps" if start >= steps else "time_limit" if out_of_time(clock, limit_s, accelerator) else ""
    losses: dict[str, float] = {}
    what = f"train {spec.plugin} on {data.name} ({len(labels)} train images)"
    if limit_s is not None:
        what += f", time limit {train_cfg.time_limit:g} min"
    total = None if steps == UNTIL_TIME_LIMIT else steps
    with reporter.task(what, total) as adv:
        adv(start)
        for step in range(start + 1, steps + 1):
            if reason:
                break
            losses, over, due = loop.step(step, last_good)
            done = step
            adv(1)
            t_other = timer()
            reason = "steps" if step == steps else "time_limit" if over else ""
            final = bool(reason)
            loop.log(step, losses, final)
            loop.periodic(step, final)
            clock.other_s += timer() - t_other
            if final or due or _every(train_cfg.checkpoint_every, step):
                loop.save(step)
                last_good = step
    if main and done > start:
        _write_stop(run, done, reason, train_cfg, clock)
    accelerator.wait_for_everyone()
    if train_cfg.tensorboard:
        accelerator.end_training()
    return {
        "run": str(run), "step": done, "start": start, "reason": reason, "losses": losses,
        "seconds": time.perf_counter() - t0, "train_s": clock.train_s, "other_s": clock.other_s,
    }  # fmt: skip
