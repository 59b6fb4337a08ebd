"""Differentiable augmentation for the discriminator (DiffAugment ops, ADA-style adaptive p).

Applied to real and fake images alike, so the generator is not pushed to produce the
augmentations. No left-right flips: they would move the heart to the wrong side.
All random draws come from the given torch.Generator, on its device (the training step's
generator lives on the training device, so a GPU step copies nothing from the host).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

OPS = ("translation", "cutout", "brightness", "contrast")


def parse_ops(spec: str) -> tuple[str, ...]:
    if spec.strip().lower() in ("", "none"):
        return ()
    ops = tuple(s.strip() for s in spec.split(",") if s.strip())
    bad = [o for o in ops if o not in OPS]
    if bad:
        raise ValueError(f"unknown augmentation {bad[0]!r}; known: {', '.join(OPS)} or 'none'")
    return ops


def _rand(n: int, g: torch.Generator, device: torch.device) -> torch.Tensor:
    return torch.rand(n, generator=g, device=g.device).to(device)


# What each op's parameters are, as AugSelf's discriminator predicts them (Hou et al. 2023):
# each scaled to [0, 1], an op that was not applied reads as its identity (no shift, factor 1,
# no translation; cutout: "off" and the centre of the image).
PARAM_DIMS = {"brightness": 1, "contrast": 1, "translation": 2, "cutout": 3}


def param_dims(ops: tuple[str, ...]) -> int:
    return sum(PARAM_DIMS[o] for o in ops)


def augment(x: torch.Tensor, ops: tuple[str, ...], p: float, g: torch.Generator) -> torch.Tensor:
    """Apply each op to each image with probability ``p``."""
    return augment_with_params(x, ops, p, g)[0]


def augment_with_params(
    x: torch.Tensor, ops: tuple[str, ...], p: float, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``augment`` and the parameters it drew, ``(n, param_dims(ops))`` in [0, 1] (see
    PARAM_DIMS). The random draws are the same as without the parameters."""
    n, dev = x.shape[0], x.device
    if not ops or p <= 0:
        return x, _identity_params(ops, n, x)
    params = []
    for op in ops:
        on = (_rand(n, g, dev) < p).view(n, 1, 1, 1).to(x.dtype)
        if op == "brightness":
            r = _rand(n, g, dev).view(n, 1, 1, 1)
            x = x + on * (r - 0.5)
            params.append(0.5 + on.view(n, 1) * (r.view(n, 1) - 0.5))
        elif op == "contrast":
            mean = x.mean(dim=(1, 2, 3), keepdim=True)
            factor = (_rand(n, g, dev) + 0.5).view(n, 1, 1, 1)  # in [0.5, 1.5)
            x = x + on * (x - mean) * (factor - 1)
            params.append(0.5 + on.view(n, 1) * (factor.view(n, 1) - 1))
        elif op == "translation":
            moved, shift = _translate(x, g)
            x = on * moved + (1 - on) * x
            params.append(0.5 + on.view(n, 1) * (shift - 0.5))
        elif op == "cutout":
            mask, centre = _cutout_mask(x, g)
            x = x * (1 - on * mask)
            params.append(torch.cat([on.view(n, 1), 0.5 + on.view(n, 1) * (centre - 0.5)], dim=1))
    return x, torch.cat(params, dim=1).to(x.dtype)


def _identity_params(ops: tuple[str, ...], n: int, x: torch.Tensor) -> torch.Tensor:
    cols = [torch.tensor([0.0, 0.5, 0.5] if o == "cutout" else [0.5] * PARAM_DIMS[o]) for o in ops]
    row = torch.cat(cols) if cols else torch.zeros(0)
    return row.to(x.device, x.dtype).expand(n, -1)


def _translate(x: torch.Tensor, g: torch.Generator, ratio: float = 0.125) -> tuple[torch.Tensor, torch.Tensor]:
    """DiffAugment's translation: shift by a whole number of pixels, at most ``ratio`` of the side
    (4 px at 32), drawn uniformly per image and axis; edge values fill the uncovered border.
    Also returns the shift (down, right) scaled from [-max, max] to [0, 1], shape (n, 2)."""
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sh, sh + 1, (n, 1, 1), generator=g, device=g.device).to(x.device)
    dx = torch.randint(-sw, sw + 1, (n, 1, 1), generator=g, device=g.device).to(x.device)
    rows = (torch.arange(h, device=x.device).view(1, h, 1) - dy).clamp(0, h - 1)
    cols = (torch.arange(w, device=x.device).view(1, 1, w) - dx).clamp(0, w - 1)
    flat = (rows * w + cols).view(n, 1, h * w).expand(-1, x.shape[1], -1)
    shift = torch.cat([(dy.view(n, 1) + sh) / (2 * sh), (dx.view(n, 1) + sw) / (2 * sw)], dim=1)
    return x.flatten(2).gather(2, flat).view_as(x), shift.to(x.device, torch.float32)


def _cutout_mask(x: torch.Tensor, g: torch.Generator, ratio: float = 0.5) -> tuple[torch.Tensor, torch.Tensor]:
    """DiffAugment's cutout: a square of ``ratio`` times the side (16 px at 32, a quarter of the
    area), centred uniformly over the image and clipped at its border (about 19% of the
    pixels on average). Also returns the square's centre (row, column) over the side, (n, 2)."""
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    # As DiffAugment: offsets in [0, size + (1 - side % 2)), the square spans [o - side//2, o + side - side//2).
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), generator=g, device=g.device) - ch // 2
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), generator=g, device=g.device) - cw // 2
    yy = torch.arange(h, device=g.device).view(1, h, 1)
    xx = torch.arange(w, device=g.device).view(1, 1, w)
    mask = (yy >= cy) & (yy < cy + ch) & (xx >= cx) & (xx < cx + cw)
    centre = torch.cat([(cy.view(n, 1) + ch / 2) / h, (cx.view(n, 1) + cw / 2) / w], dim=1)
    return mask.unsqueeze(1).to(x.device, x.dtype), centre.to(x.device, torch.float32)


class AdaptiveP:
    """ADA's heuristic: every ``interval`` steps, move p by (images since) / ``speed_img`` up when
    D is overconfident on reals (E[sign D(real)] > target), down otherwise."""

    def __init__(self, p: float, target: float | None, speed_img: int, interval: int = 4) -> None:
        self.p, self.target, self.speed_img, self.interval = p, target, speed_img, interval
        self.sign_sum, self.count, self.steps = 0.0, 0, 0

    def observe(self, d_real: torch.Tensor, reduce: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        """Accumulate sign(D(real)); ``reduce`` sums over processes (e.g. Accelerate's reduce),
        so that under DDP every process sees the whole batch and keeps the same p."""
        if self.target is None:
            return
        d = d_real.detach().float()
        stats = torch.stack([torch.sign(d).sum(), torch.tensor(float(d.numel()), device=d.device)])
        if reduce is not None:
            stats = reduce(stats)
        self.sign_sum += float(stats[0])
        self.count += int(stats[1])
        self.steps += 1
        if self.steps >= self.interval:  # ADA adjusts every 4 minibatches
            rt = self.sign_sum / self.count
            self.p = min(1.0, max(0.0, self.p + (1 if rt > self.target else -1) * self.count / self.speed_img))
            self.sign_sum, self.count, self.steps = 0.0, 0, 0

    def state_dict(self) -> dict[str, float]:
        return {"p": self.p, "sign_sum": self.sign_sum, "count": self.count, "steps": self.steps}

    def load_state_dict(self, s: dict[str, float]) -> None:
        self.p, self.sign_sum, self.count = float(s["p"]), float(s["sign_sum"]), int(s["count"])
        self.steps = int(s["steps"])
