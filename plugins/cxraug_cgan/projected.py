"""A discriminator on frozen pretrained features (``d_features``).

Projected GAN (Sauer et al., NeurIPS 2021, autonomousvision/projected-gan): a frozen ImageNet
EfficientNet-Lite0, its features at several scales mixed by frozen random 1x1 convolutions
across channels and, coarse to fine, across scales; one small trainable discriminator head
per scale. Vision-aided GAN (Kumari et al., CVPR 2022) adds such a D beside the ordinary one,
after a warm-up; the plugin does that (plugin.py).

Fitted to 32-64 px grey chest films: the stem's RGB filters summed (grey input), blocks up to
the 1/16 scale only (the 1/32 stage would be 1-2 px here), heads with spectral norm instead of
Projected GAN's BatchNorm (reals and fakes go through one forward), and class projection
(Miyato & Koyama 2018) in every head. The backbone is not a submodule: it is not in
``state_dict`` (it comes from the installed package, sha256-checked), ``train()`` cannot put
it in training mode, and the optimiser never sees it; ``_apply`` moves it with the heads.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from cxraug_cgan import lite0

# (blocks run so far, channels) at 1/4, 1/8 and 1/16 of the input: after Lite0's blocks 0-2,
# 3-4 and 5-10 (Projected GAN's first three of four scales).
SCALES = ((3, 24), (5, 40), (11, 112))
MIX_CH = (64, 128, 256)  # Projected GAN's cross-channel mixing widths (cout=64, expanded per scale)
MIX_SEED = 0  # the frozen random mixing is the same in every run


class Mixing(nn.Module):
    """Projected GAN's frozen random mixing (projector.py, proj_type 2): a 1x1 conv per scale
    across channels (CCM), then coarse to fine, each scale plus the upsampled coarser one,
    through a 1x1 conv to its width (CSM). Weights drawn from a fixed seed, kept as buffers
    (saved with the heads, so a resume checks them), never trained."""

    def __init__(self, seed: int = MIX_SEED) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        for i, ((_, cin), cout) in enumerate(zip(SCALES, MIX_CH, strict=True)):
            self.register_buffer(f"ccm{i}", _kaiming(cout, cin, g))
        for i in range(len(SCALES) - 1):  # the coarser scale's width to this one's
            self.register_buffer(f"csm{i}", _kaiming(MIX_CH[i], MIX_CH[i + 1], g))

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        mixed = [F.conv2d(f, getattr(self, f"ccm{i}")[:, :, None, None]) for i, f in enumerate(feats)]
        out = [mixed[-1]]
        for i in range(len(feats) - 2, -1, -1):
            coarse = F.interpolate(out[0], size=mixed[i].shape[-2:], mode="bilinear", align_corners=False)
            out.insert(0, mixed[i] + F.conv2d(coarse, getattr(self, f"csm{i}")[:, :, None, None]))
        return out


def _kaiming(cout: int, cin: int, g: torch.Generator) -> torch.Tensor:
    """A 1x1 conv's weight as torch's default (Kaiming uniform, a = sqrt(5)) draws it."""
    bound = 1 / math.sqrt(cin)
    return (torch.rand(cout, cin, generator=g) * 2 - 1) * bound


class Head(nn.Module):
    """One scale's discriminator: stride-2 3x3 convs (spectral norm, leaky ReLU 0.2) down to
    4 px or less, mean pooling, then a projection head: psi(phi) + <embed(y), phi>. Mean, not
    sum: Projected GAN's heads give a logit per position and its loss averages them."""

    def __init__(self, cin: int, size: int, num_classes: int) -> None:
        super().__init__()
        convs, ch = [], cin
        while size > 4:
            convs.append(spectral_norm(nn.Conv2d(ch, min(2 * ch, 256), 3, stride=2, padding=1)))
            ch, size = min(2 * ch, 256), (size + 1) // 2
        self.convs = nn.ModuleList(convs)
        self.linear = spectral_norm(nn.Linear(ch, 1))
        self.embed = spectral_norm(nn.Embedding(num_classes, ch))

    def forward(self, h: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            h = F.leaky_relu(conv(h), 0.2)
        h = h.mean(dim=(2, 3))
        return self.linear(h).squeeze(1) + (self.embed(y) * h).sum(dim=1)


class FeatureDiscriminator(nn.Module):
    """The frozen backbone and mixing, and one trainable head per scale. ``forward`` returns the
    heads' scores, (batch, scales): each is its own discriminator, hinge loss on each."""

    def __init__(
        self,
        *,
        size: int,
        num_classes: int,
        upsample: int = 1,
        backbone_state: dict[str, torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.upsample = upsample
        net = lite0.pretrained(grey=True, state=backbone_state)
        net._conv_head = net._bn1 = net._fc = None  # type: ignore[assignment]
        del net._blocks[SCALES[-1][0] :]  # the 1/32 stage is not used
        self._backbone = lite0.fold_batchnorm(net)
        self.mixing = Mixing()
        side = size * upsample
        self.heads = nn.ModuleList(Head(ch, math.ceil(side / 2 ** (i + 2)), num_classes) for i, ch in enumerate(MIX_CH))

    @property
    def backbone(self) -> nn.Module:
        return self._backbone

    def __setattr__(self, name: str, value: object) -> None:
        if name == "_backbone":  # kept out of the module tree (see the module's docstring)
            object.__setattr__(self, name, value)
        else:
            super().__setattr__(name, value)

    def _apply(self, fn, recurse: bool = True):  # torch's signature
        super()._apply(fn, recurse)
        self._backbone._apply(fn, recurse)
        return self

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """The mixed features at 1/4, 1/8 and 1/16 of the (upsampled) input, from images in
        [-1, 1]; differentiable w.r.t. the images (G's step), frozen throughout."""
        x = lite0.normalise(images)
        if self.upsample > 1:
            x = F.interpolate(x, scale_factor=self.upsample, mode="bilinear", align_corners=False)
        net = self._backbone
        h = F.relu6(net._bn0(net._conv_stem(x)))
        feats, done = [], 0
        for upto, _ in SCALES:
            for block in net._blocks[done:upto]:
                h = block(h)
            feats.append(h)
            done = upto
        return self.mixing(feats)

    def forward(self, images: torch.Tensor, y: torch.Tensor, grad_to_input: bool = True) -> torch.Tensor:
        """Scores (batch, scales). Without ``grad_to_input`` (D's step) the frozen part runs
        without a graph: only the heads train."""
        with torch.set_grad_enabled(grad_to_input and torch.is_grad_enabled()):
            feats = self.features(images)
        return torch.stack([head(f, y) for head, f in zip(self.heads, feats, strict=True)], dim=1)
