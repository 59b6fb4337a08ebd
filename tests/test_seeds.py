"""The one seed helper keeps every stream the published numbers and exact resume were made with."""

from __future__ import annotations

import hashlib

import numpy as np
import torch

from cxraug.rng import derive_seed, epoch_order, step_seed


def _sha63(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "little") & ((1 << 63) - 1)


def test_derive_seed_schemes_are_the_historical_formulas() -> None:
    for seed, a, b in [(0, 0, 0), (3, 17, 2), (2**40, 5, 99)]:
        assert step_seed(seed, a, b) == _sha63(f"global-rng:{seed}:{a}:{b}")  # the loop's global RNG
        assert derive_seed(seed, a, b) == _sha63(f"{seed}:{a}:{b}")  # synth batches
        assert derive_seed(seed, a, scheme="affine", stride=1_000_003) == seed * 1_000_003 + a  # loop epochs
        assert derive_seed(seed, a, scheme="affine", stride=100_003) == seed * 100_003 + a  # classifier epochs
        assert derive_seed(seed, 12345, scheme="affine") == seed + 12345  # training grids
        assert derive_seed(seed, a, scheme="numpy") == int(np.random.SeedSequence([seed, a]).generate_state(1)[0])


def test_epoch_order_is_the_historical_sampler() -> None:
    labels = np.array([0, 0, 0, 0, 1, 2, 2, 0, 1, 0])
    g = torch.Generator().manual_seed(5)
    w = torch.as_tensor(1.0 / np.bincount(labels)[labels], dtype=torch.double)
    want = torch.multinomial(w, len(labels), replacement=True, generator=g)
    assert torch.equal(epoch_order(labels, True, torch.Generator().manual_seed(5)), want)
    want = torch.randperm(len(labels), generator=torch.Generator().manual_seed(5))
    assert torch.equal(epoch_order(labels, False, torch.Generator().manual_seed(5)), want)
