"""Generator (residual, conditional BatchNorm) and projection discriminator (spectral norm).

Widths follow the resolution: ``ch`` at full size, doubling per halving, capped at
``max_ch``; depth follows the image size (one block per doubling from 4 px), so the same
config trains at 32 to 256 px.
"""

from __future__ import annotations

import itertools
import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def widths(size: int, ch: int, max_ch: int) -> list[int]:
    """Channels at 4, 8, ..., size px."""
    levels = int(math.log2(size)) - 2
    return [min(max_ch, ch * 2 ** (levels - i)) for i in range(levels + 1)]


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
    def __init__(self, cin: int, cout: int, embed_dim: int) -> None:
        super().__init__()
        self.bn1, self.bn2 = CondBatchNorm(cin, embed_dim), CondBatchNorm(cout, embed_dim)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        h = F.interpolate(F.relu(self.bn1(x, e)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.bn2(self.conv1(h), e)))
        return h + self.skip(F.interpolate(x, scale_factor=2, mode="nearest"))


class Generator(nn.Module):
    def __init__(self, size: int, num_classes: int, z_dim: int, ch: int, max_ch: int, embed_dim: int) -> None:
        super().__init__()
        w = widths(size, ch, max_ch)
        self.z_dim, self.c0 = z_dim, w[0]
        self.embed = nn.Embedding(num_classes, embed_dim)
        self.fc = nn.Linear(z_dim, 16 * w[0])
        self.blocks = nn.ModuleList(GBlock(a, b, embed_dim) for a, b in itertools.pairwise(w))
        self.out_bn = nn.BatchNorm2d(w[-1])
        self.out = nn.Conv2d(w[-1], 1, 3, padding=1)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        e = self.embed(y)
        h = self.fc(z).view(z.shape[0], self.c0, 4, 4)
        for block in self.blocks:
            h = block(h, e)
        return torch.tanh(self.out(F.relu(self.out_bn(h))))


class DBlock(nn.Module):
    def __init__(self, cin: int, cout: int, first: bool) -> None:
        super().__init__()
        self.first = first
        self.conv1 = spectral_norm(nn.Conv2d(cin, cout, 3, padding=1))
        self.conv2 = spectral_norm(nn.Conv2d(cout, cout, 3, padding=1))
        self.skip = spectral_norm(nn.Conv2d(cin, cout, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)
        h = F.avg_pool2d(self.conv2(F.relu(self.conv1(h))), 2)
        return h + F.avg_pool2d(self.skip(x), 2)


class Discriminator(nn.Module):
    """Projection discriminator (Miyato & Koyama 2018): D(x, y) = psi(phi(x)) + <embed(y), phi(x)>."""

    def __init__(self, size: int, num_classes: int, ch: int, max_ch: int) -> None:
        super().__init__()
        w = list(reversed(widths(size, ch, max_ch)))  # size px ... 4 px
        self.stem = spectral_norm(nn.Conv2d(1, w[0], 3, padding=1))
        self.blocks = nn.ModuleList(DBlock(a, b, i == 0) for i, (a, b) in enumerate(itertools.pairwise(w)))
        self.linear = spectral_norm(nn.Linear(w[-1], 1))
        self.embed = spectral_norm(nn.Embedding(num_classes, w[-1]))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        for block in self.blocks:
            h = block(h)
        h = F.relu(h).sum(dim=(2, 3))
        return self.linear(h).squeeze(1) + (self.embed(y) * h).sum(dim=1)
