"""The cgan's loss terms, one named function each, with the paper it comes from.

D minimises ``d_hinge`` (plus, when switched on, ``lecam_penalty`` and ``r1_penalty``); G
minimises ``g_hinge``. The feature discriminator (projected.py) uses the same hinge pair.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

LECAM_DECAY = 0.99  # the anchors' EMA decay (Tseng et al.'s code)


def d_hinge(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """Hinge loss of the discriminator (Lim & Ye 2017, "Geometric GAN"; used by Miyato et al.
    2018, SNGAN, and Brock et al. 2019, BigGAN): mean relu(1 - D(real)) + mean relu(1 + D(fake))."""
    return F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()


def g_hinge(d_fake: torch.Tensor) -> torch.Tensor:
    """The generator's side of the hinge loss (Lim & Ye 2017; Miyato et al. 2018): -mean D(fake)."""
    return -d_fake.mean()


def lecam_penalty(d_real: torch.Tensor, d_fake: torch.Tensor, anchor_real: float, anchor_fake: float) -> torch.Tensor:
    """LeCam regulariser (Tseng et al. 2021, "Regularizing Generative Adversarial Networks under
    Limited Data"): pull D(real) down to the moving mean of D(fake) and D(fake) up to the moving
    mean of D(real), one-sided, so D cannot drift apart on a small training set."""
    return F.relu(d_real - anchor_fake).square().mean() + F.relu(anchor_real - d_fake).square().mean()


def r1_penalty(d_real: torch.Tensor, reals: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018, "Which Training Methods for GANs do actually Converge?"): the
    mean over samples of the squared norm of the gradient of D(real) w.r.t. its input (which
    must require grad). The caller weighs it by gamma / 2, and by k when it runs lazily every k
    steps (Karras et al. 2020, StyleGAN2)."""
    (grad,) = torch.autograd.grad(d_real.sum(), reals, create_graph=True)
    return grad.float().square().sum(dim=(1, 2, 3)).mean()


class Anchors:
    """Moving means of D's outputs on reals and fakes (LeCam's anchors); the first batch sets them."""

    def __init__(self, decay: float = LECAM_DECAY) -> None:
        self.decay = decay
        self.real: float | None = None
        self.fake: float | None = None

    def update(self, real: float, fake: float) -> None:
        if self.real is None or self.fake is None:
            self.real, self.fake = real, fake
        else:
            self.real = self.decay * self.real + (1 - self.decay) * real
            self.fake = self.decay * self.fake + (1 - self.decay) * fake

    def state_dict(self) -> dict[str, float | None]:
        return {"real": self.real, "fake": self.fake}

    def load_state_dict(self, s: dict[str, float | None]) -> None:
        self.real, self.fake = s["real"], s["fake"]
