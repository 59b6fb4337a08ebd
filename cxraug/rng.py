"""Torch's global RNG, kept out of what must be exact.

Plugins draw their noise from their own generator (checkpointed), but some modules can only
draw from the global RNG: dropout in diffusers' UNet blocks, for one. That RNG is in no
checkpoint, and a helper training (the reference classifier calls ``set_seed``) reseeds it
mid-run, so a resumed run would draw other masks than a straight one. The training loop
therefore runs each step under :func:`step_rng` (the global RNG forked and seeded from
seed, step and process: a pure function of the step, like the batches), and helper trainings
run under :func:`preserved_rng` (every global RNG restored when they end).

Every seed derived from another (per step, per epoch, per class, per batch) goes through
:func:`derive_seed`. Its schemes are the ones the published numbers and exact resume were made
with; each keeps its stream bit-identical, so a caller picks the scheme it has always used.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
from collections.abc import Iterator
from typing import TYPE_CHECKING, Literal

import numpy as np

if TYPE_CHECKING:  # torch is imported where used: data sources derive seeds without it
    import torch


def _cuda_devices(device: torch.device | None) -> list[int]:
    import torch

    if device is None or device.type != "cuda" or not torch.cuda.is_available():
        return []
    return [device.index if device.index is not None else torch.cuda.current_device()]


def derive_seed(*parts: int | str, scheme: Literal["hash", "affine", "numpy"] = "hash", stride: int = 1) -> int:
    """A seed from ``parts``, by one of three schemes:

    - ``hash``: the first 63 bits of sha256 of the parts joined by ":" (independent streams
      for neighbouring parts; per step, per synth batch);
    - ``affine``: ``parts[0] * stride + parts[1]`` (per epoch and fixed offsets; cheap, and
      distinct while the second part stays below ``stride``);
    - ``numpy``: NumPy's SeedSequence of the parts (per class of a scored source).
    """
    if scheme == "hash":
        h = hashlib.sha256(":".join(map(str, parts)).encode()).digest()
        return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)
    if scheme == "affine":
        base, offset = parts
        return int(base) * stride + int(offset)
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def step_seed(seed: int, step: int, process_index: int) -> int:
    return derive_seed("global-rng", seed, step, process_index)


def epoch_order(labels: np.ndarray, balanced: bool, generator: torch.Generator, n: int | None = None) -> torch.Tensor:
    """One epoch's row order: a permutation, or (balanced) ``n`` (default: as many as rows)
    class-balanced draws with replacement, each class equally likely. The one sampler of the
    generator loop and the classifier."""
    import torch

    n = len(labels) if n is None else n
    if not balanced:
        return torch.randperm(n, generator=generator)
    counts = np.bincount(labels).astype(np.float64)
    w = torch.as_tensor(1.0 / counts[labels], dtype=torch.double)
    return torch.multinomial(w, n, replacement=True, generator=generator)


@contextlib.contextmanager
def step_rng(seed: int, step: int, process_index: int, device: torch.device | None) -> Iterator[None]:
    """The global torch RNG (CPU, and ``device`` if CUDA) seeded for this step, restored after."""
    import torch

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
    import torch

    py, npy = random.getstate(), np.random.get_state()
    cuda = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    try:
        with torch.random.fork_rng(devices=cuda):
            yield
    finally:
        random.setstate(py)
        np.random.set_state(npy)
