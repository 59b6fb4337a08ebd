"""What ``cxraug train-gen`` is about to do, said before its first step: the budget (a step cap,
a time limit and the clock it counts, or both), what it means in images and passes over the
training set, and how long it should take, from a few steps of the same generator timed here
on a throwaway copy (one process only: under several, the copy would need the others).

Timed with the run's own clock, so the estimate and ``--time-limit`` are in the same units;
grids, checkpoints and training-time evaluation come on top (the run page shows both).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cxraug.config import UNTIL_TIME_LIMIT
from cxraug.data.prepared import PreparedData
from cxraug.progress import duration_text

if TYPE_CHECKING:
    from cxraug.runspec import RunSpec

TIMED_STEPS = 2  # after one untimed warm-up step


@dataclass(frozen=True)
class TrainPlan:
    plugin: str
    data: str
    n_train: int
    batch_size: int
    processes: int
    start: int  # the step it starts from (a resumed run: its last checkpoint)
    steps: int | None  # the step cap; None: none (time limit alone)
    time_limit_min: float | None
    clock: str  # "wall" | "cpu"
    step_s: float | None  # seconds of one training step, measured with ``clock``; None: not measured
    used_s: float = 0.0  # training-step seconds a resumed run has spent (the limit is cumulative)

    @property
    def seconds(self) -> float | None:
        """Training-step seconds the run should take from ``start``."""
        limit = None if self.time_limit_min is None else max(0.0, self.time_limit_min * 60 - self.used_s)
        if self.steps is None or self.step_s is None:
            return limit
        by_steps = (self.steps - self.start) * self.step_s
        return by_steps if limit is None else min(by_steps, limit)

    def lines(self) -> list[str]:
        unit = "CPU" if self.clock == "cpu" else "wall"
        images = self.batch_size * self.processes
        out = [f"plan of train-gen: {self.plugin} on {self.data} ({self.n_train:,} training images)"]
        budget = []
        if self.steps is not None:
            passes = self.steps * images / max(self.n_train, 1)
            budget.append(f"{self.steps:,} steps of {images} images ({passes:,.1f} passes over the training images)")
        if self.time_limit_min is not None:
            spent = f" ({self.used_s / 60:.1f} spent)" if self.used_s else ""
            budget.append(f"{self.time_limit_min:g} min of {unit} time in training steps{spent}")
        start = f", from step {self.start:,}" if self.start else ""
        out.append(f"  budget: {' or '.join(budget)}, whichever ends first{start}" if len(budget) > 1
                   else f"  budget: {budget[0]}{start}")  # fmt: skip
        if self.step_s is None:
            out.append("  estimated duration: not measured (several processes); the progress bar gives it")
            return out
        speed = f"{self.step_s:.3f} s a step ({unit} clock) measured over {TIMED_STEPS} steps"
        secs = self.seconds or 0.0
        by_steps = None if self.steps is None else (self.steps - self.start) * self.step_s
        ends = "the time limit" if by_steps is None or secs < by_steps else "the step cap"
        reach = f"; about {int(secs / self.step_s) + self.start:,} steps by then" if ends == "the time limit" else ""
        out.append(
            f"  estimated duration: {duration_text(secs)} of training steps, ending at {ends}{reach} ({speed}); "
            "grids, checkpoints and evaluation come on top"
        )
        return out


def measure_step(spec: RunSpec, data: PreparedData) -> float:
    """Seconds (the run's clock) of one training step of a throwaway generator built as the run's."""
    import torch

    from cxraug.accel import make_accelerator
    from cxraug.batches import IndexStream
    from cxraug.data.dataset import to_model_range
    from cxraug.rng import step_rng
    from cxraug.train import build_generator

    cfg = spec.train
    timer = time.process_time if cfg.clock == "cpu" else time.perf_counter
    acc = make_accelerator(mixed_precision=cfg.mixed_precision)
    with torch.random.fork_rng(devices=[]):  # the run's own draws stay untouched
        gen = build_generator(spec, data)
        gen.setup(acc)
        images, labels = data.images("train"), data.labels("train")
        stream = IndexStream(labels, cfg.batch_size, cfg.seed, cfg.balanced, 0, 1)
        elapsed = 0.0
        for step in range(1 + TIMED_STEPS):
            idx = stream.indices(step)
            x = to_model_range(images[idx]).to(acc.device)
            y = torch.as_tensor(labels[idx], device=acc.device)
            t0 = timer()
            with step_rng(cfg.seed, step + 1, 0, acc.device):
                gen.train_step(x, y, acc)  # its losses' .item() syncs a GPU
            if step:  # the first step is a warm-up
                elapsed += timer() - t0
    del gen
    acc.free_memory()
    return elapsed / TIMED_STEPS


def train_plan(
    spec: RunSpec, data: PreparedData, processes: int, start: int = 0, used_s: float = 0.0, measure: bool = True
) -> TrainPlan:
    cfg = spec.train
    steps = None if cfg.steps in (None, UNTIL_TIME_LIMIT) else cfg.steps
    step_s = measure_step(spec, data) if measure and processes == 1 else None
    return TrainPlan(
        plugin=spec.plugin,
        data=data.name,
        n_train=len(data.labels("train")),
        batch_size=cfg.batch_size,
        processes=processes,
        start=start,
        steps=steps,
        time_limit_min=cfg.time_limit,
        clock=cfg.clock,
        step_s=step_s,
        used_s=used_s,
    )
