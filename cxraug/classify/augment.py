"""Classical augmentation for chest X-rays, per image, on whole batches on the device.

Small rotation, zoom and shift (one affine warp, edges replicated) and brightness/contrast
jitter. No left-right flip: anatomy is not mirror-symmetric (the heart lies on the left), so a
flipped X-ray is not a plausible X-ray. Parameters come from a seeded CPU generator, so a run
is repeatable on any device.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from cxraug.classify.config import AugmentConfig


def augment_batch(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """x: float N x 1 x H x W in [-1, 1] -> the same shape, each image transformed differently."""
    n = x.shape[0]

    def uniform() -> torch.Tensor:  # in [-1, 1]
        return torch.rand(n, generator=gen) * 2 - 1

    angle = uniform() * math.radians(cfg.degrees)
    zoom = 1 + uniform() * cfg.scale
    # affine_grid maps output to input coordinates in [-1, 1]: a shift of f image widths is 2f.
    tx, ty = uniform() * 2 * cfg.translate, uniform() * 2 * cfg.translate
    brightness = uniform() * cfg.brightness * 2  # the range [-1, 1] is 2 wide
    contrast = 1 + uniform() * cfg.contrast
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1)
    theta = theta.to(device=x.device, dtype=x.dtype)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    mean = out.mean(dim=(1, 2, 3), keepdim=True)
    c = contrast.to(x.device, x.dtype).view(n, 1, 1, 1)
    b = brightness.to(x.device, x.dtype).view(n, 1, 1, 1)
    return ((out - mean) * c + mean + b).clamp(-1, 1)
