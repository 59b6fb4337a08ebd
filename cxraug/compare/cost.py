"""What a run cost: training read from its metrics.jsonl, sampling measured now.

Training: the ``stop`` record of the exported step (cumulative over resumes: train.py keeps
its clock in every checkpoint), else the last train record up to that step. ``train_s`` is
time in training steps only; ``other_s`` grids, checkpoints, exports and periodic FID.

Sampling: one warm-up batch, then ``n`` images timed (img/s on this device at the run's
default sampling settings). Peak memory: on CUDA, ``max_memory_allocated`` above what was
allocated before (the loaded model); on the CPU, growth of the process's peak resident set
(VmHWM, reset through /proc/self/clear_refs after ``malloc_trim``, so memory freed by earlier
work is not counted as free room).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cxraug import runs
from cxraug.fsutil import read_jsonl

if TYPE_CHECKING:
    from cxraug.generator import Generator


@dataclass(frozen=True)
class SamplingCost:
    img_per_s: float
    images: int
    seconds: float
    peak_mb: float | None
    memory_measure: str  # what peak_mb is, in words
    device: str


def training_cost(run: Path, step: int | None) -> dict[str, Any]:
    """Steps, images seen, training seconds and img/s of a run up to its exported ``step``."""
    records = read_jsonl(Path(run) / runs.METRICS)  # a line cut by a kill is skipped
    upto = [r for r in records if step is None or (r.get("step") or 0) <= step]
    stops = [r for r in upto if r.get("kind") == "stop" and (step is None or r.get("step") == step)]
    trains = [r for r in upto if r.get("kind") == "train" and "train_s" in r]
    out: dict[str, Any] = {"step": step}
    if stops:
        s = stops[-1]
        out.update(train_s=s.get("train_s"), other_s=s.get("other_s"), images_seen=s.get("images_seen"))
        out.update(stop_reason=s.get("reason"), time_limit_min=s.get("time_limit_min"), source="stop record")
    elif trains:
        t = trains[-1]
        out.update(
            train_s=t.get("train_s"), other_s=round(t["elapsed_s"] - t["train_s"], 2) if "elapsed_s" in t else None
        )
        out.update(
            images_seen=None, stop_reason=None, time_limit_min=None, source=f"last train record (step {t['step']})"
        )
    else:
        out.update(train_s=None, other_s=None, images_seen=None, stop_reason=None, time_limit_min=None)
        out["source"] = "no clock in metrics.jsonl"
    procs = [r.get("num_processes") for r in trains if r.get("num_processes")]
    out["num_processes"] = procs[-1] if procs else None
    ts, seen = out.get("train_s"), out.get("images_seen")
    out["clock"] = training_clock(run)
    out["train_min"] = round(ts / 60, 2) if ts is not None else None
    out["train_img_per_s"] = round(seen / ts, 2) if ts and seen is not None else None
    return out


def training_clock(run: Path) -> str:
    """What the run's training seconds count: "wall" seconds, or the process's "cpu" seconds
    (``--set clock=cpu``); runs made before the setting existed counted wall seconds."""
    import json

    try:
        train = json.loads((Path(run) / runs.CONFIG).read_text()).get("train") or {}
    except (OSError, ValueError):
        return "wall"
    return "cpu" if train.get("clock") == "cpu" else "wall"


def export_parameters(run: Path) -> int:
    """Numbers in the exported weights (what is sampled: EMA generator, buffers included)."""
    from safetensors import safe_open

    total = 0
    with safe_open(str(Path(run) / runs.EXPORT_DIR / "weights.safetensors"), framework="numpy") as f:
        for k in f.keys():  # noqa: SIM118 (a safe_open handle is not iterable)
            n = 1
            for d in f.get_slice(k).get_shape():
                n *= int(d)
            total += n
    return total


def _rss_kb(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)  # hand freed heap pages back, so the growth we see is real
    try:
        Path("/proc/self/clear_refs").write_text("5")  # 5: reset VmHWM to the current RSS
        return True
    except OSError:
        return False


def measure_sampling(generator: Generator, n: int, batch_size: int, seed: int = 0, options: Any = None) -> SamplingCost:
    """img/s and peak memory of sampling ``n`` images (labels cycling over the classes)."""
    import torch

    device = generator.device
    cuda = device.type == "cuda"
    k = generator.spec.num_classes
    rng = torch.Generator().manual_seed(seed)

    def batch(size: int, offset: int) -> None:
        labels = torch.arange(offset, offset + size) % k
        generator.sample(labels, generator=rng, options=options)

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    if cuda:
        sync()
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        measure = "CUDA max_memory_allocated above the loaded model"
    else:
        ok = _reset_peak_rss()
        base = _rss_kb("VmRSS")
        measure = "CPU peak resident-set growth (VmHWM after reset)" if ok and base is not None else "unavailable"
    with torch.no_grad():
        batch(min(batch_size, n), 0)  # warm-up: lazy init, allocator, kernels
        sync()
        t0, done = time.perf_counter(), 0
        while done < n:
            size = min(batch_size, n - done)
            batch(size, done)
            done += size
        sync()
        seconds = time.perf_counter() - t0
    if cuda:
        peak = (torch.cuda.max_memory_allocated(device) - base) / 2**20
    else:
        hwm = _rss_kb("VmHWM")
        peak = (hwm - base) / 1024 if measure != "unavailable" and hwm is not None else None
    return SamplingCost(
        img_per_s=round(n / max(seconds, 1e-9), 2), images=n, seconds=round(seconds, 3),
        peak_mb=None if peak is None else round(max(peak, 0.0), 1), memory_measure=measure, device=str(device),
    )  # fmt: skip
