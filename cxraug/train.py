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
from cxraug.accel import RunAccelerator, check_mixed_precision, make_accelerator, process_state
from cxraug.checkpoint import load_latest as load_latest_checkpoint
from cxraug.config import UNTIL_TIME_LIMIT, TrainConfig
from cxraug.data.dataset import to_model_range, to_uint8
from cxraug.data.identity import describe_difference
from cxraug.data.prepared import PreparedData, fingerprint, open_prepared
from cxraug.errors import UserError
from cxraug.fsutil import append_jsonl, atomic_write_text, read_jsonl, write_json
from cxraug.generator import DataSpec, Generator
from cxraug.grid import class_grid, save_png
from cxraug.progress import NullReporter, Reporter
from cxraug.rng import derive_seed, epoch_order, step_rng
from cxraug.runpage import write_run_page

TRAIN_SPLITS = ["train"]  # the generator sees the classifier's training patients only


class TrainingDiverged(UserError):
    """A loss became NaN/inf: the run stops and its last good checkpoint is kept."""


class IndexStream:
    """Which training images each process sees at each step.

    The stream is an endless concatenation of epochs, each a seeded permutation (or, when
    balanced, a seeded class-balanced draw with replacement); step k takes the k-th global
    batch of it and each process its strided share, as DistributedSampler would.
    """

    def __init__(self, labels: np.ndarray, batch_size: int, seed: int, balanced: bool, rank: int, world: int):
        self.n, self.labels = len(labels), labels
        self.batch, self.seed, self.balanced = batch_size, seed, balanced
        self.rank, self.world = rank, world
        self._cache: dict[int, np.ndarray] = {}

    def _epoch(self, e: int) -> np.ndarray:
        if e not in self._cache:
            g = torch.Generator().manual_seed(derive_seed(self.seed, e, scheme="affine", stride=1_000_003))
            idx = epoch_order(self.labels, self.balanced, g)
            self._cache = {k: v for k, v in self._cache.items() if k >= e - 1}
            self._cache[e] = idx.numpy()
        return self._cache[e]

    def indices(self, step: int) -> np.ndarray:
        gb = self.batch * self.world
        pos = np.arange(step * gb, (step + 1) * gb)[self.rank :: self.world]
        return np.array([self._epoch(int(p // self.n))[p % self.n] for p in pos])


@dataclass
class RunSpec:
    """Everything that defines a run; saved as the run's config.json."""

    plugin: str
    train: TrainConfig
    model: Any  # the plugin's pydantic Config
    data_path: Path

    def to_json(self, data: PreparedData, run: Path, num_processes: int) -> dict[str, Any]:
        return {
            "cxraug_version": __version__,
            "run": run.name,
            "plugin": self.plugin,
            "train": self.train.model_dump(mode="json"),
            "model": self.model.model_dump(mode="json"),
            "data": data_provenance(data),
            "num_processes": num_processes,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }


def data_provenance(data: PreparedData) -> dict[str, Any]:
    return {
        "path": str(data.root.resolve()),
        "name": data.name,
        "fingerprint": fingerprint(data),
        "identity": data.identity,  # what the fingerprint covers: a mismatch can then be named
        "splits": TRAIN_SPLITS,
        "source": data.meta["source"],
        "real_data": data.meta.get("real_data", True),
        "n_train": int(sum(data.counts("train").values())),
        "counts_train": data.counts("train"),
    }


def check_runtime(train: TrainConfig) -> None:
    """Fail before any output exists when the machine cannot run this config."""
    check_mixed_precision(train.mixed_precision, f"--mixed-precision {train.mixed_precision}")
    if train.tensorboard:
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            raise UserError("tensorboard logging needs `pip install tensorboard`") from None


BATCH_BYTES_PER_PIXEL = 16 * 4  # float32, times a floor on what a step holds per input pixel (both nets, grads)
BATCH_BYTES_PER_IMAGE = 256  # the batch's index bookkeeping per image


def divergence_advice(step: int, bad: str, last_good: int, run: Path, plugin: type) -> str:
    """What to do when a step's losses are not finite, in words ``--resume`` accepts: a resumed run
    keeps every setting and repeats its steps exactly, so it would diverge again; only a new run
    can lower the learning rate. A checkpoint is named only when one was written."""
    fields = getattr(getattr(plugin, "Config", None), "model_fields", {})
    lrs = [k for k in fields if k == "lr" or k.startswith("lr_")] or ["lr"]
    kept = (
        f"its last good checkpoint, step {last_good}, stays in {run}"
        if last_good > 0
        else f"no checkpoint was written before it ({run})"
    )
    return (
        f"training diverged at step {step} ({bad}); {kept}. --resume would repeat the same steps (a resumed "
        f"run keeps its settings): start a new run with a lower learning rate, e.g. half of it "
        f"({' and '.join(f'--set {k}=...' for k in lrs)})"
    )


def check_batch_memory(train: TrainConfig, data: PreparedData) -> None:
    """Refuse, before any run folder, a batch that cannot fit in memory (a floor: the step itself
    holds more), instead of building its index list until the kernel's out-of-memory killer."""
    from cxraug.resources import require_memory

    per_image = data.size**2 * BATCH_BYTES_PER_PIXEL + BATCH_BYTES_PER_IMAGE
    what = f"--batch-size {train.batch_size:,} at {data.size}px"
    require_memory(what, train.batch_size * per_image, "choose a smaller --batch-size")


def make_run_accelerator(train: TrainConfig, run: Path) -> RunAccelerator:
    check_runtime(train)
    return make_accelerator(mixed_precision=train.mixed_precision, project_dir=run, tensorboard=train.tensorboard)


def check_supported_size(plugin: str, data: PreparedData) -> None:
    """The plugin's size range, checked before a run directory is made (and again at build)."""
    cls = registry.get(plugin)
    if not cls.min_size <= data.size <= cls.max_size:
        raise UserError(
            f"plugin {plugin!r} supports {cls.min_size} to {cls.max_size} px, the data is {data.size} px; "
            "prepare the data at another --size"
        )


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


@dataclass
class Clock:
    """Seconds in training steps (batch + step) and outside them (grids, checkpoints, exports,
    FID), cumulative over resumes: stored in every checkpoint, so cost and ``--time-limit``
    are right for resumed runs. Only training-step seconds count towards the time limit."""

    train_s: float = 0.0
    other_s: float = 0.0
    images: int = 0

    def state(self) -> dict[str, float]:
        return {"train_s": self.train_s, "other_s": self.other_s, "images": self.images}

    @classmethod
    def from_state(cls, s: dict[str, Any] | None) -> Clock:
        s = s or {}
        return cls(float(s.get("train_s", 0.0)), float(s.get("other_s", 0.0)), int(s.get("images", 0)))


def _resumed_clock(run: Path, step: int, clock: Clock) -> Clock:
    """The checkpoint's clock was stored before its own save and the final export; a run that
    stopped there wrote the full count in its stop record, so a resume from that step counts
    the work the earlier session did after the checkpoint too (cost never goes back)."""
    stops = [r for r in read_jsonl(run / runs.METRICS) if r.get("kind") == "stop" and r.get("step") == step]
    if stops:
        clock.other_s = max(clock.other_s, float(stops[-1].get("other_s") or 0.0))
    return clock


def _save_checkpoint(gen: Generator, run: Path, step: int, keep: int, clock: Clock) -> None:
    from cxraug import checkpoint

    payload = {"step": step, "plugin": gen.state(), "clock": clock.state(), "cxraug_version": __version__}
    checkpoint.save(runs.checkpoint_path(run, step), payload)
    checkpoint.prune(run, keep)


def _export(gen: Generator, run: Path, step: int, provenance: dict[str, Any]) -> None:
    gen.export(run / runs.EXPORT_DIR, extra={"run": run.name, "step": step, "data": provenance})


def _out_of_time(clock: Clock, limit_s: float | None, accelerator: RunAccelerator) -> bool:
    """Whether the budget is spent; under several processes the main one decides for all
    (their clocks differ a little, and all must stop at the same step)."""
    return _step_flags(accelerator, clock, limit_s, "")[1]


def _step_flags(accelerator: RunAccelerator, clock: Clock, limit_s: float | None, bad: str) -> tuple[str, bool]:
    """What every process must agree on after a step, in one small all-reduce: whether any
    process saw a non-finite loss (``bad``: its description, "" if none) and whether the main
    process's time budget is spent. Returns (the first bad process's description, out of time),
    the same on every process, so all stop at the same step with the same line instead of the
    healthy ones waiting for the failed one in the next collective until the timeout."""
    over = limit_s is not None and clock.train_s >= limit_s
    n = accelerator.num_processes
    if n == 1:
        return bad, over
    from accelerate.utils import broadcast_object_list, reduce

    flags = torch.zeros(n + 1, device=accelerator.device)
    flags[accelerator.process_index] = float(bool(bad))
    if accelerator.is_main_process:
        flags[n] = float(over)
    flags = reduce(flags, reduction="sum").cpu()
    failed = [r for r in range(n) if flags[r] > 0]
    if failed:  # rare: only then is the description sent, from the first process that failed
        holder = [bad]
        broadcast_object_list(holder, from_process=failed[0])
        bad = f"process {failed[0]}: {holder[0]}" + (
            f"; also process {', '.join(map(str, failed[1:]))}" if failed[1:] else ""
        )
    return bad, bool(flags[n] > 0)


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
    log_s: float = 0.0
    log_n: int = 0

    def step(self, step: int, last_good: int) -> tuple[dict[str, float], bool]:
        """One optimisation step (batch + step, timed); returns its losses and whether the
        time budget is now spent (agreed by every process)."""
        acc, cfg = self.accelerator, self.cfg
        t_step = self.timer()
        idx = self.stream.indices(step - 1)
        x = to_model_range(self.images[idx]).to(acc.device)
        y = torch.as_tensor(self.labels[idx], device=acc.device)
        with step_rng(cfg.seed, step, acc.process_index, acc.device):
            losses = self.gen.train_step(x, y, acc)  # its .item() calls sync a GPU: the clock is right
        self.clock.train_s += self.timer() - t_step
        bad = ", ".join(f"{k} = {v}" for k, v in losses.items() if not math.isfinite(v))
        bad, over = _step_flags(acc, self.clock, self.limit_s, bad)
        if bad:
            raise TrainingDiverged(divergence_advice(step, bad, last_good, self.run, type(self.gen)))
        self.clock.images += len(idx) * acc.num_processes
        return losses, over

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


def _every(k: int, step: int) -> bool:
    return bool(k) and step % k == 0


def train(
    run: Path,
    spec: RunSpec,
    reporter: Reporter | None = None,
    resume: bool = False,
    timer: Callable[[], float] | None = None,
    evaluation: PeriodicEvaluation | None = None,
) -> dict[str, Any]:
    """Train ``spec`` in ``run`` (already created, config saved); returns a summary.

    The run ends at ``steps`` or when its training-step seconds reach ``time_limit``
    minutes, whichever comes first; either way the last step gets a grid, a checkpoint and
    an export, and a ``stop`` record in metrics.jsonl says why it ended. ``timer``: the clock
    the seconds are read from (tests inject one); by default the config's ``clock``.
    ``evaluation``: what to score at intervals, built by the command (None: nothing).
    """
    reporter = reporter or NullReporter()
    train_cfg = spec.train
    timer = timer or (time.process_time if train_cfg.clock == "cpu" else time.perf_counter)
    data = open_prepared(spec.data_path)
    accelerator = make_run_accelerator(train_cfg, run)
    main = accelerator.is_main_process
    gen = build_generator(spec, data)
    gen.setup(accelerator)

    start, clock = 0, Clock()
    if resume and (found := load_latest_checkpoint(run)):
        start, state = found
        gen.load_state(state["plugin"])
        clock = _resumed_clock(run, start, Clock.from_state(state.get("clock")))
        if main:
            _truncate_metrics(run, start)
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
        run, train_cfg, gen, data, accelerator, clock, timer, evaluation, data_provenance(data), images, labels,
        stream, limit_s, log_s=clock.train_s, log_n=clock.images,
    )  # fmt: skip
    t0 = time.perf_counter()  # wall seconds of this session, whatever clock the budget counts
    last_good = done = start
    reason = "steps" if start >= steps else "time_limit" if _out_of_time(clock, limit_s, accelerator) else ""
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
            losses, over = loop.step(step, last_good)
            done = step
            adv(1)
            t_other = timer()
            reason = "steps" if step == steps else "time_limit" if over else ""
            final = bool(reason)
            loop.log(step, losses, final)
            loop.periodic(step, final)
            clock.other_s += timer() - t_other
            if final or _every(train_cfg.checkpoint_every, step):
                loop.save(step)
                last_good = step
    if main and done > start:
        stop = {"step": done, "kind": "stop", "reason": reason, "time_limit_min": train_cfg.time_limit}
        stop.update(train_s=round(clock.train_s, 2), other_s=round(clock.other_s, 2), images_seen=clock.images)
        append_jsonl(run / runs.METRICS, stop)
        write_run_page(run)  # says the run finished, and why
    accelerator.wait_for_everyone()
    if train_cfg.tensorboard:
        accelerator.end_training()
    return {
        "run": str(run), "step": done, "start": start, "reason": reason, "losses": losses,
        "seconds": time.perf_counter() - t0, "train_s": clock.train_s, "other_s": clock.other_s,
    }  # fmt: skip


def start_run(spec: RunSpec, runs_root: Path) -> Path:
    """Create the numbered run directory (main process) and save the resolved config.

    Under several processes the main one picks the number and tells the others.
    """
    from accelerate.utils import broadcast_object_list

    state = process_state()
    data = open_prepared(spec.data_path)
    check_supported_size(spec.plugin, data)  # every check before the folder exists
    holder = [None]
    if state.is_main_process:
        run = runs.next_run_dir(runs_root, spec.plugin, data.name)
        write_json(run / runs.CONFIG, spec.to_json(data, run, state.num_processes))
        holder = [str(run)]
    if state.num_processes > 1:
        broadcast_object_list(holder)
    return Path(holder[0])


def spec_from_run(run: Path, changes: dict[str, Any] | None = None) -> RunSpec:
    """The spec saved in ``run``, with ``changes`` (steps, time_limit) applied and saved."""
    from cxraug.config import validated

    cfg = runs.read_run_config(run)
    cls = registry.get(cfg["plugin"])
    changes = changes or {}
    train_values = {**cfg["train"], **changes}
    train_cfg = validated(TrainConfig, train_values, f"training key in {run / runs.CONFIG}")
    model_cfg = validated(cls.Config, cfg["model"], f"model key in {run / runs.CONFIG}")
    spec = RunSpec(cfg["plugin"], train_cfg, model_cfg, Path(cfg["data"]["path"]))
    data = open_prepared(spec.data_path)
    if fingerprint(data) != cfg["data"]["fingerprint"]:
        raise UserError(
            f"the prepared dataset {spec.data_path} is not the one {run.name} was trained on "
            f"({describe_difference(cfg['data'].get('identity'), data.identity)}); cannot resume: start a new run"
        )
    if any(cfg["train"].get(k) != v for k, v in changes.items()):
        cfg["train"].update(changes)
        write_json(run / runs.CONFIG, cfg)
    return spec
