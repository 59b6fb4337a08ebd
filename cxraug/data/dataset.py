"""PyTorch access to a prepared dataset: float images 1xHxW in [-1, 1], integer labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset, WeightedRandomSampler

from cxraug.data.prepared import PreparedData, open_prepared
from cxraug.errors import UserError


def to_model_range(images_u8: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 N x H x W (or H x W) -> float N x 1 x H x W in [-1, 1]."""
    t = torch.as_tensor(np.asarray(images_u8))
    if t.ndim == 2:
        t = t[None]
    return t.unsqueeze(-3).float().div(127.5).sub(1.0)


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """float N x 1 x H x W in [-1, 1] -> uint8 N x H x W (round to nearest)."""
    x = images.detach().float().clamp(-1, 1).add(1).mul(127.5).round()
    return x.squeeze(1).to(torch.uint8).cpu().numpy()


class PreparedDataset(Dataset):
    """One split of a prepared dataset. Images stay memory-mapped until indexed."""

    def __init__(self, root: Path | str | PreparedData, split: str = "train", in_memory: bool = False) -> None:
        self.data = root if isinstance(root, PreparedData) else open_prepared(root)
        if split not in self.data.meta["counts"]:
            raise UserError(f"split {split!r} not in {self.data.root}; known: train, val, test")
        self.split = split
        self.images = self.data.images(split)
        if in_memory:  # small sets (tests, rare classes): avoid page-fault cost per item
            self.images = np.ascontiguousarray(self.images)
        self.labels = self.data.labels(split)
        self.classes = self.data.classes

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        img = torch.from_numpy(np.array(self.images[i], dtype=np.uint8))
        return img[None].float().div_(127.5).sub_(1.0), int(self.labels[i])

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.labels, minlength=len(self.classes))


def balanced_weights(labels: np.ndarray, num_classes: int) -> torch.Tensor:
    """Per-sample weights 1 / class count: each class is drawn equally often."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    w = 1.0 / np.maximum(counts, 1.0)
    return torch.as_tensor(w[labels], dtype=torch.double)


def class_balanced_sampler(
    labels: np.ndarray,
    num_classes: int,
    num_samples: int | None = None,
    generator: torch.Generator | None = None,
) -> WeightedRandomSampler:
    return WeightedRandomSampler(
        balanced_weights(labels, num_classes),
        num_samples=num_samples or len(labels),
        replacement=True,
        generator=generator,
    )
