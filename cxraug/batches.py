"""Which training images each process sees at each step of the generator loop: a pure function
of (seed, step, process), so a resumed run draws exactly the batches a straight run would have."""

from __future__ import annotations

import numpy as np
import torch

from cxraug.rng import derive_seed, epoch_order


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
