"""Between a prepared dataset's uint8 images and the generators' float range [-1, 1]."""

from __future__ import annotations

import numpy as np
import torch


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
