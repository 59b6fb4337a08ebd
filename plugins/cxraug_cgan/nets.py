"""Generator (residual, conditional BatchNorm) and projection discriminator.

Widths follow the resolution: ``ch`` at half the image size, doubling per halving, capped at
``max_ch``; depth follows the image size, so the same config trains at 32 to 256 px. As in
DCGAN, no wide layer runs at full resolution (the generator's last step is one conv to one
channel, the discriminator's first one conv from one channel): on a CPU the cost of a GAN
is the width of its highest-resolution layers, and this keeps it small. Both networks take
keyword arguments only, so a config key cannot land in the wrong place.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def widths(size: int, ch: int, max_ch: int) -> list[int]:
    """Channels at 4, 8, ..., size/2 px: ``ch`` at size/2, doubling per halving up to ``max_ch``."""
    levels = int(math.log2(size)) - 3
    return [min(max_ch, ch * 2 ** (levels - i)) for i in range(levels + 1)]


class CondBatchNorm(nn.Module):
    """BatchNorm whose scale and shift come from the class embedding (BigGAN-style)."""

    def __init__(self, channels: int, embed_dim: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=False)
        self.gain = nn.Linear(embed_dim, channels)
        self.bias = nn.Linear(embed_dim, channels)
        for layer in (self.gain, self.bias):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        return self.bn(x) * (1 + self.gain(e)[:, :, None, None]) + self.bias(e)[:, :, None, None]


def upsample(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


class GBlock(nn.Module):
    """Residual up-block: (cBN-ReLU-[up]-conv) x ``convs``, plus a 1x1 skip."""

    def __init__(self, cin: int, cout: int, embed_dim: int, convs: int) -> None:
        super().__init__()
        ins = [cin] + [cout] * (convs - 1)
        self.bns = nn.ModuleList(CondBatchNorm(c, embed_dim) for c in ins)
        self.convs = nn.ModuleList(nn.Conv2d(c, cout, 3, padding=1) for c in ins)
        self.skip = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        h = x
        for i, (bn, conv) in enumerate(zip(self.bns, self.convs, strict=True)):
            h = F.relu(bn(h, e))
            h = conv(upsample(h) if i == 0 else h)
        return h + self.skip(upsample(x))


class Generator(nn.Module):
    def __init__(
        self, *, size: int, num_classes: int, z_dim: int, ch: int, max_ch: int, embed_dim: int, convs: int = 1
    ) -> None:
        super().__init__()
        w = widths(size, ch, max_ch)
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
        return torch.tanh(self.out(upsample(F.relu(self.out_bn(h, e)))))


class DBlock(nn.Module):
    """Residual down-block: (ReLU-conv) x ``convs``, 2x2 average, plus a 1x1 skip; spectral norm."""

    def __init__(self, cin: int, cout: int, convs: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            spectral_norm(nn.Conv2d(c, cout, 3, padding=1)) for c in [cin] + [cout] * (convs - 1)
        )
        self.skip = spectral_norm(nn.Conv2d(cin, cout, 1))

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
        sizes = group_sizes(x.shape[0] // parts, self.group) * parts
        if len(set(sizes)) == 1:  # equal groups: one reshape
            var = x.reshape(-1, sizes[0], *x.shape[1:]).var(dim=1, unbiased=False)
        else:
            var = torch.cat([c.var(dim=0, unbiased=False, keepdim=True) for c in torch.split(x, sizes)])
        per_group = var.add(1e-8).sqrt().mean(dim=(1, 2, 3))
        feat = per_group.repeat_interleave(torch.tensor(sizes, device=x.device))  # one number per group, per member
        return torch.cat([x, feat.view(-1, 1, 1, 1).expand(-1, 1, *x.shape[2:])], dim=1)


def group_sizes(n: int, group: int) -> list[int]:
    """Contiguous groups of ``n`` samples: equal groups of the largest size <= ``group`` that
    divides ``n``; where only 1 divides (a prime batch such as 7), groups of ``group`` with the
    remainder as a last group (or joined to the one before, if it is a single sample), so the
    layer never degenerates into groups of one, which have no spread to show."""
    g = max(d for d in range(1, min(group, n) + 1) if n % d == 0)
    if g > 1 or n < 2:
        return [g] * (n // g)
    g = min(group, n)
    sizes = [g] * (n // g)
    rest = n % g
    if rest == 1:
        sizes[-1] += 1
    elif rest:
        sizes.append(rest)
    return sizes


class Discriminator(nn.Module):
    """Projection discriminator (Miyato & Koyama 2018): D(x, y) = psi(phi(x)) + <embed(y), phi(x)>,
    spectral norm everywhere (Miyato et al. 2018). With ``mbstd_group`` > 0 the last block also
    sees the minibatch std of its input."""

    def __init__(
        self, *, size: int, num_classes: int, ch: int, max_ch: int, convs: int = 1, mbstd_group: int = 0
    ) -> None:
        super().__init__()
        w = list(reversed(widths(size, ch, max_ch)))  # size/2 px ... 4 px
        self.stem = spectral_norm(nn.Conv2d(1, w[0], 4, stride=2, padding=1))  # full res -> half, narrow
        self.mbstd = MinibatchStd(mbstd_group) if mbstd_group > 0 else None
        cins = w[:-1]
        if self.mbstd is not None:
            cins[-1] += 1
        self.blocks = nn.ModuleList(DBlock(a, b, convs) for a, b in zip(cins, w[1:], strict=True))
        self.linear = spectral_norm(nn.Linear(w[-1], 1))
        self.embed = spectral_norm(nn.Embedding(num_classes, w[-1]))

    def pooled(self, x: torch.Tensor, parts: int = 1) -> torch.Tensor:
        """phi(x): the features the heads read, one vector per image. ``parts``: the batch is
        that many independent equal parts (only the minibatch std cares)."""
        h = self.stem(x)
        for i, block in enumerate(self.blocks):
            if self.mbstd is not None and i == len(self.blocks) - 1:
                h = self.mbstd(h, parts)
            h = block(h)
        return F.relu(h).sum(dim=(2, 3))

    def forward(self, x: torch.Tensor, y: torch.Tensor, parts: int = 1) -> torch.Tensor:
        h = self.pooled(x, parts)
        return self.linear(h).squeeze(1) + (self.embed(y) * h).sum(dim=1)
