"""Generator (residual, conditional BatchNorm) and projection discriminator (spectral norm).

Widths follow the resolution: ``ch`` at half the image size, doubling per halving, capped at
``max_ch``; depth follows the image size, so the same config trains at 32 to 256 px. As in
DCGAN, no wide layer runs at full resolution (the generator's last step is one conv to one
channel, the discriminator's first one conv from one channel): on a CPU the cost of a GAN
is the width of its highest-resolution layers, and this keeps it small.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def widths(size: int, ch: int, max_ch: int, ch4: int | None = None) -> list[int]:
    """Channels at 4, 8, ..., size/2 px: ``ch`` at size/2, doubling per halving up to ``max_ch``;
    or, with ``ch4``, a geometric ramp from ``ch4`` at 4 px to ``ch`` at size/2 (FastGAN-style
    wide low-resolution layers, which cost little: a 4 px layer has 1/64 the pixels of 32 px)."""
    levels = int(math.log2(size)) - 3
    if ch4 is None:
        return [min(max_ch, ch * 2 ** (levels - i)) for i in range(levels + 1)]
    if levels == 0:
        return [ch4]
    return [max(1, round(ch4 * (ch / ch4) ** (i / levels))) for i in range(levels + 1)]


class CondBatchNorm(nn.Module):
    """BatchNorm whose scale and shift come from the class embedding (BigGAN-style)."""

    def __init__(self, channels: int, embed_dim: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Linear(embed_dim, channels)
        self.bias = nn.Linear(embed_dim, channels)
        nn.init.zeros_(self.gain.weight)
        nn.init.zeros_(self.bias.weight)
        nn.init.zeros_(self.gain.bias)
        nn.init.zeros_(self.bias.bias)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        g = 1 + self.gain(e)[:, :, None, None]
        return self.bn(x) * g + self.bias(e)[:, :, None, None]


class GBlock(nn.Module):
    """Residual up-block: CBN-ReLU-up-conv (x ``convs``), plus a 1x1 skip."""

    def __init__(self, cin: int, cout: int, embed_dim: int, convs: int) -> None:
        super().__init__()
        self.bns = nn.ModuleList(CondBatchNorm(c, embed_dim) for c in [cin] + [cout] * (convs - 1))
        self.convs = nn.ModuleList(nn.Conv2d(c, cout, 3, padding=1) for c in [cin] + [cout] * (convs - 1))
        self.skip = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        h = x
        for i, (bn, conv) in enumerate(zip(self.bns, self.convs, strict=True)):
            h = F.relu(bn(h, e))
            h = conv(F.interpolate(h, scale_factor=2, mode="nearest") if i == 0 else h)
        return h + self.skip(F.interpolate(x, scale_factor=2, mode="nearest"))


class Generator(nn.Module):
    def __init__(
        self,
        size: int,
        num_classes: int,
        z_dim: int,
        ch: int,
        max_ch: int,
        embed_dim: int,
        convs: int = 1,
        ch4: int | None = None,
    ) -> None:
        super().__init__()
        w = widths(size, ch, max_ch, ch4)
        self.z_dim, self.c0 = z_dim, w[0]
        self.embed = nn.Embedding(num_classes, embed_dim)
        self.fc = nn.Linear(z_dim, 16 * w[0])
        self.blocks = nn.ModuleList(GBlock(a, b, embed_dim, convs) for a, b in itertools.pairwise(w))
        self.out_bn = CondBatchNorm(w[-1], embed_dim)
        self.out = nn.Conv2d(w[-1], 1, 3, padding=1)  # the only layer at full resolution

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        e = self.embed(y)
        h = self.fc(z).view(z.shape[0], self.c0, 4, 4)
        for block in self.blocks:
            h = block(h, e)
        h = F.interpolate(F.relu(self.out_bn(h, e)), scale_factor=2, mode="nearest")
        return torch.tanh(self.out(h))


def _maybe_sn(module: nn.Module, sn: bool) -> nn.Module:
    return spectral_norm(module) if sn else module


class DBlock(nn.Module):
    """Residual down-block: (ReLU-conv) x ``convs``, average-pool, plus a 1x1 skip."""

    def __init__(self, cin: int, cout: int, convs: int, sn: bool = True) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            _maybe_sn(nn.Conv2d(c, cout, 3, padding=1), sn) for c in [cin] + [cout] * (convs - 1)
        )
        self.skip = _maybe_sn(nn.Conv2d(cin, cout, 1), sn)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for conv in self.convs:
            h = conv(F.relu(h))
        return F.avg_pool2d(h, 2) + F.avg_pool2d(self.skip(x), 2)


class MinibatchStd(nn.Module):
    """Append the spread of the features across a group of samples (StyleGAN's minibatch std).

    A generator that collapses within a class gives groups with near-zero spread, which D then
    sees directly. Groups are contiguous, and the batch may be ``parts`` independent equal parts
    (D's real and fake halves), so no group ever mixes real and fake images.
    """

    def __init__(self, group: int) -> None:
        super().__init__()
        self.group = group

    def forward(self, x: torch.Tensor, parts: int = 1) -> torch.Tensor:
        n = x.shape[0] // parts
        g = max(d for d in range(1, min(self.group, n) + 1) if n % d == 0)
        spread = x.reshape(-1, g, *x.shape[1:]).var(dim=1, unbiased=False).add(1e-8).sqrt()
        feat = spread.mean(dim=(1, 2, 3)).repeat_interleave(g)  # one number per group, per member
        return torch.cat([x, feat.view(-1, 1, 1, 1).expand(-1, 1, *x.shape[2:])], dim=1)


class Discriminator(nn.Module):
    """Projection discriminator (Miyato & Koyama 2018): D(x, y) = psi(phi(x)) + <embed(y), phi(x)>.

    With ``mbstd_group`` > 0 the last block also sees the minibatch std of its input.
    """

    def __init__(
        self,
        size: int,
        num_classes: int,
        ch: int,
        max_ch: int,
        convs: int = 1,
        ch4: int | None = None,
        sn: bool = True,
        mbstd_group: int = 0,
    ) -> None:
        super().__init__()
        w = list(reversed(widths(size, ch, max_ch, ch4)))  # size/2 px ... 4 px
        self.stem = _maybe_sn(nn.Conv2d(1, w[0], 4, stride=2, padding=1), sn)  # full res -> half, narrow
        self.mbstd = MinibatchStd(mbstd_group) if mbstd_group > 0 else None
        cins = w[:-1]
        if self.mbstd is not None:
            cins[-1] += 1
        self.blocks = nn.ModuleList(DBlock(a, b, convs, sn) for a, b in zip(cins, w[1:], strict=True))
        self.linear = _maybe_sn(nn.Linear(w[-1], 1), sn)
        self.embed = _maybe_sn(nn.Embedding(num_classes, w[-1]), sn)

    def forward(self, x: torch.Tensor, y: torch.Tensor, parts: int = 1) -> torch.Tensor:
        """``parts``: the batch is that many independent equal parts (only the minibatch std cares)."""
        h = self.stem(x)
        for i, block in enumerate(self.blocks):
            if self.mbstd is not None and i == len(self.blocks) - 1:
                h = self.mbstd(h, parts)
            h = block(h)
        h = F.relu(h).sum(dim=(2, 3))
        return self.linear(h).squeeze(1) + (self.embed(y) * h).sum(dim=1)
