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
from cxraug.rng import step_rng

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
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + e)
            if self.balanced:
                counts = np.bincount(self.labels)
                w = torch.as_tensor(1.0 / counts[self.labels], dtype=torch.double)
                idx = torch.multinomial(w, self.n, replacement=True, generator=g)
            else:
                idx = torch.randperm(self.n, generator=g)
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


def use_cpu() -> bool:
    """Without CUDA, tell Accelerate so: only then does it run DDP over gloo on the CPU
    when started by torchrun or ``accelerate launch --multi_gpu``."""
    return not torch.cuda.is_available()


def process_state():
    from accelerate import PartialState

    return PartialState(cpu=use_cpu())


def check_runtime(train: TrainConfig) -> None:
    """Fail before any output exists when the machine cannot run this config."""
    if train.mixed_precision != "no" and not torch.cuda.is_available():
        raise UserError(f"--mixed-precision {train.mixed_precision} needs a GPU; on the CPU use `no`")
    if train.fid_every:
        from cxraug.metrics.inception import locate_inception_weights

        locate_inception_weights()  # a clear "how to get them" line if the FID weights are absent
    if train.tensorboard:
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            raise UserError("tensorboard logging needs `pip install tensorboard`") from None


def training_reference(train: TrainConfig, data: PreparedData, accelerator) -> Any:
    """The reference classifier for training-time fidelity / fd_cxr (None when not asked): from
    the cache shared with `cxraug score`, or trained now, before the first step, on one process."""
    from cxraug.metrics.reference import ReferenceConfig, load_reference
    from cxraug.metrics.registry import metrics_in

    if not metrics_in(train.fid_metrics, "reference"):
        return None
    if accelerator.num_processes > 1:  # said before the first step, not after an hour of training
        raise UserError(
            "training-time fidelity / fd_cxr run on one process: drop them from fid_metrics under several "
            "processes, and score the run afterwards with `cxraug score --metrics fidelity,fd_cxr`"
        )
    from cxraug.metrics.cache import default_cache_dir

    return load_reference(data, ReferenceConfig(), default_cache_dir(data.root), accelerator.device)


def make_accelerator(train: TrainConfig, run: Path):
    from accelerate import Accelerator
    from accelerate.utils import ProjectConfiguration

    check_runtime(train)
    log_with = "tensorboard" if train.tensorboard else None
    return Accelerator(
        cpu=use_cpu(),
        mixed_precision=train.mixed_precision,
        log_with=log_with,
        project_config=ProjectConfiguration(project_dir=str(run), logging_dir=str(run / "tb")),
    )


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
    return cls(spec.model, DataSpec(classes=tuple(data.classes), size=size), seed=spec.train.seed * 7919)


def save_grid(gen: Generator, data: PreparedData, train: TrainConfig, path: Path, step: int) -> None:
    k = train.grid_per_class
    labels = torch.arange(len(data.classes)).repeat_interleave(k)
    with torch.no_grad():
        imgs = to_uint8(gen.sample(labels, generator=torch.Generator().manual_seed(train.seed + 12345)))
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


def _save_checkpoint(gen: Generator, run: Path, step: int, keep: int, clock: Clock) -> None:
    from cxraug import checkpoint

    payload = {"step": step, "plugin": gen.state(), "clock": clock.state(), "cxraug_version": __version__}
    checkpoint.save(runs.checkpoint_path(run, step), payload)
    checkpoint.prune(run, keep)


def _export(gen: Generator, run: Path, step: int, provenance: dict[str, Any]) -> None:
    gen.export(run / runs.EXPORT_DIR, extra={"run": run.name, "step": step, "data": provenance})


def _out_of_time(clock: Clock, limit_s: float | None, accelerator: Any) -> bool:
    """Whether the budget is spent; under several processes the main one decides for all
    (their clocks differ a little, and all must stop at the same step)."""
    return _step_flags(accelerator, clock, limit_s, "")[1]


def _step_flags(accelerator: Any, clock: Clock, limit_s: float | None, bad: str) -> tuple[str, bool]:
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


def train(
    run: Path,
    spec: RunSpec,
    reporter: Reporter | None = None,
    resume: bool = False,
    timer: Callable[[], float] | None = None,
) -> dict[str, Any]:
    """Train ``spec`` in ``run`` (already created, config saved); returns a summary.

    The run ends at ``steps`` or when its training-step seconds reach ``time_limit``
    minutes, whichever comes first; either way the last step gets a grid, a checkpoint and
    an export, and a ``stop`` record in metrics.jsonl says why it ended. ``timer``: the clock
    the seconds are read from (tests inject one); by default the config's ``clock``.
    """
    reporter = reporter or NullReporter()
    train_cfg = spec.train
    timer = timer or (time.process_time if train_cfg.clock == "cpu" else time.perf_counter)
    data = open_prepared(spec.data_path)
    accelerator = make_accelerator(train_cfg, run)
    main = accelerator.is_main_process
    gen = build_generator(spec, data)
    gen.setup(accelerator)
    provenance = data_provenance(data)

    start, clock = 0, Clock()
    if resume and (found := load_latest_checkpoint(run)):
        start, state = found
        gen.load_state(state["plugin"])
        clock = Clock.from_state(state.get("clock"))
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
    extractor = reference = None
    if train_cfg.fid_every:  # load once, and fail before the first step if absent
        from cxraug.metrics import fid_during_training, load_feature_extractor

        reference = training_reference(train_cfg, data, accelerator)  # every process: the refusal is shared
        extractor = load_feature_extractor(None, accelerator.device) if main else None

    steps = train_cfg.steps
    assert steps is not None  # filled by TrainConfig's validator
    limit_s = train_cfg.time_limit * 60 if train_cfg.time_limit else None
    log_s, log_n = clock.train_s, clock.images
    t0 = timer()
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
            t_step = timer()
            idx = stream.indices(step - 1)
            x = to_model_range(images[idx]).to(accelerator.device)
            y = torch.as_tensor(labels[idx], device=accelerator.device)
            with step_rng(train_cfg.seed, step, accelerator.process_index, accelerator.device):
                losses = gen.train_step(x, y, accelerator)  # its .item() calls sync a GPU: the clock is right
            clock.train_s += timer() - t_step
            bad = ", ".join(f"{k} = {v}" for k, v in losses.items() if not math.isfinite(v))
            bad, over = _step_flags(accelerator, clock, limit_s, bad)
            if bad:
                raise TrainingDiverged(
                    f"training diverged at step {step} ({bad}); the last good checkpoint is step {last_good} "
                    f"in {run}: lower the learning rate (e.g. --set lr_g=...) and --resume, or start anew"
                )
            clock.images += len(idx) * accelerator.num_processes
            done = step
            adv(1)
            t_other = timer()
            if step == steps:
                reason = "steps"
            elif over:
                reason = "time_limit"
            final = bool(reason)
            if main and (step % train_cfg.log_every == 0 or final):
                rec = {"step": step, "kind": "train", **{k: round(v, 6) for k, v in losses.items()}}
                rate = (clock.images - log_n) / max(clock.train_s - log_s, 1e-9)  # training steps only
                rec.update(img_per_s=round(rate, 2), num_processes=accelerator.num_processes)
                rec.update(train_s=round(clock.train_s, 2), elapsed_s=round(clock.train_s + clock.other_s, 2))
                append_jsonl(run / runs.METRICS, rec)
                if train_cfg.tensorboard:
                    accelerator.log(losses, step=step)
                log_s, log_n = clock.train_s, clock.images
            if main and (final or (train_cfg.sample_every and step % train_cfg.sample_every == 0)):
                save_grid(gen, data, train_cfg, run / runs.SAMPLES_DIR / f"step-{step:07d}.png", step)
            save_now = final or (train_cfg.checkpoint_every and step % train_cfg.checkpoint_every == 0)
            if extractor is not None and (final or step % train_cfg.fid_every == 0):
                result = fid_during_training(
                    gen, data, split="val", n=train_cfg.fid_n, seed=train_cfg.seed, extractor=extractor,
                    metrics=train_cfg.fid_metrics, reference=reference,
                )  # fmt: skip
                append_jsonl(run / runs.METRICS, {"step": step, "kind": "fid", **result})
            clock.other_s += timer() - t_other
            if save_now:
                t_other = timer()
                accelerator.wait_for_everyone()
                if main:  # export first: a crash between the two redoes the steps and rewrites both
                    _export(gen, run, step, provenance)
                    _save_checkpoint(gen, run, step, train_cfg.keep_checkpoints, clock)
                last_good = step
                clock.other_s += timer() - t_other
    if main and done > start:
        stop = {"step": done, "kind": "stop", "reason": reason, "time_limit_min": train_cfg.time_limit}
        stop.update(train_s=round(clock.train_s, 2), other_s=round(clock.other_s, 2), images_seen=clock.images)
        append_jsonl(run / runs.METRICS, stop)
    accelerator.wait_for_everyone()
    if train_cfg.tensorboard:
        accelerator.end_training()
    return {
        "run": str(run), "step": done, "start": start, "reason": reason, "losses": losses,
        "seconds": timer() - t0, "train_s": clock.train_s, "other_s": clock.other_s,
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


def read_metrics(run: Path) -> list[dict[str, Any]]:
    return read_jsonl(run / runs.METRICS)
