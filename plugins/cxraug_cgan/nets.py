"""Generator (residual, conditional BatchNorm or normalisation-free) and projection discriminator.

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

    def forward(self, x: torch.Tensor, e: torch.Tensor, w: torch.Tensor | float = 1.0) -> torch.Tensor:
        """``w`` scales the class's part (transitional conditioning: 0 = unconditional BatchNorm)."""
        g = 1 + w * self.gain(e)[:, :, None, None]
        return self.bn(x) * g + w * self.bias(e)[:, :, None, None]


RESAMPLE = ("nearest", "bilinear")


def upsample(x: torch.Tensor, mode: str) -> torch.Tensor:
    """2x up. Nearest copies each pixel into a 2x2 block, which a narrow net cannot fully smooth
    away (a grid at the output's Nyquist frequency); bilinear interpolates ([1,3,3,1]/4 taps)."""
    if mode == "nearest":
        return F.interpolate(x, scale_factor=2, mode="nearest")
    return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)


def downsample(x: torch.Tensor, mode: str) -> torch.Tensor:
    """2x down. "bilinear" averages 4x4 windows at stride 2 (a [1,1,1,1]/4 low-pass per axis,
    zero at Nyquist) instead of 2x2 ones, so D cannot key on an aliased grid; about 1.3x the
    cost of the plain 2x2 average, against 2x for a separate [1,2,1] blur."""
    if mode == "bilinear":
        return F.avg_pool2d(x, 4, stride=2, padding=1, count_include_pad=False)
    return F.avg_pool2d(x, 2)


class NoNorm(nn.Module):
    """The place of a conditional BatchNorm in a normalisation-free G (the class enters at the input)."""

    def forward(self, x: torch.Tensor, e: torch.Tensor, w: torch.Tensor | float = 1.0) -> torch.Tensor:
        return x


G_NORMS = ("cbn", "none")


class GBlock(nn.Module):
    """Residual up-block: norm-act-up-conv (x ``convs``), plus a 1x1 skip.

    ``norm="cbn"``: conditional BatchNorm and ReLU (BigGAN). ``norm="none"``: no normalisation,
    leaky ReLU, and the branch's last conv starts at zero so the block starts as its skip
    (R3GAN's fix-up initialisation, which BatchNorm would otherwise provide).
    """

    def __init__(
        self,
        cin: int,
        cout: int,
        embed_dim: int,
        convs: int,
        resample: str = "nearest",
        pad: str = "zeros",
        norm: str = "cbn",
    ) -> None:
        super().__init__()
        ins = [cin] + [cout] * (convs - 1)
        self.bns = nn.ModuleList(CondBatchNorm(c, embed_dim) if norm == "cbn" else NoNorm() for c in ins)
        self.convs = nn.ModuleList(nn.Conv2d(c, cout, 3, padding=1, padding_mode=pad) for c in ins)
        if norm == "none":
            nn.init.zeros_(self.convs[-1].weight)
            nn.init.zeros_(self.convs[-1].bias)
        self.skip = nn.Conv2d(cin, cout, 1)
        self.resample, self.act = resample, "relu" if norm == "cbn" else "lrelu"

    def forward(self, x: torch.Tensor, e: torch.Tensor, w: torch.Tensor | float = 1.0) -> torch.Tensor:
        h = x
        for i, (bn, conv) in enumerate(zip(self.bns, self.convs, strict=True)):
            h = activation(self.act, bn(h, e, w))
            h = conv(upsample(h, self.resample) if i == 0 else h)
        return h + self.skip(upsample(x, self.resample))


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
        resample: str = "nearest",
        pad: str = "zeros",
        norm: str = "cbn",
        uc_res: int | None = None,
        skip_z: bool = False,
    ) -> None:
        super().__init__()
        w = widths(size, ch, max_ch, ch4)
        self.z_dim, self.c0, self.resample, self.norm = z_dim, w[0], resample, norm
        # BigGAN-deep's shared latent: every conditional BatchNorm reads [class embedding, z],
        # so the latent reaches every scale instead of the input alone.
        self.skip_z = skip_z
        cond_dim = embed_dim + (z_dim if skip_z else 0)
        # UTLO (Khorram et al. 2024): the blocks up to uc_res px are unconditional, and a head
        # there draws a uc_res px image that an unconditional D branch judges.
        self.uc_blocks = int(math.log2(uc_res)) - 2 if uc_res else 0  # blocks 0 .. uc_blocks - 1
        self.to_low = nn.Conv2d(w[self.uc_blocks], 1, 3, padding=1, padding_mode=pad) if uc_res else None
        self.embed = nn.Embedding(num_classes, embed_dim)
        # Without conditional BatchNorm the class enters once, beside z (R3GAN's conditional G).
        self.fc = nn.Linear(z_dim + (embed_dim if norm == "none" else 0), 16 * w[0])
        self.blocks = nn.ModuleList(
            GBlock(a, b, cond_dim, convs, resample, pad, norm) for a, b in itertools.pairwise(w)
        )
        self.out_bn = CondBatchNorm(w[-1], cond_dim) if norm == "cbn" else NoNorm()
        self.out = nn.Conv2d(w[-1], 1, 3, padding=1, padding_mode=pad)  # the only layer at full resolution
        # The weight of the class in every conditional BatchNorm (transitional conditioning).
        # A buffer, so the EMA copy and the export carry the value the weights were trained at.
        self.register_buffer("cond_weight", torch.tensor(1.0))

    def _cond(
        self, e: torch.Tensor, z: torch.Tensor, w: torch.Tensor | float
    ) -> tuple[torch.Tensor, torch.Tensor | float]:
        """What a conditional BatchNorm reads, and the weight it applies: with the shared latent
        the class's weight (transitional conditioning, UTLO's unconditional blocks) scales the
        class's part alone, so z still reaches every block."""
        return (torch.cat([w * e, z], 1), 1.0) if self.skip_z else (e, w)

    def forward(self, z: torch.Tensor, y: torch.Tensor, low: bool = False) -> torch.Tensor | tuple[torch.Tensor, ...]:
        """The images; with ``low`` (UTLO) also the unconditional layers' uc_res px image."""
        e, w = self.embed(y), self.cond_weight
        act = "relu" if self.norm == "cbn" else "lrelu"
        h = self.fc(torch.cat([z, w * e], 1) if self.norm == "none" else z).view(z.shape[0], self.c0, 4, 4)
        image_low = None
        for i, block in enumerate(self.blocks):
            h = block(h, *self._cond(e, z, w if i >= self.uc_blocks else 0.0))
            if low and i == self.uc_blocks - 1:
                assert self.to_low is not None, "built without UTLO's low-resolution head"
                image_low = torch.tanh(self.to_low(activation(act, h)))
        h = upsample(activation(act, self.out_bn(h, *self._cond(e, z, w))), self.resample)
        image = torch.tanh(self.out(h))
        return (image, image_low) if low else image


def _maybe_sn(module: nn.Module, sn: bool) -> nn.Module:
    return spectral_norm(module) if sn else module


def activation(name: str, x: torch.Tensor) -> torch.Tensor:
    return F.relu(x) if name == "relu" else F.leaky_relu(x, 0.2)


class DBlock(nn.Module):
    """Residual down-block: (act-conv) x ``convs``, downsample, plus a 1x1 skip.

    ``zero_init``: the branch's last conv starts at zero, so each block starts as its skip
    (R3GAN's fix-up initialisation, which lets D train without normalisation).
    """

    def __init__(
        self,
        cin: int,
        cout: int,
        convs: int,
        sn: bool = True,
        act: str = "relu",
        resample: str = "nearest",
        zero_init: bool = False,
    ) -> None:
        super().__init__()
        convs_ = [nn.Conv2d(c, cout, 3, padding=1) for c in [cin] + [cout] * (convs - 1)]
        if zero_init and not sn:  # spectral norm cannot normalise a zero matrix
            nn.init.zeros_(convs_[-1].weight)
            nn.init.zeros_(convs_[-1].bias)
        self.convs = nn.ModuleList(_maybe_sn(c, sn) for c in convs_)
        self.skip = _maybe_sn(nn.Conv2d(cin, cout, 1), sn)
        self.act, self.resample = act, resample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for conv in self.convs:
            h = conv(activation(self.act, h))
        return downsample(h, self.resample) + downsample(self.skip(x), self.resample)


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


class ReconDecoder(nn.Module):
    """FastGAN's self-supervision of D, at CPU size: from D's 8x8 features to a 16 px image.

    Trained on reals only (MSE against the 16 px average-pooled input), so D's features must
    encode the real image rather than only what separates today's fakes."""

    def __init__(self, cin: int, hidden: int = 16) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, hidden, 3, padding=1)
        self.conv2 = nn.Conv2d(hidden, 1, 3, padding=1)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.conv1(F.interpolate(h, scale_factor=2, mode="nearest")), 0.2)
        return torch.tanh(self.conv2(h))


def recon_loss(decoded: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """Mean squared error against the images average-pooled to the decoder's size."""
    target = F.adaptive_avg_pool2d(images, decoded.shape[-1])
    return (decoded.float() - target.float()).square().mean()


class Discriminator(nn.Module):
    """Projection discriminator (Miyato & Koyama 2018): D(x, y) = psi(phi(x)) + w <embed(y), phi(x)>.

    With ``mbstd_group`` > 0 the last block also sees the minibatch std of its input; ``w`` is
    the ``cond_weight`` buffer (transitional conditioning: the unconditional term is always
    trained, the class term fades in). With ``recon`` a decoder reconstructs the input from
    the 8x8 features; with ``augself`` (the number of augmentation parameters) a linear head on
    the pooled features predicts the augmentation each input was given (AugSelf). ``forward``
    returns what it is asked for beside the scores (see there).
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
        act: str = "relu",
        resample: str = "nearest",
        zero_init: bool = False,
        recon: bool = False,
        augself: int = 0,
        uc_res: int | None = None,
    ) -> None:
        super().__init__()
        w = list(reversed(widths(size, ch, max_ch, ch4)))  # size/2 px ... 4 px
        self.stem = _maybe_sn(nn.Conv2d(1, w[0], 4, stride=2, padding=1), sn)  # full res -> half, narrow
        self.mbstd = MinibatchStd(mbstd_group) if mbstd_group > 0 else None
        cins = w[:-1]
        if self.mbstd is not None:
            cins[-1] += 1
        self.blocks = nn.ModuleList(
            DBlock(a, b, convs, sn, act, resample, zero_init) for a, b in zip(cins, w[1:], strict=True)
        )
        self.linear = _maybe_sn(nn.Linear(w[-1], 1), sn)
        self.embed = _maybe_sn(nn.Embedding(num_classes, w[-1]), sn)
        self.act = act
        # Block i outputs size/2**(i+2) px: the 8 px features come out of block log2(size) - 5.
        self.recon_at = int(math.log2(size)) - 5
        self.decoder = ReconDecoder(w[self.recon_at + 1]) if recon else None
        # AugSelf's head, normalised like the rest of D: G is trained through it too.
        self.augself = _maybe_sn(nn.Linear(w[-1], augself), sn) if augself else None
        # UTLO's unconditional branch: a uc_res px image enters at the block that takes uc_res px
        # features and runs through the rest of D to the unconditional term alone.
        self.uc_at = int(math.log2(size)) - 1 - int(math.log2(uc_res)) if uc_res else 0
        self.from_low = _maybe_sn(nn.Conv2d(1, w[self.uc_at], 3, padding=1), sn) if uc_res else None
        self.register_buffer("cond_weight", torch.tensor(1.0))

    def _trunk(self, h: torch.Tensor, first: int, parts: int, recon: bool, extras: dict) -> torch.Tensor:
        """Blocks ``first``.. and the pooling: one number per feature per sample."""
        for i in range(first, len(self.blocks)):
            if self.mbstd is not None and i == len(self.blocks) - 1:
                h = self.mbstd(h, parts)
            h = self.blocks[i](h)
            if recon and i == self.recon_at:
                assert self.decoder is not None, "built without a reconstruction decoder"
                extras["recon"] = self.decoder(h[: h.shape[0] // parts])  # the first part: the reals
        return activation(self.act, h).sum(dim=(2, 3))

    def forward(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        parts: int = 1,
        recon: bool = False,
        augself: bool = False,
        low: torch.Tensor | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The scores, or with ``recon`` / ``augself`` the scores and a dict of what was asked.
        ``parts``: the batch is that many independent equal parts (only the minibatch std cares).
        ``recon``: the decoder's 16 px reconstruction of the first part's inputs (the reals:
        FastGAN trains the decoder on reals only, and decoding fakes costs a third of a step for
        nothing). ``augself``: the predicted augmentation parameters of every input. ``low``:
        uc_res px images (UTLO), scored by the unconditional branch as ``extras["uc"]`` (in the
        same forward, so one DDP forward serves one backward)."""
        extras: dict[str, torch.Tensor] = {}
        h = self._trunk(self.stem(x), 0, parts, recon, extras)
        out = self.linear(h).squeeze(1) + self.cond_weight * (self.embed(y) * h).sum(dim=1)
        if augself:
            assert self.augself is not None, "built without an AugSelf head"
            extras["augself"] = self.augself(h)
        if low is not None:
            assert self.from_low is not None, "built without UTLO's unconditional branch"
            extras["uc"] = self.linear(self._trunk(self.from_low(low), self.uc_at, parts, False, {})).squeeze(1)
        return (out, extras) if recon or augself or low is not None else out
