"""What stops a generator run: the checks before it starts (the machine can run the config, a
batch fits in memory) and during it (a non-finite loss, the time budget), the latter agreed by
every process so all stop at the same step with the same line."""

from __future__ import annotations

from pathlib import Path

import torch

from cxraug.accel import RunAccelerator, check_mixed_precision
from cxraug.config import TrainConfig
from cxraug.data.prepared import PreparedData
from cxraug.errors import UserError
from cxraug.trainclock import Clock


class TrainingDiverged(UserError):
    """A loss became NaN/inf: the run stops and its last good checkpoint is kept."""


def check_runtime(train: TrainConfig) -> None:
    """Fail before any output exists when the machine cannot run this config."""
    check_mixed_precision(train.mixed_precision, f"--mixed-precision {train.mixed_precision}")
    if train.tensorboard:
        try:
            import tensorboard  # noqa: F401
        except ImportError:
            raise UserError(
                "tensorboard=true needs TensorBoard: `pip install 'cxraug[tensorboard]'` (or watch the run's run.html)"
            ) from None


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


def out_of_time(clock: Clock, limit_s: float | None, accelerator: RunAccelerator) -> bool:
    """Whether the budget is spent; under several processes the main one decides for all
    (their clocks differ a little, and all must stop at the same step)."""
    return step_flags(accelerator, clock, limit_s, "")[1]


def step_flags(
    accelerator: RunAccelerator, clock: Clock, limit_s: float | None, bad: str, save_due: bool = False
) -> tuple[str, bool, bool]:
    """What every process must agree on after a step, in one small all-reduce: whether any
    process saw a non-finite loss (``bad``: its description, "" if none), whether the main
    process's time budget is spent, and whether the main process finds a checkpoint due by its
    wall clock (``save_due``; the others' clocks are not asked). Returns (the first bad
    process's description, out of time, save now), the same on every process, so all stop or
    save at the same step with the same line instead of the healthy ones waiting for the
    failed one in the next collective until the timeout."""
    over = limit_s is not None and clock.train_s >= limit_s
    n = accelerator.num_processes
    if n == 1:
        return bad, over, save_due
    from accelerate.utils import broadcast_object_list, reduce

    flags = torch.zeros(n + 2, device=accelerator.device)
    flags[accelerator.process_index] = float(bool(bad))
    if accelerator.is_main_process:
        flags[n], flags[n + 1] = float(over), float(save_due)
    flags = reduce(flags, reduction="sum").cpu()
    failed = [r for r in range(n) if flags[r] > 0]
    if failed:  # rare: only then is the description sent, from the first process that failed
        holder = [bad]
        broadcast_object_list(holder, from_process=failed[0])
        bad = f"process {failed[0]}: {holder[0]}" + (
            f"; also process {', '.join(map(str, failed[1:]))}" if failed[1:] else ""
        )
    return bad, bool(flags[n] > 0), bool(flags[n + 1] > 0)
