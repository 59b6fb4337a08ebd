"""One exponential moving average of weights for every generator, with a half-life in images.

As in StyleGAN2-ADA (``ema_kimg``, ``ema_rampup``): the half-life is a number of training
images, not a per-step decay, and during the first part of training it is capped at
``rampup`` times the images seen so far. So a 300-step demo and a 100k-step GPU run both
export weights averaged over their own late steps, and the same setting means the same lag
for every plugin and batch size: the step decay is ``0.5 ** (batch / half_life_images)``.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from pydantic import BaseModel, Field


class EMASettings(BaseModel):
    """The EMA keys a plugin config inherits (one meaning for every plugin)."""

    ema_kimg: float = Field(
        10.0, ge=0, description="EMA half-life of the sampled weights, in thousands of training images (0: no EMA)"
    )
    ema_rampup: float | None = Field(
        0.05, gt=0, description="cap the half-life at this fraction of the images seen so far (None: no ramp-up)"
    )


def ema_beta(batch_images: int, images_seen: int, half_life_kimg: float, rampup: float | None) -> float:
    """Decay of one update of ``batch_images`` images after ``images_seen`` images (before this batch)."""
    half = half_life_kimg * 1000.0
    if rampup is not None:
        half = min(half, images_seen * rampup)
    if half <= 0:
        return 0.0  # a copy: nothing to average over yet
    return 0.5 ** (batch_images / half)


class EMA:
    """The averaged copy of a module; it is what sampling and export use.

    Parameters are averaged; buffers (e.g. BatchNorm statistics) are copied, as StyleGAN does.
    ``images_seen`` is part of the state: the ramp-up depends on it, so resume is exact.
    """

    def __init__(self, module: torch.nn.Module, settings: EMASettings) -> None:
        self.model = copy.deepcopy(module).eval().requires_grad_(False)
        self.half_life_kimg = settings.ema_kimg
        self.rampup = settings.ema_rampup
        self.images_seen = 0

    @torch.no_grad()
    def update(self, module: torch.nn.Module, batch_images: int) -> float:
        """Move towards ``module`` (the live weights, unwrapped) after a step on ``batch_images``
        images (all processes together); returns the decay used."""
        beta = ema_beta(batch_images, self.images_seen, self.half_life_kimg, self.rampup)
        ema_p = list(self.model.parameters())
        live = [p.detach().to(e.dtype) for p, e in zip(module.parameters(), ema_p, strict=True)]
        torch._foreach_lerp_(ema_p, live, 1.0 - beta)
        for be, b in zip(self.model.buffers(), module.buffers(), strict=True):
            be.copy_(b)
        self.images_seen += batch_images
        return beta

    def state_dict(self) -> dict[str, Any]:
        return {"weights": self.model.state_dict(), "images_seen": self.images_seen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["weights"])
        self.images_seen = int(state["images_seen"])
