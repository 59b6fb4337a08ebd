"""Torch's global RNG, kept out of what must be exact.

Plugins draw their noise from their own generator (checkpointed), but some modules can only
draw from the global RNG: dropout in diffusers' UNet blocks, for one. That RNG is in no
checkpoint, and a helper training (the reference classifier calls ``set_seed``) reseeds it
mid-run, so a resumed run would draw other masks than a straight one. The training loop
therefore runs each step under :func:`step_rng` (the global RNG forked and seeded from
seed, step and process: a pure function of the step, like the batches), and helper trainings
run under :func:`preserved_rng` (every global RNG restored when they end).
"""

from __future__ import annotations

import contextlib
import hashlib
import random
from collections.abc import Iterator

import numpy as np
import torch


def _cuda_devices(device: torch.device | None) -> list[int]:
    if device is None or device.type != "cuda" or not torch.cuda.is_available():
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


def step_seed(seed: int, step: int, process_index: int) -> int:
    h = hashlib.sha256(f"global-rng:{seed}:{step}:{process_index}".encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)


@contextlib.contextmanager
def step_rng(seed: int, step: int, process_index: int, device: torch.device | None) -> Iterator[None]:
    """The global torch RNG (CPU, and ``device`` if CUDA) seeded for this step, restored after."""
    cuda = _cuda_devices(device)
    with torch.random.fork_rng(devices=cuda):
        s = step_seed(seed, step, process_index)
        torch.random.default_generator.manual_seed(s)
        for index in cuda:
            torch.cuda.default_generators[index].manual_seed(s)
        yield


@contextlib.contextmanager
def preserved_rng() -> Iterator[None]:
    """Every global RNG (torch CPU and CUDA, NumPy, Python) as it was before the block."""
    py, npy = random.getstate(), np.random.get_state()
    cuda = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    try:
        with torch.random.fork_rng(devices=cuda):
            yield
    finally:
        random.setstate(py)
        np.random.set_state(npy)
